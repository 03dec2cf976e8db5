"""The stage table: every stage of a generation declared once, in the order it runs.

A :class:`Stage` names the stages whose outputs it reads (redone with other bytes, they make it
run again: :class:`recursion.rundir.RunDir`), the files it writes, the generations whose model
folders it loads (checkpoint retention keeps them: :mod:`recursion.checkpoints`), whether the
experiment runs it, and the function that runs it — in the module that owns the work:

========= ================================================ ==========================================
stage     runs                                             writes
========= ================================================ ==========================================
data      :func:`recursion.regimes.data_stage`             the training set (the regime's), held out
train     :func:`recursion.backends.base.train_stage`      ``model/`` (every rank, under accelerate)
eval      :func:`recursion.scoring.eval_stage`             ``lm_eval.json``
generate  :func:`recursion.generation.generate_stage`      ``synthetic.jsonl``
select    :func:`recursion.filters.select_stage`           ``selected.jsonl`` (and the transform's)
probes    :func:`recursion.probes.probes_stage`            ``probes.json``
diversity :func:`recursion.data_diversity.diversity_stage` ``data_diversity.json``
========= ================================================ ==========================================

The driver's loop, :func:`planned_stages` (the manifest's stages), resume and retention read
this table. A stage function takes a :class:`Context` and returns the files it wrote beyond its
declared ``outputs`` (or ``None``). Every stage draws its randomness from :func:`stage_seed`, a
function of ``(seed, generation, the stage's index in STAGES)``: new stages go at the end.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from . import data_diversity, filters, generation, probes, regimes, scoring
from .artifacts import DATA_DIVERSITY, LM_EVAL, LM_EVAL_SAMPLES, MODEL, PROBES, SELECTED, SYNTHETIC, gen_dir, gen_name
from .backends.base import train_stage
from .config import Experiment
from .filters import Lazy
from .plugins import nothing_to_load

Reads = list[tuple[int, str]]  # (generation, stage)


def _pool(g: int) -> Reads:
    """A training set after generation 0 may only *reference* rows of earlier files (train_sources.json,
    the same bytes whatever those files hold): whoever reads the training set reads those files too."""
    return [(k, "select") for k in range(g)] + ([(0, "data")] if g else [])


def _always(exp: Experiment) -> bool:
    return True


def reads_gen0_model(exp: Experiment) -> bool:
    """Whether selection loads generation 0's model (the filter's or the transform's option says so)."""
    return exp.filter.reads_gen0_model or exp.transform.reads_gen0_model


def _gen0(exp: Experiment) -> list[int]:
    return [0] if reads_gen0_model(exp) else []


@dataclass(frozen=True)
class Stage:
    """One stage: ``reads(g)`` the stages whose outputs it reads, ``outputs(ctx)`` its files,
    ``models(exp, g)`` the generations whose model folders it loads, ``enabled(exp)`` whether it
    runs, ``run(ctx)`` the work, ``preflight(exp)`` raises a one-line ``ValueError`` before any work
    when what it will load cannot be loaded; ``trains``: it writes the generation's model (every
    rank runs it, and checkpoint retention follows it)."""

    name: str
    run: Callable
    reads: Callable[[int], Reads]
    outputs: Callable[[Context], list[Path]]
    models: Callable[[Experiment, int], list[int]]
    enabled: Callable[[Experiment], bool] = _always
    preflight: Callable[[Experiment], None] = nothing_to_load
    trains: bool = False


def _in_gen(*names: str) -> Callable[[Context], list[Path]]:
    return lambda ctx: [ctx.gen(ctx.g) / n for n in names]


STAGES: tuple[Stage, ...] = (
    # regimes hand on earlier generations' selections; accumulate_select scores them with the last model
    Stage("data", regimes.data_stage, lambda g: _pool(g) + ([(g - 1, "train")] if g else []), lambda ctx: [],
          lambda exp, g: [g - 1, *_gen0(exp)] if g and exp.regime.selects else []),
    # the previous model: its vocabulary or tokenizer, and the weights under init: previous
    Stage("train", train_stage, lambda g: [(g, "data")] + _pool(g) + ([(g - 1, "train")] if g else []),
          _in_gen(MODEL), lambda exp, g: [g - 1] if g else [], trains=True),
    Stage("eval", scoring.eval_stage, lambda g: [(g, "train")],
          lambda ctx: _in_gen(LM_EVAL, *([LM_EVAL_SAMPLES] if ctx.exp.eval.log_samples else []))(ctx),
          lambda exp, g: [g], enabled=lambda exp: exp.eval.enabled),
    # train_prefix prompts come from the training set
    Stage("generate", generation.generate_stage, lambda g: [(g, "train"), (g, "data")] + _pool(g),
          _in_gen(SYNTHETIC), lambda exp, g: [g]),
    # a transform edits with generation 0's model (or this one), the previous selection as input
    Stage("select", filters.select_stage, lambda g: [(g, "generate"), (g, "train"), (0, "train")]
          + ([(g - 1, "select")] if g else []), lambda ctx: _in_gen(SELECTED, *ctx.exp.transform.files)(ctx),
          lambda exp, g: [g, *_gen0(exp)]),
    # the probes read the held-out documents and the training set
    Stage("probes", probes.probes_stage, lambda g: [(g, "train"), (0, "train"), (g, "generate"), (g, "data"),
                                                    (0, "data")] + _pool(g),
          _in_gen(PROBES), lambda exp, g: [g, 0], enabled=lambda exp: exp.probes.enabled, preflight=probes.preflight),
    # the n-gram floor share: this model
    Stage("diversity", data_diversity.diversity_stage, lambda g: [(g, "data"), (g, "generate"), (g, "train")] + _pool(g),
          _in_gen(DATA_DIVERSITY),
          lambda exp, g: [g] if data_diversity.reads_model(exp) else []),
)
BY_NAME = {s.name: s for s in STAGES}


def _split(name: str) -> tuple[int, Stage]:
    gen, _, stage = name.partition("/")
    return int(gen.removeprefix("gen_")), BY_NAME[stage]


def planned_stages(exp: Experiment) -> list[str]:
    """Every stage a finished replica of ``exp`` has recorded in its manifest, in order."""
    return [f"{gen_name(g)}/{s.name}" for g in range(exp.generations) for s in STAGES if s.enabled(exp)]


def stage_inputs(name: str) -> list[str]:
    """The stages whose outputs stage ``name`` (``gen_03/select``) reads."""
    g, stage = _split(name)
    return list(dict.fromkeys(f"{gen_name(k)}/{s}" for k, s in stage.reads(g)))


def models_read(exp: Experiment, name: str) -> list[int]:
    """The generations whose model folders stage ``name`` loads (checkpoint retention must keep them)."""
    g, stage = _split(name)
    return stage.models(exp, g)


def keeps_gen0(exp: Experiment) -> bool:
    """Whether a stage of a later generation (g = 2) loads generation 0's model."""
    return any(0 in s.models(exp, 2) for s in STAGES if s.enabled(exp))


def stage_seed(seed: int, g: int, stage: str, *stream: int) -> int:
    """The seed of one stage of one generation: a function of (seed, g, stage) only; ``stream``
    gives a stage further independent seeds."""
    return int(np.random.SeedSequence([seed, g, list(BY_NAME).index(stage), *stream]).generate_state(1)[0])


class Models:
    """Loads each model folder once; keeps generation 0's (for the probes) and the current one."""

    def __init__(self, backend):
        self.backend, self.cache, self.fixed = backend, {}, {}

    def get(self, path: Path):
        if path not in self.cache:
            keep = {p: m for p, m in self.cache.items() if p.parent.name == gen_name(0)}
            self.cache = {**keep, path: self.backend.load(path)}
        return self.cache[path]

    def once(self, key: str, load: Callable[[], object]):
        """A model outside the run's folders (a pretrained base, a checkpoint), loaded once per run."""
        if key not in self.fixed:
            self.fixed[key] = load()
        return self.fixed[key]


@dataclass
class Context:
    """What a stage function gets: the experiment, the replica folder ``path``, its ``seed``, the
    back end and its loaded models, the real documents (rank 0), the validation texts, the ranks,
    and the generation ``g`` being run."""

    exp: Experiment
    path: Path
    seed: int
    backend: object
    real: object
    validation: list[str] | None
    ranks: object
    models: Models = field(init=False)
    g: int = 0

    def __post_init__(self):
        self.models = Models(self.backend)

    def gen(self, k: int) -> Path:
        return gen_dir(self.path, k)

    def seed_of(self, stage: str, *stream: int) -> int:
        return stage_seed(self.seed, self.g, stage, *stream)

    def rng(self, stage: str) -> np.random.Generator:
        return np.random.default_rng(self.seed_of(stage))

    def model(self, k: int):
        """Generation ``k``'s model, loaded (once)."""
        return self.models.get(self.gen(k) / MODEL)

    def lazy_model(self, k: int) -> Lazy:
        """Generation ``k``'s model, loaded only if a filter declares it."""
        return Lazy(partial(self.model, k))
