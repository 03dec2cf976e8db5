"""Real-data sources: shipped corpus, local JSONL, the hub code path on a local folder, pairs, blocks."""
import json

import pytest

from recursion.config import DataConfig, ProbesConfig
from recursion.data import load_pool, prepare, real_data, split_prompt


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
    data = real_data(prepare(cfg, ProbesConfig(num_prompts=5)), seed=0)
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
    data = real_data(prepare(DataConfig(num_train=1000), ProbesConfig(num_prompts=3)), seed=0)
    assert data.fresh(1, 10) != data.fresh(2, 10) and not set(data.fresh(1, 10)) & set(data.train)
    with pytest.raises(ValueError, match="enough for"):
        data.fresh(10**6, 10)
    with pytest.raises(ValueError, match="num_train = 5 needs 5 documents, but .* has 3"):
        prepare(DataConfig(source=f"jsonl:{path}", chunk_words=4, min_words=1, num_train=5), ProbesConfig(enabled=False))


def corpus_of(tmp_path, n: int) -> str:
    records = [{"text": f"document number {i} of the corpus"} for i in range(n)]
    return "jsonl:" + str(write_jsonl(tmp_path / f"c{n}.jsonl", records))


@pytest.mark.parametrize("n", [150, 250, 1000])
def test_probes_never_eat_the_training_set(tmp_path, n):
    """More data never means less training data: the training set is num_train, the probes come on top."""
    source = corpus_of(tmp_path, n)
    cfg = DataConfig(source=source, num_train=100)
    data = real_data(prepare(cfg, ProbesConfig(num_prompts=50)), seed=0)
    assert len(data.train) == 100 and len(data.probe_prompts) == 50
    assert not set(data.train) & set(data.probe_prompts) and len(data.rest) == n - 150
    # the default 200 probes do not fit beside 100 training documents in 150 or 250 documents: an error, not less training
    if n < 300:
        with pytest.raises(ValueError, match=rf"num_train = 100 and probes.num_prompts = 200 \(held out\) need 300 documents, "
                                             rf"but data.source .* has {n}; lower"):
            prepare(cfg, ProbesConfig())
    else:
        assert len(real_data(prepare(cfg, ProbesConfig()), seed=0).train) == 100


@pytest.mark.parametrize("n", [150, 250])
def test_all_documents_hold_out_at_most_half_for_probes(tmp_path, n):
    cfg = DataConfig(source=corpus_of(tmp_path, n))  # num_train: null = every document not held out
    with pytest.raises(ValueError, match=rf"would hold out 200 of the {n} documents .*at most half"):
        prepare(cfg, ProbesConfig())
    data = real_data(prepare(cfg, ProbesConfig(num_prompts=50)), seed=0)
    assert (len(data.train), len(data.probe_prompts)) == (n - 50, 50)
    assert len(real_data(prepare(cfg, ProbesConfig(enabled=False)), seed=0).train) == n  # no probes: nothing held out


def test_shared_probes_leave_the_pool_whole(tmp_path):
    """probes.from_pool: shared draws the probe texts from the shuffled pool and keeps every document in it."""
    cfg = DataConfig(source=corpus_of(tmp_path, 150))
    held = real_data(prepare(cfg, ProbesConfig(num_prompts=50)), seed=3)
    shared = real_data(prepare(cfg, ProbesConfig(num_prompts=50, from_pool="shared")), seed=3)
    assert len(held.train) == 100 and len(shared.train) == 150 and shared.rest == []
    assert shared.probe_prompts == held.probe_prompts and set(shared.probe_prompts) <= set(shared.train)
    with pytest.raises(ValueError, match="probes.num_prompts = 200 but .* has only 150 documents .*shared"):
        prepare(cfg, ProbesConfig(from_pool="shared", num_prompts=200))


def test_probe_prompts_from_their_own_file_or_split(tmp_path):
    cfg = DataConfig(source=corpus_of(tmp_path, 150), num_train=150)
    prompts = tmp_path / "probes.txt"
    prompts.write_text("".join(f"probe prompt {i}\n" for i in range(60)))
    data = real_data(prepare(cfg, ProbesConfig(num_prompts=40, prompts_file=str(prompts))), seed=0)
    assert len(data.train) == 150 and data.probe_prompts == [f"probe prompt {i}" for i in range(40)]
    with pytest.raises(ValueError, match="probes.num_prompts = 200 but probes.prompts_file .* has only 60 prompts"):
        prepare(cfg, ProbesConfig(prompts_file=str(prompts)))
    # a hub dataset (here a local folder) with a second split
    folder = tmp_path / "hub"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"text": f"training document number {i} is here"} for i in range(30)])
    write_jsonl(folder / "validation.jsonl", [{"text": f"validation document number {i} is here"} for i in range(30)])
    data = real_data(prepare(DataConfig(source=f"hf:{folder}"), ProbesConfig(num_prompts=20, split="validation")), seed=1)
    assert len(data.train) == 30 and all(p.startswith("validation") for p in data.probe_prompts) and len(data.probe_prompts) == 20


def test_probe_split_needs_a_hub_source():
    from recursion.loader import ConfigError, experiment_from_dict

    with pytest.raises(ConfigError, match="probes.split = 'validation' needs an hf: data.source"):
        experiment_from_dict({"name": "x", "probes": {"split": "validation"}})
    with pytest.raises(ConfigError, match="choose one"):
        experiment_from_dict({"name": "x", "probes": {"split": "v", "prompts_file": "p.txt"}})
    with pytest.raises(ConfigError, match="probes.from_pool = shared needs a jsonl: or hf: data.source"):
        experiment_from_dict({"name": "x", "probes": {"from_pool": "shared"}})
    with pytest.raises(ConfigError, match="from_pool = shared draws the probes from the pool"):
        experiment_from_dict({"name": "x", "data": {"source": "hf:x"}, "probes": {"from_pool": "shared", "split": "v"}})


def test_offline_hub_source_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"^data.source 'hf:nobody/no_such_dataset': the Hugging Face hub cannot be reached "
                                         r"\(offline\? .*\); give a local copy") as err:
        load_pool(DataConfig(source="hf:nobody/no_such_dataset"))
    assert "\n" not in str(err.value)


# -- tokens, templates, validation ----------------------------------------------------------------------
def test_token_blocks_are_group_texts_of_the_model_tokenizer(tmp_path, tiny_gpt2):
    from transformers import AutoTokenizer

    from collapse_tasks.blocks import group_texts
    from recursion.config import TokensConfig
    from recursion.data import token_documents

    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    lines = ["", " = A heading = \n", "", " The first line of a page , with words . \n", " and another one \n"] * 6
    docs = token_documents(lines, TokensConfig(tokenizer=str(tiny_gpt2), size=8, map_batch_size=4, map_num_proc=2))
    blocks = group_texts(tok(lines)["input_ids"], 8, batch_size=4, num_proc=2)
    assert docs == [tok.decode(b, clean_up_tokenization_spaces=False) for b in blocks]
    heads = token_documents(["one two three four five six seven", "a b"], TokensConfig(tokenizer=str(tiny_gpt2), size=3,
                                                                                     mode="truncate"))
    assert heads == [tok.decode(tok("one two three four five six seven")["input_ids"][:3]), "a b"]
    path = write_jsonl(tmp_path / "w.jsonl", [{"text": t} for t in lines])
    pool = load_pool(DataConfig(source=f"jsonl:{path}", min_words=0, tokens=TokensConfig(tokenizer=str(tiny_gpt2), size=8)))
    assert pool == [tok.decode(b, clean_up_tokenization_spaces=False) for b in group_texts(tok(lines)["input_ids"], 8)]


def test_validation_split_is_loaded_and_cut_alike(tmp_path):
    from recursion.data import validation_texts

    for split, n in (("train", 12), ("validation", 5)):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"text": f"{split} words number {i} " * 3} for i in range(n)])
    cfg = DataConfig(source=f"hf:{tmp_path}", validation_split="validation", chunk_words=4, min_words=1)
    val = validation_texts(cfg)
    assert val and all(t.startswith("validation") or len(t.split()) <= 4 for t in val) and len(val) == 5 * 3
    assert not set(val) & set(load_pool(cfg))


def test_prepare_keeps_the_validation_texts(tmp_path):
    from recursion.data import validation_texts

    for split in ("train", "validation"):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"text": f"{split} document number {i} here"} for i in range(12)])
    cfg = DataConfig(source=f"hf:{tmp_path}", validation_split="validation", min_words=1)
    assert prepare(cfg, ProbesConfig(enabled=False)).validation == validation_texts(cfg)
    assert prepare(DataConfig(source=f"hf:{tmp_path}", min_words=1), ProbesConfig(enabled=False)).validation is None


@pytest.mark.parametrize("source, split, match", [
    ("shakespeare", "validation", r"data.validation_split = 'validation' is not a split of the shipped corpus "
                                  r"\(source: shakespeare\); choose one of: train, heldout, all"),
    ("hub", "nope", r"data.source 'hf:.*' \(split 'nope'\)"),
])
def test_a_bad_validation_split_is_refused_before_any_folder(tmp_path, source, split, match):
    from recursion.driver import run_experiment

    hub = tmp_path / "hub"
    hub.mkdir()
    write_jsonl(hub / "train.jsonl", [{"text": f"training document number {i} is here"} for i in range(30)])
    source = f"hf:{hub}" if source == "hub" else source
    config = tmp_path / "c.yaml"
    config.write_text(f"name: t\nmodel: {{backend: hf_scratch, train: {{hand_on: best_validation}}}}\neval: {{enabled: false}}\n"
                      f"probes: {{enabled: false}}\ndata: {{source: '{source}', validation_split: {split}}}\n")
    with pytest.raises(ValueError, match=match):
        run_experiment(config, tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("template, fields", [
    ("xsum", lambda i: {"document": f"Article text {i}. " * 20, "summary": f"A summary of article {i}.", "id": str(i)}),
    ("sciabs", lambda i: {"title": f"On thing {i}", "abstract": f"We study thing {i}. It works well."}),
    ("writingprompts", lambda i: {"prompt": f"[ WP ] A prompt {i}", "story": f"Once {i}. <newline> Then."}),
])
def test_training_documents_and_the_task_prompts_agree(tmp_path, monkeypatch, template, fields):
    """One format: the generation prompt of every training document (its part up to the template's
    marker) is exactly a prompt the lm-eval task builds from the same records."""
    import datasets

    from collapse_tasks import hub_utils

    rows = [fields(i) for i in range(12)]
    cfg = DataConfig(source=f"jsonl:{write_jsonl(tmp_path / 'x.jsonl', rows)}", template=template, min_words=1)
    pool = load_pool(cfg)
    local = datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: local)
    task_docs = getattr(hub_utils, f"{template}_dataset")(path="hub/name")["test"]
    assert sorted(split_prompt(doc, cfg.prompt_end) for doc in pool) == sorted(task_docs["prompt"])
    assert sorted(pool) == sorted(f"{d['prompt']} {d['reference']}" for d in task_docs)
