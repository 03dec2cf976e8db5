"""The paper configs against their fidelity table (configs/README.md), their model shapes against the
recorded parameter counts, and a reduced run of each through the driver on CPU."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from recursion.config import load_config, to_dict

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "configs" / "README.md"
PAPER_CONFIGS = sorted(p.stem for pattern in ("shumailov*", "gerstgrasser*", "guo_*", "gambetta*")
                       for p in (ROOT / "configs").glob(f"{pattern}.yaml"))
SPEC = re.compile(r"`(?:([\w.\-]+): )?([\w.]+) = ([^`]*)`")
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


def test_every_paper_config_has_a_table_and_every_row_a_class():
    tables = sections()
    assert sorted(tables) == PAPER_CONFIGS
    for name, rows in tables.items():
        assert rows, name
        for row in rows:
            assert len(row) == 4, row
            row_class(row[2])


@pytest.mark.parametrize("name", PAPER_CONFIGS)
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
