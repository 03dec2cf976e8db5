"""Generation with vLLM (``model.engine: vllm``): the synthetic corpus of the Hugging Face back ends, faster.

The requests are the ones :meth:`recursion.backends.hf.model.HFModel.generate` builds — the same token
ids (``[start] + prompt``, prompts cut to their last ``context - max_new_tokens - 1`` tokens), the
same stop rule (the model's EOS ids and nothing else: ``ignore_eos`` with ``stop_token_ids``), the
same ``min_new_tokens`` / ``max_new_tokens``, temperature, top-p, top-k and repetition penalty,
and the start and pad tokens suppressed (a ``-100`` logit bias, where the HF path sets them to
``-inf``) — and the new token ids come back to the HF path's decoder, so a document is cut and
decoded the same way. Greedy decoding (``do_sample: false``) is vLLM's ``temperature=0``.

Randomness: request i (document i) is sampled with its own seed, ``SeedSequence([seed, i])``, from
the stage seed. The samples are from the same distribution as the HF path's, not the same samples.
Per-request seeds fix the draws, not the logits, which vLLM computes differently with the batch
composition; so the engine runs with vLLM's documented reproducibility settings
(https://docs.vllm.ai/en/latest/usage/reproducibility/), unless the environment already sets them:
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (the scheduler in this process: deterministic scheduling,
so the same stage gives the same batches) and, on compute capability >= 8.0,
``VLLM_BATCH_INVARIANT=1`` (batch-invariant kernels: a document's logits do not depend on the
other requests; beta in vLLM). With them a redone generate stage — a resumed run — gives the same
tokens as the first attempt on the same GPU model, driver, CUDA, torch and vLLM versions; vLLM
promises nothing across hardware or versions.

Memory (:func:`memory_share`): vLLM refuses to start unless ``gpu_memory_utilization`` × the card's
memory is free, and reserves all of it. The share is therefore sized at each stage from what is
free (``torch.cuda.mem_get_info()`` minus :data:`HEADROOM`), capped by
``model.gpu_memory_utilization`` when set and by the replica's share of the GPU
(``$LM_COLLAPSE_GPU_SHARE``, :data:`SHARE_ENV`, which a sweep with ``--gpus-per-replica 0.25``
sets); ``model.kv_cache_memory_bytes`` fixes the KV cache instead (vLLM then ignores the share for
the cache). Before vLLM starts, the driver's process moves every model it has loaded (the
generating one, generation 0's for the probes) to the CPU and empties torch's allocator cache
(:func:`gpu_released`); the measurement and vLLM's allocation
happen under a per-GPU file lock (:func:`startup_lock`), so replicas packed on one GPU start their
engines one at a time and none counts memory another is about to take.

Not reproducible or cannot work, refused at load time (:func:`experiment_problems`): beam search
(vLLM's has no repetition penalty and no minimum length: Shumailov et al.'s recipe), CPU runs, a
missing ``vllm`` package, a KV-cache budget larger than the visible GPU; and in a sweep
(:func:`share_problems`), a ``gpu_memory_utilization`` above the replica's share of the GPU.

Isolation: each generate stage runs vLLM in a fresh spawned process (:func:`generate_token_ids`),
which holds the GPU memory of its engine and returns it to the driver's process by exiting — the
one way to be sure every byte is released before training resumes (a vLLM engine torn down in
process keeps allocator caches and its distributed state); one that has answered but does not exit
within :data:`EXIT_WAIT` seconds (an engine hanging at shutdown) is killed. The cost is a start-up per generation
(process, import, weight loading, KV-cache allocation; with ``enforce_eager: false`` also
torch.compile and CUDA-graph capture): ``model.enforce_eager: true``, the default, skips the last
two, since the engine serves one stage only. :class:`Result` reports start-up and generation
seconds apart (``benchmarks/bench_vllm.py``). The batch is the whole prompt set (vLLM schedules
it); ``decoding.batch_size`` applies to the HF path only.
"""
from __future__ import annotations

import fcntl
import gc
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .base import Decoding, failing

INSTALL_HINT = "pip install 'lm-collapse[vllm]'"
SUPPRESS_BIAS = -100.0  # the most negative logit bias vLLM's OpenAI-compatible range allows
SHARE_ENV = "LM_COLLAPSE_GPU_SHARE"  # the fraction of the GPU this replica was given (set by a sweep)
HEADROOM = 1 << 30  # bytes left free beside vLLM: its NCCL / cuBLAS workspaces and allocator slack
#: vLLM's documented reproducibility settings, set unless the environment sets them already
DETERMINISTIC_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
BATCH_INVARIANT_ENV = {"VLLM_BATCH_INVARIANT": "1"}  # compute capability >= 8.0 only


def experiment_problems(exp) -> list[tuple[str, str]]:
    """Why ``exp`` cannot generate with vLLM faithfully ([] when it can, or when its engine is hf)."""
    if getattr(exp.model, "engine", "hf") != "vllm":
        return []
    d = exp.generate.decoding
    budget = getattr(exp.model, "kv_cache_memory_bytes", None)
    total = _visible_gpu_bytes() if budget and exp.runtime.device != "cpu" else None
    return failing(
        (importlib.util.find_spec("vllm") is not None, "model.engine",
         f"= vllm but the vllm package is not installed: {INSTALL_HINT} (on a CUDA machine), or use engine: hf"),
        (d.num_beams == 1, "generate.decoding.num_beams",
         f"= {d.num_beams}: vLLM's beam search has no repetition penalty and no minimum length, so it cannot "
         "reproduce a beam-search recipe (Shumailov et al.'s); use model.engine: hf"),
        (exp.runtime.device != "cpu", "model.engine", "= vllm generates on a GPU but runtime.device is cpu; use engine: hf"),
        (total is None or budget + HEADROOM < total, "model.kv_cache_memory_bytes",
         f"= {budget} does not fit beside the weights on this GPU of {_gib(total or 0)}; lower it or set it to null "
         "(sized from free memory)"),
    )


def share_problems(exp, gpus_per_replica: float) -> list[tuple[str, str]]:
    """A vLLM share above the replica's share of the GPU (``sweep --gpus-per-replica``): refused
    before any work, since vLLM would find that memory taken by the replicas beside it."""
    if getattr(exp.model, "engine", "hf") != "vllm" or gpus_per_replica >= 1:
        return []
    share, budget = exp.model.gpu_memory_utilization, exp.model.kv_cache_memory_bytes
    total = _visible_gpu_bytes() if budget else None
    return failing(
        (share is None or share <= gpus_per_replica, "model.gpu_memory_utilization",
         f"= {share} is more than this replica's share of the GPU (--gpus-per-replica {gpus_per_replica}); set it to "
         f"at most {gpus_per_replica}, or to null (sized from what is free, capped at the replica's share)"),
        (total is None or budget + HEADROOM <= gpus_per_replica * total, "model.kv_cache_memory_bytes",
         f"= {budget} does not fit in this replica's share of the GPU ({gpus_per_replica} of {_gib(total or 0)}); "
         "lower it or set it to null"),
    )


@dataclass(frozen=True)
class Request:
    """One generate stage for vLLM: the model folder, the prompts as token ids, and the decoding."""

    model: str  # a save_pretrained folder (for a LoRA model, the merged weights)
    prompts: list[list[int]]
    decoding: Decoding
    seed: int
    eos_ids: list[int]
    suppress_ids: list[int]
    dtype: str  # the dtype the HF path computes in (float32, bfloat16, float16)
    context: int  # max_model_len: the HF path's context
    gpu_memory_utilization: float | None = None  # the most vLLM may take; None: what is free
    kv_cache_memory_bytes: int | None = None  # a fixed KV-cache budget instead of the share's remainder
    enforce_eager: bool = True  # no torch.compile / CUDA graphs: a shorter start-up
    trust_remote_code: bool = False


@dataclass(frozen=True)
class Result:
    """What a stage's engine returned: the new token ids of every prompt, and how it ran."""

    token_ids: list[list[int]]
    startup_seconds: float  # vLLM's import, weight loading, KV-cache allocation (and compilation)
    generate_seconds: float
    settings: dict = field(default_factory=dict)  # the share, KV budget, eager mode and environment used

    def describe(self) -> str:
        """One line for the run log."""
        s = self.settings
        return (f"vLLM: gpu_memory_utilization {s.get('gpu_memory_utilization')}"
                + (f", kv_cache_memory_bytes {s['kv_cache_memory_bytes']}" if s.get("kv_cache_memory_bytes") else "")
                + f", enforce_eager {s.get('enforce_eager')}, dtype {s.get('dtype')}, "
                + ", ".join(f"{k}={v}" for k, v in s.get("env", {}).items())
                + f"; start-up {self.startup_seconds:.1f} s, generation {self.generate_seconds:.1f} s")


def request_seeds(seed: int, n: int) -> list[int]:
    """The seed of each of ``n`` requests: ``SeedSequence([seed, i])``, a function of (stage seed, i) only.

    Examples
    --------
    >>> request_seeds(7, 3) == request_seeds(7, 5)[:3], len(set(request_seeds(7, 100)))
    (True, 100)
    """
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)]


def sampling_params(vllm, d: Decoding, *, seed: int, eos_ids: Sequence[int], suppress_ids: Sequence[int]):
    """vLLM ``SamplingParams`` of one request, equal in effect to the HF path's ``GenerationConfig``."""
    sampling = dict(temperature=d.temperature, top_p=d.top_p, top_k=d.top_k) if d.do_sample else \
        dict(temperature=0.0, top_p=1.0, top_k=0)
    return vllm.SamplingParams(
        n=1, **sampling, repetition_penalty=d.repetition_penalty, min_tokens=d.min_new_tokens,
        max_tokens=d.max_new_tokens, seed=seed, ignore_eos=True, stop_token_ids=list(eos_ids),
        logit_bias={int(t): SUPPRESS_BIAS for t in suppress_ids} or None, detokenize=False, skip_special_tokens=True,
    )


def memory_share(free: int, total: int, *, cap: float | None = None, headroom: int = HEADROOM) -> float:
    """vLLM's ``gpu_memory_utilization`` from the GPU's free bytes: ``min(cap, (free − headroom) / total)``,
    rounded down to 0.001 (vLLM starts only if ``share × total`` is free).

    Examples
    --------
    >>> GiB = 1 << 30
    >>> memory_share(41 * GiB, 80 * GiB), memory_share(41 * GiB, 80 * GiB, cap=0.25)
    (0.5, 0.25)
    """
    room = free - headroom
    if room <= 0:
        raise RuntimeError(f"vLLM cannot start: {_gib(free)} free on the GPU of {_gib(total)}, less than the "
                           f"{_gib(headroom)} kept beside it; other processes hold the rest (nvidia-smi shows them)")
    share = room / total if cap is None else min(cap, room / total)
    return max(int(share * 1000) / 1000, 0.001)


def gpu_cap(request: Request) -> float | None:
    """The most vLLM may take: ``gpu_memory_utilization`` and the replica's share (``$LM_COLLAPSE_GPU_SHARE``)."""
    caps = [c for c in (request.gpu_memory_utilization, _env_share()) if c is not None]
    return min(caps) if caps else None


def engine_settings(request: Request, free: int | None, total: int | None, capability: tuple[int, int] | None) -> dict:
    """The ``vllm.LLM`` memory and mode arguments and the environment for ``request`` on a GPU with
    ``free`` of ``total`` bytes and compute ``capability`` (``None``s: no GPU visible, as in tests)."""
    cap = gpu_cap(request)
    share = memory_share(free, total, cap=cap) if total else cap
    env = dict(DETERMINISTIC_ENV)
    if capability is not None and capability >= (8, 0):
        env.update(BATCH_INVARIANT_ENV)
    out = {"gpu_memory_utilization": share, "enforce_eager": request.enforce_eager, "dtype": request.dtype,
           "env": {k: os.environ.get(k, v) for k, v in env.items()}}
    if request.kv_cache_memory_bytes is not None:
        out["kv_cache_memory_bytes"] = request.kv_cache_memory_bytes
    return out


@contextmanager
def startup_lock(device: str) -> Iterator[Path]:
    """An exclusive lock for starting an engine on GPU ``device`` (its UUID) on this host: a ``flock``
    on ``$TMPDIR/lm-collapse-vllm-<hash>.lock``, released when the block ends or the process dies."""
    path = Path(tempfile.gettempdir()) / f"lm-collapse-vllm-{hashlib.sha256(device.encode()).hexdigest()[:16]}.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def gpu_released(models: Sequence) -> Iterator[None]:
    """While the block runs, the driver's process holds as little of the GPU as it can: every model of
    ``models`` (torch modules) that is on a GPU waits on the CPU, garbage is collected and torch's
    cached blocks go back to the driver; afterwards each model returns to its device."""
    import torch

    parked = [(m, m.device) for m in models if getattr(m, "device", None) is not None and m.device.type != "cpu"]
    for model, _ in parked:
        model.to("cpu")
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    try:
        yield
    finally:
        for model, device in parked:
            model.to(device)


#: Set by ``accelerate launch`` / ``torchrun`` for the driver's processes; vLLM must not join that launch.
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR",
              "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def run_request(request: Request) -> Result:
    """The new token ids of every prompt of ``request``, in order (vLLM in this process, which it
    takes out of any multi-process launch first), with the settings used and the timings."""
    for name in LAUNCH_ENV:
        os.environ.pop(name, None)
    import torch

    cuda = torch.cuda.is_available()
    device = _device_id() if cuda else "no-gpu"
    start = time.perf_counter()
    with startup_lock(device):
        free, total = torch.cuda.mem_get_info() if cuda else (None, None)
        settings = engine_settings(request, free, total, torch.cuda.get_device_capability() if cuda else None)
        os.environ.update(settings["env"])  # before vllm is imported: it reads them at import and start-up
        import vllm

        memory = {k: settings[k] for k in ("gpu_memory_utilization", "kv_cache_memory_bytes") if settings.get(k) is not None}
        llm = vllm.LLM(model=request.model, tokenizer=request.model, seed=request.seed, dtype=request.dtype,
                       max_model_len=request.context, enforce_eager=request.enforce_eager, **memory,
                       trust_remote_code=request.trust_remote_code)
    started = time.perf_counter()
    params = [sampling_params(vllm, request.decoding, seed=s, eos_ids=request.eos_ids, suppress_ids=request.suppress_ids)
              for s in request_seeds(request.seed, len(request.prompts))]
    outputs = llm.generate(prompts=[{"prompt_token_ids": list(ids)} for ids in request.prompts], sampling_params=params,
                           use_tqdm=sys.stderr.isatty())
    return Result([list(out.outputs[0].token_ids) for out in outputs], started - start, time.perf_counter() - started,
                  settings)


#: Seconds the vLLM process may take to exit once it has handed its result over; then it is killed
#: (an engine that hangs while shutting down must not block the run).
EXIT_WAIT = 120.0


def _serve(request: Request, conn) -> None:
    """The spawned process: :func:`run_request`, its result (or its exception) sent back through ``conn``."""
    try:
        conn.send((True, run_request(request)))
    except BaseException as e:  # raised again in the parent
        conn.send((False, e))
    finally:
        conn.close()


def generate_token_ids(request: Request, *, exit_wait: float = EXIT_WAIT) -> Result:
    """:func:`run_request` in a fresh spawned process, whose exit frees every byte of GPU memory vLLM took;
    a process still running ``exit_wait`` seconds after its answer is killed."""
    context = get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(request, send), name="lm-collapse-vllm")  # not daemonic: vLLM spawns
    process.start()
    send.close()
    try:
        ok, value = receive.recv()
    except EOFError:  # it died without an answer (out of memory, killed)
        process.join()
        raise RuntimeError(f"the vLLM process died (exit code {process.exitcode}) before it returned the generations") from None
    finally:
        receive.close()
        process.join(exit_wait)
        if process.is_alive():
            print(f"the vLLM process did not exit within {exit_wait:.0f} s of its answer: killed", file=sys.stderr)
            process.kill()
            process.join()
    if not ok:
        raise value
    return value


def _device_id() -> str:
    """The current GPU's UUID (the same physical GPU whatever ``CUDA_VISIBLE_DEVICES`` numbers it)."""
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return str(getattr(props, "uuid", "")) or f"{os.uname().nodename}:{os.environ.get('CUDA_VISIBLE_DEVICES', '')}:" \
                                             f"{torch.cuda.current_device()}"


def _env_share() -> float | None:
    value = os.environ.get(SHARE_ENV)
    try:
        share = float(value) if value else None
    except ValueError:
        raise ValueError(f"${SHARE_ENV} = {value!r}: must be a number in (0, 1]") from None
    return share if share is None or share < 1 else None


def _visible_gpu_bytes() -> int | None:
    """The first visible GPU's memory, or None without a GPU (a CPU head node cannot check)."""
    import torch

    return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"
