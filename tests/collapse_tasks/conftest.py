"""Local stand-ins for the hub datasets of the hub-backed tasks, shaped like the real ones."""
import pytest

from collapse_tasks import corpus


def wikitext_lines(lines: list[str]) -> list[dict]:
    """Lines shaped like wikitext-2-raw-v1's: a heading, empty lines, paragraphs ending in a newline."""
    rows = [{"text": ""}, {"text": " = Heading = \n"}, {"text": ""}]
    for i in range(0, len(lines), 4):
        rows += [{"text": " " + " ".join(lines[i:i + 4]) + " \n"}, {"text": ""}]
    return rows


def hub_rows() -> dict[str, tuple[str, list[dict]]]:
    """``{dataset_path: (split, rows)}``: held-out Shakespeare dressed as each hub dataset."""
    blocks = [b for b in corpus.blocks("heldout") if len(b.split()) >= 40][:60]
    lines = corpus.lines("heldout")[:400]
    pages = [" = " + lines[i] + " = \n " + " ".join(blocks[i:i + 6]).replace("-", " @-@ ") + " \n" for i in range(0, 30, 6)]
    return {
        "EleutherAI/wikitext_document_level": ("test", [{"page": p} for p in pages]),
        "Salesforce/wikitext": ("test", wikitext_lines(lines[:120])),
        "roneneldan/TinyStories": ("validation", [{"text": " ".join(lines[i:i + 5])} for i in range(0, 200, 5)]),
        "euclaise/writingprompts": ("test", [
            {"prompt": f"[ WP ] {lines[i]}", "story": f"{lines[i + 1]} <newline> <newline> {lines[i + 2]}"}
            for i in range(0, 90, 3)
        ]),
        "EdinburghNLP/xsum": ("test", [
            {"document": blocks[i], "summary": lines[i], "id": str(i)} for i in range(30)
        ]),
        "aalksii/ml-arxiv-papers": ("test", [
            {"title": lines[i], "abstract": blocks[i]} for i in range(30)
        ]),
    }


def install_fake_hub(monkeypatch) -> dict[str, tuple[str, list[dict]]]:
    """Make ``datasets.load_dataset`` answer the hub-backed tasks' paths from :func:`hub_rows`."""
    import datasets

    rows = hub_rows()
    real = datasets.load_dataset

    def load_dataset(path, name=None, **kwargs):
        if path not in rows:
            return real(path, name, **kwargs)
        split, records = rows[path]
        return datasets.DatasetDict({split: datasets.Dataset.from_list(records)})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return rows


@pytest.fixture
def fake_hub(monkeypatch):
    """``datasets.load_dataset`` answering the hub-backed tasks' paths from :func:`hub_rows`."""
    return install_fake_hub(monkeypatch)


@pytest.fixture(scope="module")
def fake_hub_module():
    """:func:`fake_hub` for a whole test module."""
    with pytest.MonkeyPatch.context() as mp:
        yield install_fake_hub(mp)


@pytest.fixture(scope="session")
def offline_metadata(tiny_gpt2) -> dict:
    """What the hub-backed tasks need from --model_args / --metadata, answered by local stand-ins."""
    from collapse_tasks.gen_utils import embedder_options

    return {"pretrained": str(tiny_gpt2), "sentence_splitter": "punkt_untrained", "embedder": embedder_options()["model_name"]}
