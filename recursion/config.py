"""The experiment schema: one frozen dataclass per block of an experiment YAML.

An experiment YAML names the data, the model back end, the regime, the selection filter, the
decoding, the lm-eval tasks and the seeds; ``arms`` lists variants (regimes, filters, ...) that run
side by side, each a dict of overrides. :mod:`recursion.loader` reads the YAML into these classes.

A block's dataclass states its constraints in ``problems()`` (``recursion.backends.base.failing``
of ``(ok, key, message)`` checks); the loader reports them with the block's place in the YAML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from .backends.base import Decoding, failing
from .words import WordTokenizer


@dataclass(frozen=True)
class TokensConfig:
    """Documents cut by a model's tokenizer (see :func:`recursion.data.token_documents`).

    ``mode: group`` is HF ``group_texts`` (Shumailov et al.'s ``dataset.py``): every record tokenized
    as the tokenizer does by default (its special tokens included, ``</s>`` first for OPT), the token
    stream cut into exact ``size``-token blocks, the remainder dropped; a block is one document, its
    special tokens written out. ``map_batch_size`` / ``map_num_proc`` reproduce ``datasets.map(
    batched=True, batch_size=..., num_proc=...)``: the records split into ``map_num_proc`` contiguous
    shards, each cut in batches of ``map_batch_size`` records, each batch's remainder dropped.
    ``mode: truncate`` keeps each record's first ``size`` tokens (special tokens included in the
    count, dropped from the text), as Gambetta et al. cut their human documents.
    """

    tokenizer: str = ""  # hub id or folder of the tokenizer (the fine-tuned model's)
    size: int = 64
    mode: Literal["group", "truncate"] = "group"
    map_batch_size: int | None = None  # group: records per datasets.map batch (None: all records at once)
    map_num_proc: int = 1  # group: contiguous shards of datasets.map(num_proc=...)

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (bool(self.tokenizer), "tokenizer", "must name a tokenizer (a hub id or a model folder)"),
            (self.size >= 1, "size", "must be >= 1"),
            (self.map_batch_size is None or self.map_batch_size >= 1, "map_batch_size", "must be >= 1"),
            (self.map_num_proc >= 1, "map_num_proc", "must be >= 1"),
        )


@dataclass(frozen=True)
class DataConfig:
    """The real corpus. ``source``: ``shakespeare`` (shipped), ``jsonl:PATH`` or ``hf:NAME[:CONFIG]``."""

    source: str = "shakespeare"
    unit: Literal["lines", "blocks"] = "lines"  # shipped corpus: lines (Lab 1) or blank-line blocks
    min_words: int = 5
    split: str = "train"  # shipped split or hub split
    revision: str | None = None  # hub revision (e.g. refs/convert/parquet for script-only datasets)
    field: str = "text"  # text field of jsonl / hub records
    prompt_field: str | None = None  # (prompt, text) pairs: a document is prompt + separator + text
    separator: str = "\n\n"
    chunk_words: int | None = None  # cut documents into blocks of this many words
    tokens: TokensConfig | None = None  # cut documents by a tokenizer: exact token blocks, or a token prefix
    template: Literal["xsum", "sciabs", "writingprompts"] | None = None  # (prompt, text) in the eval task's format
    validation_split: str | None = None  # a split of the same source, processed alike: loss per epoch (train.hand_on)
    num_train: int | None = None  # real documents in generation 0's training set (None: all)
    count_words: WordTokenizer = "whitespace"  # the words min_words counts (recursion.words; the text is unchanged)
    min_chars: int = 0  # a document needs at least this many characters, surrounding whitespace stripped
    max_chars: int | None = None  # shakespeare only: read only the first N characters of the split's text
    heldout_fraction: float = 0.0  # share of documents held out at random (replica's seed), never trained on

    def problems(self) -> list[tuple[str, str]]:
        from collapse_tasks.corpus import SPLITS

        kind = self.source.partition(":")[0]
        shipped = f"is not a split of the shipped corpus (source: shakespeare); choose one of: {', '.join(SPLITS)}"
        return failing(
            (self.source != "shakespeare" or self.split in SPLITS, "split", f"= {self.split!r} {shipped}"),
            (self.source != "shakespeare" or self.validation_split in (None, *SPLITS), "validation_split",
             f"= {self.validation_split!r} {shipped}"),
            (self.source == "shakespeare" or (kind in ("jsonl", "hf") and self.source.partition(":")[2] != ""),
             "source", f"= {self.source!r} is not valid; choose one of: shakespeare, jsonl:PATH, hf:NAME[:CONFIG]"),
            (self.min_words >= 0, "min_words", "must be >= 0"),
            (self.min_chars >= 0, "min_chars", "must be >= 0"),
            (self.max_chars is None or self.max_chars >= 1, "max_chars", "must be >= 1"),
            (self.max_chars is None or self.source == "shakespeare", "max_chars",
             "applies only to the shipped corpus (source: shakespeare)"),
            (0.0 <= self.heldout_fraction < 1.0, "heldout_fraction", "must be in [0, 1)"),
            (self.chunk_words is None or self.chunk_words >= 1, "chunk_words", "must be >= 1"),
            (self.num_train is None or self.num_train >= 1, "num_train", "must be >= 1"),
            (bool(self.field), "field", "must name a field of the records"),
            (self.tokens is None or self.chunk_words is None, "tokens", "and chunk_words both cut documents; give one"),
            (self.template is None or kind == "hf" or kind == "jsonl", "template",
             "needs hub or jsonl records with the task's fields"),
            (self.template is None or self.prompt_field is None, "template", "and prompt_field both build (prompt, "
             "text) documents; give one"),
            (self.validation_split is None or kind in ("hf", "shakespeare"), "validation_split",
             "needs a source with splits (shakespeare or hf:NAME)"),
        )

    @property
    def prompt_end(self) -> str | re.Pattern:
        """What ends the prompt of a (prompt, text) document: the template's marker (or pattern), else ``separator``."""
        if self.template is not None:
            from collapse_tasks.hub_utils import PROMPT_END

            return PROMPT_END[self.template]
        return self.separator


@dataclass(frozen=True)
class RegimeConfig:
    """How generation g's training set is built: ``name`` picks the regime (:mod:`recursion.regimes`);
    a regime with options registers a subclass holding them.

    ``selects``: the regime chooses its training set with the filter itself (at the data stage),
    and the select stage hands on every synthetic document.
    """

    selects: ClassVar[bool] = False

    name: str = "replace"

    def fresh_per_generation(self, n_real: int) -> int:
        """Documents of a fresh real fold each generation g >= 1 trains on (checked to exist before any work)."""
        return 0


@dataclass(frozen=True)
class FilterConfig:
    """Which synthetic documents are handed on: ``name`` picks the filter (:mod:`recursion.filters`);
    ``keep`` (a fraction of the pool) or ``top_k`` (a count) sizes every filter; a filter with
    options registers a subclass holding them."""

    name: str = "none"
    keep: float = 1.0  # fraction of the synthetic pool kept
    top_k: int | None = None  # or an exact number of documents

    @property
    def reads_gen0_model(self) -> bool:
        """Whether the filter loads generation 0's model."""
        return False

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (0.0 < self.keep <= 1.0, "keep", "must be in (0, 1]"),
            (self.top_k is None or self.top_k >= 1, "top_k", "must be >= 1"),
        )


def folder_check(name: str | None, key: str) -> tuple[bool, str, str]:
    """A name written as a path (``./x``, ``/x``, ``~/x``) must be an existing folder; anything else is a hub id."""
    path = None if name is None or not name.startswith((".", "/", "~")) else Path(name).expanduser()
    return (path is None or path.is_dir(), key, f"= {name!r}: no such folder")


@dataclass(frozen=True)
class TransformConfig:
    """A transform of real documents that replaces the synthetic pool: ``name`` picks it
    (:mod:`recursion.transforms`); a transform with options registers a subclass holding them.

    The select stage draws its pool from the transform's ``run`` (``none``: the generated
    documents); ``files``: what it writes there (in the generation's folder).
    ``reads_gen0_model``: it loads generation 0's model.
    """

    files: ClassVar[tuple[str, ...]] = ()

    name: str = "none"

    @property
    def reads_gen0_model(self) -> bool:
        return False


@dataclass(frozen=True)
class GenerateConfig:
    """The synthetic corpus of each generation."""

    num_docs: int | None = None  # default: as many as real training documents
    prompt: Literal["unconditional", "real_prefix", "train_prefix", "task"] = "unconditional"
    prefix_tokens: int = 64  # real_prefix / train_prefix: first P tokens of real / this generation's training documents
    prompts_file: str | None = None  # task: JSONL of prompts (field ``text``); default: data's prompts
    keep_prompt: bool = False  # a synthetic document is prompt + continuation (else the continuation only)
    resample_prompts: bool = False  # draw the prompt documents at random each generation (else the first ones)
    decoding: Decoding = field(default_factory=Decoding)

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.num_docs is None or self.num_docs >= 1, "num_docs", "must be >= 1"),
            (self.prefix_tokens >= 1, "prefix_tokens", "must be >= 1"),
        )


@dataclass(frozen=True)
class EvalConfig:
    """lm-eval scoring of every checkpoint, in-process."""

    tasks: tuple[str, ...] = ("collapse",)
    limit: float | None = None
    batch_size: int = 16
    num_fewshot: int | None = None
    gen_kwargs: str | None = None
    apply_chat_template: bool = False
    metadata: dict[str, Any] | None = None  # task metadata, as lm-eval's --metadata (e.g. an offline embedder)
    log_samples: bool = False  # keep every request and response (lm-eval's EvaluationTracker) in gen_XX/lm_eval_samples/
    enabled: bool = True

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.metadata is None or isinstance(self.metadata, dict), "metadata", "must be a mapping"),
            (len(self.tasks) >= 1 or not self.enabled, "tasks", "must list at least one task (or set enabled: false)"),
            (self.limit is None or self.limit > 0, "limit", "must be > 0 (a count, or a fraction < 1)"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.num_fewshot is None or self.num_fewshot >= 0, "num_fewshot", "must be >= 0"),
        )


@dataclass(frozen=True)
class ProbesConfig:
    """Probes stored beside lm-eval results: Gen-0 perplexity of synthetic data, top-1 mass; with
    ``embedding_diagnostics``, Shi et al.'s kNN entropy of the training set and nearest-neighbour
    distance of the generated data to it, on ``embedding_sample`` seeded documents of each.

    The probe prompts come from ``prompts_file`` (one prompt per line, or JSONL with a ``text``
    field), or from ``split`` (another split of an ``hf:`` source, e.g. ``validation``); else from
    the held-out plays (``shakespeare``) or from the corpus (``jsonl:`` / ``hf:``, see
    :mod:`recursion.data`): ``from_pool: held_out`` removes them from it (never trained on),
    ``from_pool: shared`` draws them from it without removing them (Gambetta et al.: every human
    document stays in the pool; a probe prompt may also be a training document).
    """

    enabled: bool = True
    num_prompts: int = 200
    prompt_tokens: int = 16
    prompts_file: str | None = None
    split: str | None = None
    embedding_diagnostics: bool = False  # needs the embeddings extra (sentence-transformers)
    embedding_sample: int = 1000  # documents embedded per set (fixed N: the kNN entropy moves with N)
    embedder: str | None = None  # hub id or folder; null: all-MiniLM-L6-v2 (offline package if installed)
    from_pool: Literal["held_out", "shared"] = "held_out"  # jsonl:/hf: probes: removed from the pool, or drawn from it

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.num_prompts >= 1, "num_prompts", "must be >= 1"),
            (self.from_pool == "held_out" or (self.prompts_file is None and self.split is None), "from_pool",
             "= shared draws the probes from the pool; probes.prompts_file / probes.split give their own"),
            (self.prompt_tokens >= 1, "prompt_tokens", "must be >= 1"),
            (self.prompts_file is None or self.split is None, "prompts_file", "and probes.split both given; choose one"),
            (self.embedding_sample >= 2, "embedding_sample", "must be >= 2 (the kNN entropy needs two points)"),
            folder_check(self.embedder, "embedder"),
        )


@dataclass(frozen=True)
class RuntimeConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None  # torch threads; default: the free cores (recursion.runtime.free_cores)
    trust_remote_code: bool = False
    report_to: tuple[str, ...] = ()  # Trainer loggers (wandb, tensorboard, trackio, ...); checked by the back end

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.threads is None or self.threads >= 1, "threads", "must be >= 1"),
            (len(set(self.report_to)) == len(self.report_to), "report_to", "lists a logger twice"),
        )


@dataclass(frozen=True)
class CheckpointsConfig:
    """Which model folders a replica keeps, and the dtype their weights are saved in.

    ``keep``: ``all`` — every generation's ``model/``; ``last`` — rolling: a folder is deleted as soon
    as no stage still to run needs it (generation g-1's once generation g is trained, generation
    0's — the probes' reference — once the last generation's probes are done), so at most three
    exist at once and one, the final generation's, when the replica is finished;
    ``none_but_final`` — every folder is kept while the replica runs, and all but the final
    generation's are deleted when it finishes (the end state of ``last``, the peak disk of ``all``).
    ``dtype``: ``auto`` saves the weights as trained; ``float32`` / ``bfloat16`` / ``float16`` cast
    them first (safetensors). A cast is part of the experiment: with ``init: previous`` the next
    generation continues from the cast weights, and every stage scores them.
    """

    keep: Literal["all", "last", "none_but_final"] = "all"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


#: Experiment and arm names are folder names (``runs/<name>``, ``RUN/<arm>/``): letters, digits, ``_``,
#: ``.`` and ``-``, not starting with ``.`` or ``-`` (so never ``..``, an absolute path or a hidden folder).
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
#: Most generations a config may ask for: the stage list is built up front (a typo of 10⁹ would
#: exhaust memory after the checks said "ready").
MAX_GENERATIONS = 10_000


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an experiment's or an arm's folder name, or ``None``.

    Examples
    --------
    >>> name_problem("replace_0.5"), name_problem("../x")
    (None, "= '../x' is not a folder name: use letters, digits, '_', '.', '-' (not first: '.', '-'), at most 100")
    """
    if isinstance(name, str) and SAFE_NAME.fullmatch(name):
        return None
    return f"= {name!r} is not a folder name: use letters, digits, '_', '.', '-' (not first: '.', '-'), at most 100"


@dataclass(frozen=True)
class Experiment:
    name: str
    model: Any  # a back end config dataclass; ``backend`` key picks which
    backend: str = "ngram"
    generations: int = 5  # models trained: generation 0 (real data) .. generations - 1
    seeds: tuple[int, ...] = (0,)
    data: DataConfig = field(default_factory=DataConfig)
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)

    def problems(self) -> list[tuple[str, str]]:
        """Constraints between blocks (each block checks its own fields)."""
        return failing(
            (bool(self.name), "name", "must be a non-empty string"),
            (not self.name or name_problem(self.name) is None, "name", name_problem(self.name) or ""),
            (self.generations >= 1, "generations", "must be >= 1"),
            (self.generations <= MAX_GENERATIONS, "generations", f"must be <= {MAX_GENERATIONS} (the most a config may ask for)"),
            (len(self.seeds) >= 1, "seeds", "must list at least one seed"),
            (all(s >= 0 for s in self.seeds), "seeds", f"= {list(self.seeds)}: a seed must be >= 0"),
            (len(set(self.seeds)) == len(self.seeds), "seeds", f"= {list(self.seeds)} lists a seed twice"),
            (self.generate.prompt != "task" or bool(self.generate.prompts_file or self.data.prompt_field
                                                    or self.data.template),
             "generate.prompt", "= task needs generate.prompts_file, data.prompt_field or data.template"),
            (self.generate.prompt != "task" or self.generate.keep_prompt
             or not (self.data.prompt_field or self.data.template), "generate.keep_prompt",
             "must be true with generate.prompt: task on (prompt, text) data (a document keeps its prompt)"),
            (self.generate.prompt != "unconditional" or not self.generate.keep_prompt, "generate.keep_prompt",
             "has no prompt to keep with generate.prompt: unconditional"),
            (self.generate.prompt != "unconditional" or not self.generate.resample_prompts, "generate.resample_prompts",
             "has no prompts to draw with generate.prompt: unconditional"),
            (self.probes.from_pool == "held_out" or self.data.source != "shakespeare", "probes.from_pool",
             "= shared needs a jsonl: or hf: data.source (shakespeare's probes come from the held-out plays)"),
            (self.probes.split is None or self.data.source.startswith("hf:"), "probes.split",
             f"= {self.probes.split!r} needs an hf: data.source (for {self.data.source!r} give probes.prompts_file)"),
        )
