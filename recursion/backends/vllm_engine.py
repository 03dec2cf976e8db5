"""Generation with vLLM (``model.engine: vllm``): the synthetic corpus of the Hugging Face back ends, faster.

The requests are the ones :meth:`recursion.backends.hf.HFModel.generate` builds — the same token
ids (``[start] + prompt``, prompts cut to their last ``context - max_new_tokens - 1`` tokens), the
same stop rule (the model's EOS ids and nothing else: ``ignore_eos`` with ``stop_token_ids``), the
same ``min_new_tokens`` / ``max_new_tokens``, temperature, top-p, top-k and repetition penalty,
and the start and pad tokens suppressed (a ``-100`` logit bias, where the HF path sets them to
``-inf``) — and the new token ids come back to the HF path's decoder, so a document is cut and
decoded the same way. Greedy decoding (``do_sample: false``) is vLLM's ``temperature=0``.

Randomness: request i (document i) is sampled with its own seed, ``SeedSequence([seed, i])``, from
the stage seed, so a document does not depend on batching and a rerun is identical. The samples
are from the same distribution as the HF path's, not the same samples (the two draw differently).

Not reproducible, refused at load time (:func:`experiment_problems`): beam search (vLLM's has no
repetition penalty and no minimum length: Shumailov et al.'s recipe), CPU runs, and a missing
``vllm`` package.

Isolation: each generate stage runs vLLM in a fresh spawned process (:func:`generate_token_ids`),
which holds the GPU memory of its engine and returns it to the driver's process by exiting — the
one way to be sure every byte is released before training resumes (a vLLM engine torn down in
process keeps allocator caches and its distributed state); one that has answered but does not exit
within :data:`EXIT_WAIT` seconds (an engine hanging at shutdown) is killed. The cost, starting vLLM and loading
the weights once per generation, is small beside generating a corpus. The batch is the whole
prompt set (vLLM schedules it); ``decoding.batch_size`` applies to the HF path only.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np

from .base import Decoding, failing

INSTALL_HINT = "pip install 'lm-collapse[vllm]'"
SUPPRESS_BIAS = -100.0  # the most negative logit bias vLLM's OpenAI-compatible range allows


def experiment_problems(exp) -> list[tuple[str, str]]:
    """Why ``exp`` cannot generate with vLLM faithfully ([] when it can, or when its engine is hf)."""
    if getattr(exp.model, "engine", "hf") != "vllm":
        return []
    d = exp.generate.decoding
    return failing(
        (importlib.util.find_spec("vllm") is not None, "model.engine",
         f"= vllm but the vllm package is not installed: {INSTALL_HINT} (on a CUDA machine), or use engine: hf"),
        (d.num_beams == 1, "generate.decoding.num_beams",
         f"= {d.num_beams}: vLLM's beam search has no repetition penalty and no minimum length, so it cannot "
         "reproduce a beam-search recipe (Shumailov et al.'s); use model.engine: hf"),
        (exp.runtime.device != "cpu", "model.engine", "= vllm generates on a GPU but runtime.device is cpu; use engine: hf"),
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
    gpu_memory_utilization: float = 0.85
    trust_remote_code: bool = False


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


#: Set by ``accelerate launch`` / ``torchrun`` for the driver's processes; vLLM must not join that launch.
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR",
              "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def run_request(request: Request) -> list[list[int]]:
    """The new token ids of every prompt of ``request``, in order (vLLM in this process, which it
    takes out of any multi-process launch first)."""
    for name in LAUNCH_ENV:
        os.environ.pop(name, None)
    import vllm

    llm = vllm.LLM(model=request.model, tokenizer=request.model, seed=request.seed, dtype=request.dtype,
                   max_model_len=request.context, gpu_memory_utilization=request.gpu_memory_utilization,
                   trust_remote_code=request.trust_remote_code)
    params = [sampling_params(vllm, request.decoding, seed=s, eos_ids=request.eos_ids, suppress_ids=request.suppress_ids)
              for s in request_seeds(request.seed, len(request.prompts))]
    outputs = llm.generate(prompts=[{"prompt_token_ids": list(ids)} for ids in request.prompts], sampling_params=params,
                           use_tqdm=sys.stderr.isatty())
    return [list(out.outputs[0].token_ids) for out in outputs]


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


def generate_token_ids(request: Request, *, exit_wait: float = EXIT_WAIT) -> list[list[int]]:
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

