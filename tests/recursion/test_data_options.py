"""Data options of the seed notebook's protocol: first N characters, line length, word counting, held-out split."""
import json

import pytest

from collapse_tasks import corpus
from recursion.config import DataConfig, ProbesConfig
from recursion.data import load_pool, prepare, real_data, split_heldout
from recursion.loader import ConfigError, load_config
from recursion.words import lower_alnum

NOTEBOOK = DataConfig(max_chars=300_000, min_chars=21, min_words=5, count_words="lower_alnum", heldout_fraction=0.1)


def test_first_characters_long_lines_and_regex_words():
    text = "\n\n".join(corpus.works("train").values())[:300_000]  # the works in name order, a blank line between
    expected = [s for s in (line.strip() for line in text.split("\n")) if len(s) > 20 and len(lower_alnum(s)) >= 5]
    assert load_pool(NOTEBOOK) == expected and 5000 < len(expected) < 6000
    assert expected[0] == "ALL'S WELL THAT ENDS WELL"  # words are counted, not changed
    # whitespace words and regex words differ: punctuation alone is a whitespace word, not a regex word
    whitespace = load_pool(DataConfig(max_chars=300_000, min_chars=21, min_words=5))
    assert set(expected) != set(whitespace)
    assert load_pool(DataConfig(min_chars=40)) == [t for t in load_pool(DataConfig()) if len(t) >= 40]


def test_defaults_keep_the_shipped_lines():
    assert load_pool(DataConfig()) == corpus.lines("train", min_words=5)


def test_min_chars_and_word_counting_on_jsonl(tmp_path):
    path = tmp_path / "d.jsonl"
    texts = ["a b c d e", "-- -- -- -- --", "aaaaaaaaaaaaaaaaaaaaaaaaaa b"]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert load_pool(DataConfig(source=f"jsonl:{path}", min_words=5)) == ["a b c d e", "-- -- -- -- --"]
    assert load_pool(DataConfig(source=f"jsonl:{path}", min_words=5, count_words="lower_alnum")) == ["a b c d e"]
    assert load_pool(DataConfig(source=f"jsonl:{path}", min_words=1, min_chars=15)) == ["aaaaaaaaaaaaaaaaaaaaaaaaaa b"]


def test_min_chars_and_word_counting_on_templated_records(tmp_path):
    path = tmp_path / "s.jsonl"
    rows = [{"title": f"Title {i}", "abstract": "First. " + a} for i, a in enumerate(["a b c d e", "-- -- -- -- --",
                                                                                    "aaaaaaaaaaaaaaaaaaaaaaaaaa b"])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refs = lambda **kw: [d.partition("\nThe abstract of the paper is: First. ")[2] for d in load_pool(  # noqa: E731
        DataConfig(source=f"jsonl:{path}", template="sciabs", **kw))]
    assert refs(min_words=5) == ["a b c d e", "-- -- -- -- --"]
    assert refs(min_words=5, count_words="lower_alnum") == ["a b c d e"]  # as any text field
    assert refs(min_words=1, min_chars=15) == ["aaaaaaaaaaaaaaaaaaaaaaaaaa b"]


def test_heldout_split_is_random_seeded_disjoint_and_sized_like_the_notebook():
    pool = [f"line {i}" for i in range(1001)]
    rest, held = split_heldout(pool, 0.1, seed=3)
    assert len(rest) == int(1001 * 0.9) == 900 and len(held) == 101
    assert sorted(rest + held, key=pool.index) == pool and rest == sorted(rest, key=pool.index)  # source order
    assert (rest, held) == split_heldout(pool, 0.1, seed=3) and held != split_heldout(pool, 0.1, seed=4)[1]
    assert held != pool[900:]  # random, not the tail
    assert split_heldout(pool, 0.0, seed=3) == (pool, [])
    data = real_data(prepare(NOTEBOOK, ProbesConfig(num_prompts=10)), seed=0)
    assert len(data.heldout) == 550 and len(data.train) == 4942
    assert not set(data.heldout) & set(data.train + data.rest)
    assert real_data(prepare(DataConfig(num_train=100), ProbesConfig(num_prompts=3)), seed=0).heldout == []


@pytest.mark.parametrize("data, match", [
    ("{min_chars: -1}", r"data.min_chars must be >= 0"),
    ("{max_chars: 0}", r"data.max_chars must be >= 1"),
    ("{source: 'jsonl:x.jsonl', max_chars: 10}", r"data.max_chars applies only to the shipped corpus"),
    ("{heldout_fraction: 1.0}", r"data.heldout_fraction must be in \[0, 1\)"),
    ("{count_words: bpe}", r"data.count_words = 'bpe' is not valid; choose one of: whitespace, lower_alnum"),
])
def test_bad_data_options_name_the_key(tmp_path, data, match):
    path = tmp_path / "c.yaml"
    path.write_text(f"name: t\nmodel: {{backend: ngram}}\ndata: {data}\n")
    with pytest.raises(ConfigError, match=match):
        load_config(path)
