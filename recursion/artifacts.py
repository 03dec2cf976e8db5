"""The run folder's layout and its plain-file artifacts, in one place.

Every module that reads or writes a run folder (the driver, :mod:`recursion.rundir`, the report,
the benchmarks) takes file names and paths from here, so the layout cannot drift between writer
and readers. Layout of an experiment run ``RUN/``::

    RUN/<arm>/seed_<s>/        one replica                        replica_dir(RUN, arm, s)
        config.yaml            the resolved experiment             CONFIG
        manifest.json          stages done (with the size and      MANIFEST
                               sha256 of every file each wrote),
                               timings, versions; "redo": the old
                               records of stages to be run again
        .lock                  PID and host of the process running LOCK
                               it; its time is the heartbeat
        environment.json       versions, CPU, threads of the run   ENVIRONMENT  (recursion.environment)
        heldout.jsonl          held-out real documents             HELDOUT
                               (data.heldout_fraction), never trained on
        gen_00/                generation 0                        gen_dir(replica, 0)
            train.jsonl        training set (JSONL, field "text")  TRAIN
            train_sources.json or: which rows of which files form the training set   TRAIN_SOURCES
            fresh.jsonl        fresh real documents of this generation (regime mix)  FRESH
            model/             the model (save_pretrained / ngram.json)   MODEL
                train_times.json   hf back ends: the Trainer's wall times     TRAIN_TIMES (not in the manifest)
            lm_eval.json       lm-eval results of this checkpoint  LM_EVAL
            lm_eval_samples/   every scored request and response (eval.log_samples)   LM_EVAL_SAMPLES
            tensorboard/       Trainer logs (runtime.report_to: [tensorboard])   TENSORBOARD
            synthetic.jsonl    generated documents                 SYNTHETIC
            edited.jsonl       ToEdit's edited real documents      EDITED  (transform: toedit)
            edits.json         shares of edited tokens             EDITS   (transform: toedit)
            selected.jsonl     documents kept by the filter        SELECTED
            probes.json        probe results                       PROBES
            data_diversity.json  diversity of the training set and  DATA_DIVERSITY
                               the synthetic pool (recursion.data_diversity)
        gen_01/ ...

JSONL files hold one JSON object per line with a ``text`` field (loadable by ``datasets``).
Every write is atomic: a temporary file in the same folder, fsync, rename. The readers name the
file (and line) of anything they cannot read: a folder, a binary file, text that is not in the
given encoding, a malformed JSONL line.

A generation's training set is either written out (``train.jsonl``: generation 0's real documents,
or texts no other file holds) or *referenced* (``train_sources.json``, :func:`write_train_sources`):
the rows of earlier files it is made of — ``gen_00/train.jsonl``, ``gen_XX/selected.jsonl``,
``gen_XX/fresh.jsonl`` — so an accumulating pool is never copied. :func:`read_training_texts`
reads either.

A ``synthetic.jsonl`` record is ``{"text": document}`` (unconditional), ``{"text": continuation,
"prompt": prompt}`` (the prompt is not part of the document: real-prefix prompting), or
``{"text": prompt + continuation, "prompt_chars": len(prompt)}`` (the document holds its prompt:
(prompt, text) data); :func:`synthetic_record` builds one and :func:`record_prompt` reads the
prompt back. The prompt is stored once.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CONFIG = "config.yaml"
MANIFEST = "manifest.json"
LOCK = ".lock"
ENVIRONMENT = "environment.json"
HELDOUT = "heldout.jsonl"
TRAIN = "train.jsonl"
MODEL = "model"
LM_EVAL = "lm_eval.json"
SYNTHETIC = "synthetic.jsonl"
SELECTED = "selected.jsonl"
EDITED = "edited.jsonl"
EDITS = "edits.json"
PROBES = "probes.json"
DATA_DIVERSITY = "data_diversity.json"
TRAIN_SOURCES = "train_sources.json"
FRESH = "fresh.jsonl"
LM_EVAL_SAMPLES = "lm_eval_samples"
TENSORBOARD = "tensorboard"
TRAIN_TIMES = "train_times.json"
#: Files a stage writes that the manifest does not record: wall-clock timings, other bytes on every
#: run; recorded, a stage redone to the same results would count as changed and redo its readers.
UNRECORDED = (TRAIN_TIMES,)
GEN_GLOB = "gen_[0-9]*"
_GEN = re.compile(r"gen_(\d+)")


def gen_name(g: int) -> str:
    """``gen_03``: the folder name of generation ``g``."""
    return f"gen_{g:02d}"


def gen_dir(replica: str | os.PathLike, g: int) -> Path:
    """The folder of generation ``g`` of a replica."""
    return Path(replica) / gen_name(g)


def generation_of(path: str | os.PathLike) -> int | None:
    """The generation number of a ``gen_XX`` folder, ``None`` for any other name.

    Examples
    --------
    >>> generation_of("runs/x/replace/seed_0/gen_07"), generation_of("report")
    (7, None)
    """
    m = _GEN.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def generation_dirs(replica: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(g, folder)`` of every generation folder of a replica, by generation."""
    found = [(generation_of(p), p) for p in Path(replica).glob(GEN_GLOB) if p.is_dir()]
    return sorted((g, p) for g, p in found if g is not None)


def replica_dir(root: str | os.PathLike, arm: str, seed: int) -> Path:
    """``RUN/<arm>/seed_<s>``: one replica of an experiment run."""
    return Path(root) / arm / f"seed_{seed}"


def is_replica(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a replica folder (it holds a manifest)."""
    return (Path(path) / MANIFEST).is_file()


def find_replicas(path: str | os.PathLike) -> list[Path]:
    """Every replica folder at or under ``path``, sorted."""
    path = Path(path)
    if is_replica(path):
        return [path]
    return [m.parent for m in sorted(path.rglob(MANIFEST))]


def _umask() -> int:
    """The process's umask: from ``/proc/self/status`` (Linux), else set and set back at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A reader (or a run killed mid-write) sees either the old file or the whole new one. The file
    gets the mode an ordinary ``open(path, "w")`` gives (``0o666`` less the umask; ``mkstemp``'s
    own ``0o600`` would make a run folder on shared storage unreadable to the group). An ``OSError``
    (a full disk, a file too large, no permission) names ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:  # ENOSPC, EFBIG: say which file
            raise type(e)(e.errno, e.strerror, str(path)) from None
        raise


def honour_umask(folder: str | os.PathLike) -> None:
    """Give every file under ``folder`` the mode :func:`atomic_write_text` gives: files another library
    wrote through a temporary file (safetensors 0.8 writes ``model.safetensors`` 0600) become
    readable as the umask allows."""
    mode = 0o666 & ~_umask()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object per line, atomically."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


#: Bytes read at a time: a file is checked for NUL bytes (binary) block by block, never read whole first.
BLOCK = 1 << 20


def _text(path: str | os.PathLike, encoding: str) -> str:
    """The whole text of ``path``; ``ValueError`` naming the file for a folder, a binary file (a NUL
    byte anywhere), a bad encoding. Read in blocks: a binary file (or ``/dev/zero``) is refused at
    its first NUL-holding block. A UTF-8 byte-order mark at the start is dropped (``utf-8-sig``)."""
    import codecs

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file")
    try:
        decoder = codecs.getincrementaldecoder("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)()
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    parts, lines, offset = [], 0, 0
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK)
            nul = block.find(b"\0")
            if nul >= 0:
                raise ValueError(f"{path} looks binary (it holds NUL bytes, the first at byte {offset + nul}), not text")
            try:
                parts.append(decoder.decode(block, final=not block))
            except UnicodeDecodeError as e:
                line = lines + e.object[:e.start].count(b"\n") + 1  # (a held-over partial character has no \n)
                raise ValueError(f"{path}:{line}: not valid {encoding} text (byte {e.object[e.start]:#04x}); convert "
                                 "it (e.g. iconv -f latin-1 -t utf-8), or give `lm-collapse metrics` its --encoding"
                                 ) from None
            if not block:
                return "".join(parts)
            lines += block.count(b"\n")
            offset += len(block)


def read_jsonl(path: str | os.PathLike, *, encoding: str = "utf-8", fields: Iterable[str] = (),
               objects: bool = False) -> list[Any]:
    """The records of a JSONL file (every non-blank line); ``ValueError`` naming the file and line of a
    malformed line, with ``objects`` (or ``fields``) of a line that is not a JSON object (a JSON array
    saved as ``.jsonl``, a scalar), and of a record whose ``fields`` are missing or not strings."""
    records = []
    for i, line in enumerate(_text(path, encoding).split("\n"), 1):  # not splitlines: JSON may hold U+2028
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{i}: not valid JSON ({e.msg})") from None
        if (objects or fields) and not isinstance(record, dict):
            raise ValueError(f"{path}:{i}: a JSONL line must be a JSON object ({{\"text\": ...}}), got "
                             f"{_json_kind(record)}")
        for field in fields:
            if field not in record:
                raise ValueError(f"{path}:{i}: the record has no field {field!r}; its fields: {', '.join(record)}")
            if not isinstance(record[field], str):
                raise ValueError(f"{path}:{i}: field {field!r} is {_json_kind(record[field])}, not a string")
        records.append(record)
    return records


def _json_kind(value: Any) -> str:
    """What a JSON value is, as JSON names it: ``an array``, ``a number``, ``null``, ..."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def read_texts(path: str | os.PathLike, field: str = "text", *, encoding: str = "utf-8") -> list[str]:
    """Texts from a ``.jsonl`` file (the string ``field`` of each record) or any other text file
    (one text per non-empty line)."""
    path = Path(path)
    if path.suffix != ".jsonl":
        return [line.strip() for line in _text(path, encoding).splitlines() if line.strip()]
    return [record[field] for record in read_jsonl(path, encoding=encoding, fields=[field])]


# -- training sets by reference ----------------------------------------------------------------------
def write_train_sources(gen: str | os.PathLike, parts: Iterable[tuple[str, list[int] | None]]) -> None:
    """Write ``gen/train_sources.json``: the training set as ``(file, rows)`` parts, in order.

    ``file`` is relative to the replica folder (``gen_00/train.jsonl``); ``rows`` the 0-based record
    numbers taken from it, in order, or ``None`` for every record. The JSON is
    ``{"format": "lm-collapse-train-sources", "version": 1, "parts": [{"file": ..., "rows": ...}]}``.
    """
    doc = {"format": "lm-collapse-train-sources", "version": 1,
           "parts": [{"file": str(f), "rows": None if rows is None else [int(r) for r in rows]} for f, rows in parts]}
    atomic_write_text(Path(gen) / TRAIN_SOURCES, json.dumps(doc))


def read_training_texts(gen: str | os.PathLike) -> list[str]:
    """The training texts of a generation folder: its ``train.jsonl``, else what its
    ``train_sources.json`` references (files relative to the replica folder, the parent of ``gen``)."""
    gen = Path(gen)
    if (gen / TRAIN).exists():
        return read_texts(gen / TRAIN)
    path = gen / TRAIN_SOURCES
    if not path.exists():
        raise FileNotFoundError(f"{gen}: neither {TRAIN} nor {TRAIN_SOURCES}")
    texts: list[str] = []
    for part in json.loads(path.read_text(encoding="utf-8"))["parts"]:
        source = read_texts(gen.parent / part["file"])
        rows = part["rows"]
        if rows is not None and rows and max(rows) >= len(source):
            raise ValueError(f"{path}: row {max(rows)} of {part['file']} does not exist ({len(source)} records)")
        texts += source if rows is None else [source[r] for r in rows]
    return texts


# -- synthetic records --------------------------------------------------------------------------------
def synthetic_record(continuation: str, prompt: str | None = None, *, prompt_in_text: bool = False) -> dict[str, Any]:
    """One ``synthetic.jsonl`` record (see the module docstring); the prompt is stored once.

    Examples
    --------
    >>> synthetic_record(" the end.", "Title: X\\n", prompt_in_text=True)
    {'text': 'Title: X\\n the end.', 'prompt_chars': 9}
    >>> record_prompt(_), record_prompt(synthetic_record(" more", "Once")), record_prompt({"text": "a"})
    ('Title: X\\n', 'Once', None)
    """
    if prompt is None:
        return {"text": continuation}
    if prompt_in_text:
        return {"text": prompt + continuation, "prompt_chars": len(prompt)}
    return {"text": continuation, "prompt": prompt}


def record_prompt(record: dict[str, Any]) -> str | None:
    """The prompt of a ``synthetic.jsonl`` record, ``None`` for an unconditional one."""
    if "prompt_chars" in record:
        return record["text"][: record["prompt_chars"]]
    return record.get("prompt")


def disk_usage(path: str | os.PathLike) -> int:
    """Bytes of every file at or under ``path`` (0 if it does not exist)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
