import pytest

from collapse_tasks import corpus


def test_split_is_by_work_and_complete():
    train, heldout = corpus.work_names("train"), corpus.work_names("heldout")
    assert set(heldout) == set(corpus.HELDOUT_WORKS)
    assert not set(train) & set(heldout)
    assert sorted(train + heldout) == corpus.work_names("all")
    assert len(corpus.work_names("all")) == 42


def test_data_resolves_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert corpus.read_work("macbeth").startswith("MACBETH")
    assert corpus.works("heldout", "milton") and corpus.work_names("train", "milton") == []


def test_lines_and_blocks():
    lines = corpus.lines("heldout")
    assert all(len(line.split()) >= 5 and line == line.strip() for line in lines)
    assert len(lines) > 10_000
    assert any(b.startswith("FIRST WITCH.") for b in corpus.blocks("heldout"))


@pytest.mark.parametrize("call", [lambda: corpus.works("test"), lambda: corpus.read_work("nope"),
                                  lambda: corpus.works(author="marlowe")])
def test_bad_names_are_clear_errors(call):
    with pytest.raises(ValueError, match="choose one of"):
        call()
