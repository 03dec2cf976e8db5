"""Local stand-ins for the hub datasets of the hub-backed tasks, shaped like the real ones."""
import pytest

from collapse_tasks import corpus


def hub_rows() -> dict[str, tuple[str, list[dict]]]:
    """``{dataset_path: (split, rows)}``: held-out Shakespeare dressed as each hub dataset."""
    blocks = [b for b in corpus.blocks("heldout") if len(b.split()) >= 40][:60]
    lines = corpus.lines("heldout")[:400]
    pages = [" = " + lines[i] + " = \n " + " ".join(blocks[i:i + 6]).replace("-", " @-@ ") + " \n" for i in range(0, 30, 6)]
    return {
        "EleutherAI/wikitext_document_level": ("test", [{"page": p} for p in pages]),
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


@pytest.fixture
def fake_hub(monkeypatch):
    """``datasets.load_dataset`` answering the hub-backed tasks' paths from :func:`hub_rows`."""
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
