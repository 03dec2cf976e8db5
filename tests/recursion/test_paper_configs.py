"""Every shipped config against its fidelity table (configs/README.md: a config without a table, or a
value its table states and the config does not hold, fails), the paper configs' model shapes against
the recorded parameter counts, and a reduced run of each paper config through the driver on CPU."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from recursion.loader import load_config, to_dict

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "configs" / "README.md"
PAPER_CONFIGS = sorted(p.stem for pattern in ("shumailov*", "gerstgrasser*", "guo_*", "gambetta*")
                       for p in (ROOT / "configs").glob(f"{pattern}.yaml"))
#: Sections of lm-eval tasks rather than driver configs (their rows name task YAML keys).
TASK_SECTIONS = ("collapse_vs",)
SPEC = re.compile(r"`(?:([\w.\-]+): )?([\w.]+) = ([^`]*)`")
#: Every shipped config: each must have its table (the seed labs' and our own configs too).
SHIPPED_CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
CLASSES = ("match", "deviation", "ours")


def sections() -> dict[str, list[list[str]]]:
    """``{config name: rows}`` of the fidelity tables (cells: setting, paper, config, source)."""
    out: dict[str, list[list[str]]] = {}
    name = None
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            out[name] = []
        elif name and line.startswith("| ") and not line.startswith(("| setting", "| config")):
            out[name].append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return {k: v for k, v in out.items() if k != "Summary"}


def row_class(config_cell: str) -> str:
    """``deviation`` when the row names one, else the class its config cell starts with."""
    if "deviation:" in config_cell:
        return "deviation"
    head = config_cell.split(":", 1)[0]
    assert head in CLASSES, f"a config cell must start with match:, deviation: or ours:, got {config_cell[:40]!r}"
    return head


def parse(value: str):
    """A YAML scalar or list; numbers YAML 1.1 reads as strings (``2e-05``) as numbers."""
    parsed = yaml.safe_load(value)
    if isinstance(parsed, str):
        try:
            return float(parsed)
        except ValueError:
            return parsed
    return parsed


def lookup(tree, dotted: str):
    for key in dotted.split("."):
        assert isinstance(tree, dict) and key in tree, f"no key {dotted!r}"
        tree = tree[key]
    return tree


def same(actual, expected) -> bool:
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and isinstance(actual, (int, float)):
        return math.isclose(actual, expected, rel_tol=1e-12)
    return actual == expected


def task_metadata(task: str) -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(ROOT / "collapse_tasks" / f"{task}.yaml", resolve_func=False)


def test_every_shipped_config_has_a_table_and_every_row_a_class():
    tables = sections()
    missing = sorted(set(SHIPPED_CONFIGS) - set(tables))
    assert not missing, f"configs/README.md has no table for {missing}"
    tasks = {p.stem for p in (ROOT / "collapse_tasks").rglob("*.yaml")}
    known = set(SHIPPED_CONFIGS) | tasks | set(TASK_SECTIONS)  # collapse_vs: the VS tasks' shared base
    assert set(tables) <= known, sorted(set(tables) - known)
    for name, rows in tables.items():
        assert rows, name
        for row in rows:
            assert len(row) == 4, row
            row_class(row[2])


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_table_values_are_the_resolved_config(name):
    arms = {arm: json.loads(json.dumps(to_dict(exp))) for arm, exp in load_config(ROOT / "configs" / f"{name}.yaml").items()}
    checked = 0
    for setting, _paper, config_cell, _source in sections()[name]:
        for where, key, value in SPEC.findall(config_cell):
            expected = parse(value)
            if where.startswith("collapse_"):
                trees = {where: task_metadata(where)}
            else:
                assert not where or where in arms, f"{name}: no arm {where!r} ({setting})"
                trees = {where: arms[where]} if where else arms
            for label, tree in trees.items():
                actual = lookup(tree, key)
                assert same(actual, expected), f"{name} [{label}] {setting}: {key} is {actual!r}, the table says {expected!r}"
                checked += 1
    assert checked >= (8 if name in PAPER_CONFIGS else 3)


@pytest.mark.parametrize("name", TASK_SECTIONS)
def test_task_table_values_are_the_task_yamls(name):
    """A task section's `` `collapse_…: key = value` `` against that task's YAML (includes resolved); every
    value names a task of the section's family."""
    checked = 0
    for setting, _paper, config_cell, _source in sections()[name]:
        for where, key, value in SPEC.findall(config_cell):
            assert where.startswith(name), f"{name} {setting}: {where!r} is not a {name}_* task"
            actual = lookup(task_metadata(where), key)
            assert same(actual, parse(value)), f"{name} [{where}] {setting}: {key} is {actual!r}, the table says {value!r}"
            checked += 1
    assert checked >= 8


def test_summary_counts_the_rows():
    """The Summary table's counts are the tables' rows by class."""
    text = TABLE.read_text(encoding="utf-8")
    summary = text[text.index("## Summary"):]
    counted = {}
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `"):
            counted[cells[0].strip("`")] = tuple(int(c.split()[0]) for c in cells[1:5])
    tables = sections()
    assert sorted(counted) == sorted(tables)
    for name, rows in tables.items():
        classes = [row_class(r[2]) for r in rows]
        assert counted[name] == (len(rows), *(classes.count(c) for c in CLASSES)), name


def test_gambettas_pool_holds_all_5000_human_documents():
    """The probe prompts are drawn from the pool without removing it: selection, FRESH, RANDOM and the
    generation prompts all draw from the 5,000 human documents (gen_docs.py keeps them all)."""
    from recursion.data import prepare, real_data

    exp = load_config(ROOT / "configs" / "gambetta_surplexity_lora.yaml")["fresh"]
    pool = [f"human document {i}" for i in range(5000)]
    real = real_data(prepare(exp.data, exp.probes, pool=pool), seed=0)
    assert len(real.train) == 5000 and sorted(real.train) == sorted(pool)
    assert len(real.probe_prompts) == exp.probes.num_prompts == 1000 and set(real.probe_prompts) <= set(pool)


# -- model shapes --------------------------------------------------------------------------------------
RECORDED_PARAMETERS = {  # model_num_parameters of the runs in Gerstgrasser et al.'s results notebook
    "gerstgrasser_tinystories": 8_890_880,
    "gerstgrasser_tinystories_llama2_12m": 12_488_960,
    "gerstgrasser_tinystories_llama2_42m": 41_755_136,
    "gerstgrasser_tinystories_llama2_126m": 125_553_408,
}


@pytest.mark.parametrize("name", sorted(RECORDED_PARAMETERS))
def test_gerstgrasser_shapes_have_the_recorded_parameter_counts(name):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from recursion.backends.hf import HFScratchBackend

    exp = next(iter(load_config(ROOT / "configs" / f"{name}.yaml").values()))
    config = HFScratchBackend(exp.model).model_config(exp.model.vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == RECORDED_PARAMETERS[name]


# -- a reduced run of each paper config through the driver, on CPU --------------------------------------
def hub_splits() -> dict[str, dict[str, list[dict]]]:
    """Shipped Shakespeare dressed as each hub dataset the paper configs read: ``{path: {split: rows}}``."""
    from collapse_tasks import corpus

    lines, blocks = corpus.lines("heldout"), [b for b in corpus.blocks("heldout") if len(b.split()) >= 40]

    def wikitext(chunk):  # wikitext-2-raw-v1 lines: headings, empty lines, paragraphs ending in " \n"
        return [{"text": t} for i in range(0, len(chunk), 3) for t in ("", f" {' '.join(chunk[i:i + 3])} \n")]

    pages = [{"page": " = T = \n " + " ".join(blocks[i:i + 4]) + " \n"} for i in range(0, 12, 4)]
    return {
        "Salesforce/wikitext": {"train": wikitext(lines[:60]), "validation": wikitext(lines[60:75]),
                                "test": wikitext(lines[75:105])},
        "EleutherAI/wikitext_document_level": {"test": pages},
        "roneneldan/TinyStories": {"train": [{"text": " ".join(lines[i:i + 3])} for i in range(0, 90, 3)],
                                   "validation": [{"text": " ".join(lines[i:i + 3])} for i in range(90, 120, 3)]},
        "EdinburghNLP/xsum": {s: [{"document": blocks[i], "summary": lines[i], "id": str(i)} for i in r]
                              for s, r in (("train", range(0, 30)), ("test", range(30, 40)))},
        "aalksii/ml-arxiv-papers": {s: [{"title": lines[i], "abstract": blocks[i]} for i in r]
                                    for s, r in (("train", range(0, 30)), ("test", range(30, 40)))},
        "euclaise/writingprompts": {s: [{"prompt": f"[ WP ] {lines[i]}", "story": f"{lines[i + 1]} <newline> {lines[i + 2]}"}
                                        for i in r] for s, r in (("train", range(0, 90, 3)), ("test", range(90, 120, 3)))},
        "dgambettaphd/prompt_wxs_5000doc": {"train": [{"text": b, "dataset": "W"} for b in blocks[:30]]},
    }


def local_load_dataset(real):
    """A ``datasets.load_dataset`` answering the paper configs' hub datasets with local rows of the same
    shape (:func:`hub_splits`), and any other path with ``real``."""
    import datasets

    rows = hub_splits()

    def load_dataset(path, name=None, split=None, **kwargs):
        if path not in rows:
            return real(path, name, split=split, **kwargs)
        splits = {s: datasets.Dataset.from_list(r) for s, r in rows[path].items()}
        return splits[split] if split else datasets.DatasetDict(splits)

    return load_dataset


@pytest.fixture
def paper_hub(monkeypatch):
    """``datasets.load_dataset`` answering the paper configs' hub datasets with local rows of the same shape."""
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", local_load_dataset(datasets.load_dataset))


def offline_metadata() -> dict:
    from collapse_tasks.gen_utils import embedder_options

    return {"sentence_splitter": "punkt_untrained", "embedder": embedder_options()["model_name"]}


SMALL = ["generations=2", "seeds=[0]", "probes.num_prompts=3", "eval.limit=2", "eval.batch_size=8",
         "runtime.threads=1", "model.train.max_steps=2"]
TINY_SCRATCH = ["model.n_layer=1", "model.n_embd=32", "model.n_head=2", "model.n_inner=64", "model.vocab_size=300",
                "model.train.batch_size=8", "model.train.block_size=64", "generate.decoding.max_new_tokens=12",
                "generate.decoding.batch_size=32", "eval.gen_kwargs=max_gen_toks=8"]


def reduced(name: str, tiny_gpt2) -> list[str]:
    """Size-only overrides (and the local stand-in model) for a CPU run of a paper config."""
    tiny = str(tiny_gpt2)
    if name.startswith("shumailov"):
        return [f"model.pretrained={tiny}", f"data.tokens.tokenizer={tiny}", "generate.decoding.batch_size=16"]
    if name.startswith("gerstgrasser"):
        return TINY_SCRATCH
    if name.startswith("guo"):
        return [f"model.pretrained={tiny}", "data.num_train=20", "data.min_words=1", "model.train.block_size=128",
                "generate.decoding.max_new_tokens=8", "eval.gen_kwargs=max_gen_toks=8",
                f"eval.metadata={json.dumps(offline_metadata())}"]
    return [f"model.pretrained={tiny}", f"data.tokens.tokenizer={tiny}", "data.tokens.size=40",
            "model.lora.target_modules=[c_attn]", "model.train.block_size=128", "model.train.gradient_checkpointing=false",
            "filter.top_k=6", "generate.num_docs=6", "generate.prefix_tokens=16", "generate.decoding.max_new_tokens=8",
            "generate.decoding.min_new_tokens=6", "eval.tasks=[collapse_ppl_shakespeare]"]  # HellaSwag is hub-only


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_a_reduced_run_of_each_paper_config(name, tmp_path, tiny_gpt2, paper_hub):
    from recursion.artifacts import read_jsonl, read_training_texts, record_prompt
    from recursion.driver import run_experiment

    arms = load_config(ROOT / "configs" / f"{name}.yaml")
    first = next(iter(arms))
    overrides = SMALL + reduced(name, tiny_gpt2)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text()),
                                                     "arms": {first: yaml.safe_load((ROOT / "configs" / f"{name}.yaml")
                                                                                    .read_text())["arms"][first]}}))
    [folder] = run_experiment(tmp_path / "c.yaml", tmp_path / "run", overrides=overrides, log=lambda s: None)
    exp = arms[first]
    for g in range(2):
        gen = folder / f"gen_{g:02d}"
        results = json.loads((gen / "lm_eval.json").read_text())["results"]
        assert set(results) >= set(exp.eval.tasks) - {"hellaswag"}, results.keys()
        synthetic = read_jsonl(gen / "synthetic.jsonl")
        assert synthetic and all(isinstance(r["text"], str) for r in synthetic)
        if exp.generate.keep_prompt:
            assert all(r["text"].startswith(record_prompt(r)) for r in synthetic)
        assert read_training_texts(gen)
    if exp.data.validation_split:
        log = json.loads((folder / "gen_00/model/train_log.json").read_text())
        assert "best_eval_loss" in log[-1] and log[-1]["handed_on"] == exp.model.train.hand_on


@pytest.mark.slow
def test_guo_acceptability_arm_runs_offline(tmp_path, tiny_gpt2, paper_hub):
    """Guo et al.'s acceptability arm through the driver, scored by generation 0's perplexity (the hub
    classifier is not loaded offline): each generation keeps 80% of what it generated."""
    from recursion.artifacts import read_jsonl, read_training_texts
    from recursion.driver import run_experiment

    name = "guo_opt350m_xsum"
    raw = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    arm = {"acceptability_filter": raw["arms"]["acceptability_filter"]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**raw, "arms": arm}))
    overrides = SMALL + reduced(name, tiny_gpt2) + ["arms.acceptability_filter.filter.scorer=gen0_perplexity"]
    [folder] = run_experiment(tmp_path / "c.yaml", tmp_path / "run", overrides=overrides, log=lambda s: None)
    gen = folder / "gen_01"
    synthetic, trained = read_jsonl(gen / "synthetic.jsonl"), read_training_texts(gen)
    assert synthetic and len(trained) == math.ceil(0.8 * len(synthetic))
