"""Real-data sources: shipped corpus, local JSONL, the hub code path on a local folder, pairs, blocks."""
import json

import pytest

from recursion.config import DataConfig
from recursion.data import load_pool, real_data, split_prompt


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


RECORDS = [{"document": f"doc {i} " + "word " * 6, "summary": f"summary number {i} of it", "n": i} for i in range(30)]


def test_shipped_corpus():
    pool = load_pool(DataConfig())
    assert len(pool) > 80_000 and all(len(t.split()) >= 5 for t in pool)
    blocks = load_pool(DataConfig(unit="blocks", min_words=20))
    assert all(len(b.split()) >= 20 for b in blocks)


def test_jsonl_pairs_and_prompts(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", RECORDS)
    cfg = DataConfig(source=f"jsonl:{path}", field="summary", prompt_field="document", min_words=2)
    pool = load_pool(cfg)
    assert pool[3] == RECORDS[3]["document"].strip() + "\n\n" + RECORDS[3]["summary"]
    assert split_prompt(pool[3], "\n\n") == RECORDS[3]["document"].strip() + "\n\n"
    data = real_data(cfg, seed=0, num_probe_prompts=5)
    assert len(data.probe_prompts) == 5 and len(data.train) == 25
    assert not set(data.probe_prompts) & set(data.train)
    with pytest.raises(ValueError, match="no field 'title'"):
        load_pool(DataConfig(source=f"jsonl:{path}", field="title"))


def test_hub_code_path_on_a_local_folder(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", RECORDS)
    pool = load_pool(DataConfig(source=f"hf:{tmp_path}", field="summary", min_words=2))
    assert sorted(pool) == sorted(r["summary"] for r in RECORDS)


def test_chunking_and_folds(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": " ".join(f"w{i}" for i in range(10))}])
    assert load_pool(DataConfig(source=f"jsonl:{path}", chunk_words=4, min_words=1)) == [
        "w0 w1 w2 w3", "w4 w5 w6 w7", "w8 w9"]
    data = real_data(DataConfig(num_train=1000), seed=0, num_probe_prompts=3)
    assert data.fresh(1, 10) != data.fresh(2, 10) and not set(data.fresh(1, 10)) & set(data.train)
    with pytest.raises(ValueError, match="enough for"):
        data.fresh(10**6, 10)
    with pytest.raises(ValueError, match="num_train"):
        real_data(DataConfig(source=f"jsonl:{path}", min_words=1, num_train=5), seed=0, num_probe_prompts=0)
