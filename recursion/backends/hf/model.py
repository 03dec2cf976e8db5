"""The loaded model of both Hugging Face back ends: :class:`HFModel` (generation, perplexity,
next-token probes, ToEdit, lm-eval's ``HFLM``) and :class:`VllmSource`.

Every stage of the :class:`HFModel` sees a document the same way: it starts from ``start``, so
unconditional generation starts from BOS, prompts are prefixed with it, and the perplexity of a
text is ``exp(−(1/n) Σᵢ log p(tᵢ | start, t₁..tᵢ₋₁))`` over its ``n`` tokens, in the disjoint
rolling windows of lm-eval's ``loglikelihood_rolling`` (``lm_eval.utils.get_rolling_token_windows``
with the model's context length): the same number ``HFLM`` returns for the same weights.
Generation follows :class:`~recursion.backends.base.Decoding` alone (the checkpoint's own
``generation_config`` sampling defaults are dropped on load).

``model.engine: vllm`` generates the synthetic corpus with vLLM (:mod:`recursion.backends.vllm_engine`):
same requests, stop rule and decoding; scoring, perplexity and probes stay on transformers.
"""
from __future__ import annotations

import tempfile
import weakref
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import vllm_engine
from ..base import Decoding

_LOADED: weakref.WeakSet = weakref.WeakSet()  # the torch models of every live HFModel (moved aside for vLLM)


class HFModel:
    """A loaded causal LM and its tokenizer: the :class:`~recursion.backends.base.Model` of both back ends.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM, already on its device.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer. A missing pad token is set to EOS (padding is always masked).
    batch_size : int, default=16
        Batch size of :meth:`perplexity`, :meth:`next_token_stats` and the lm-eval wrapper
        (generation uses ``Decoding.batch_size``).
    vllm : VllmSource, optional
        Generate with vLLM from this folder (``model.engine: vllm``); ``None``: with ``model.generate``.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 16, vllm: VllmSource | None = None):
        from transformers import GenerationConfig

        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: documents could never end")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer, self.batch_size, self.vllm = model.eval(), tokenizer, int(batch_size), vllm
        self.last_vllm: vllm_engine.Result | None = None  # the last vLLM stage's settings and timings
        _LOADED.add(self.model)
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        self.eos_ids = [eos] if isinstance(eos, int) else list(eos or []) or [tokenizer.eos_token_id]
        self.start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        model.generation_config = GenerationConfig(
            bos_token_id=self.start_id, eos_token_id=self.eos_ids, pad_token_id=tokenizer.pad_token_id
        )
        self.context = _context_length(model.config, tokenizer)

    @property
    def device(self):
        return self.model.device

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        if not texts:
            return []
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    # -- generation ----------------------------------------------------------------------------
    def generate(self, *, num: int | None = None, prompts: Sequence[str] | None = None, decoding: Decoding,
                 seed: int) -> list[str]:
        """``num`` documents from BOS, or one continuation per prompt (the new text only).

        Batches of ``decoding.batch_size`` sequences, sorted by prompt length and left-padded,
        run through ``model.generate`` (KV cache on); ``torch.manual_seed(seed)`` once before the
        first batch, so the same seed, inputs and batch size give the same texts. Prompts longer
        than the context minus ``max_new_tokens`` keep their last tokens. Text after an EOS is
        never returned. With :attr:`vllm` set, the same token-id requests go to vLLM
        (:mod:`recursion.backends.vllm_engine`) and come back through the same decoder.
        """
        import torch

        if (num is None) == (prompts is None):
            raise ValueError("give either num (unconditional documents) or prompts (continuations)")
        if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 0):
            raise ValueError(f"num must be a non-negative integer, got {num!r}")
        if decoding.batch_size < 1:
            raise ValueError(f"decoding.batch_size must be >= 1, got {decoding.batch_size!r}")
        room = self.context - decoding.max_new_tokens - 1
        if room < 0:
            raise ValueError(f"max_new_tokens={decoding.max_new_tokens} does not fit the model's context "
                             f"of {self.context} tokens")
        starts = [[self.start_id]] * num if prompts is None else [[self.start_id] + ids[-room:] if room else [self.start_id]
                                                                   for ids in self.encode(prompts)]
        if self.vllm is not None:
            return [self._decode_new(s[1:], new) for s, new in zip(starts, self._vllm_generate(starts, decoding, seed))]
        config = self._generation_config(decoding)
        order = sorted(range(len(starts)), key=lambda i: -len(starts[i]))
        out: list[str] = [""] * len(starts)
        torch.manual_seed(seed)
        with torch.inference_mode():
            for lo in _progress(range(0, len(order), decoding.batch_size), "generate"):
                rows = order[lo:lo + decoding.batch_size]
                ids, mask = self._pad([starts[i] for i in rows], side="left")
                new = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, ids.shape[1]:]
                for i, seq in zip(rows, new.tolist()):
                    out[i] = self._decode_new(starts[i][1:], seq)
        return out

    @property
    def suppressed_ids(self) -> list[int]:
        """Tokens generation never emits: the start and pad tokens (unless one is an EOS)."""
        return sorted({self.start_id, self.tokenizer.pad_token_id} - set(self.eos_ids))

    def _vllm_generate(self, starts: list[list[int]], d: Decoding, seed: int) -> list[list[int]]:
        """New token ids of each request from vLLM; a LoRA model's merged weights are written for it first,
        and every loaded model waits on the CPU while vLLM has the GPU (:func:`vllm_engine.gpu_released`)."""
        source = self.vllm
        merged = tempfile.TemporaryDirectory(prefix=".vllm-merged-", dir=source.folder.parent) if source.merge else None
        with merged if merged is not None else nullcontext():
            folder = Path(merged.name) if merged is not None else source.folder
            if merged is not None:
                self.model.save_pretrained(folder)
                self.tokenizer.save_pretrained(folder)
            request = vllm_engine.Request(
                model=str(folder), prompts=starts, decoding=d, seed=seed, eos_ids=list(self.eos_ids),
                suppress_ids=self.suppressed_ids, dtype=str(self.model.dtype).removeprefix("torch."), context=self.context,
                gpu_memory_utilization=source.gpu_memory_utilization, kv_cache_memory_bytes=source.kv_cache_memory_bytes,
                enforce_eager=source.enforce_eager, trust_remote_code=source.trust_remote_code)
            with vllm_engine.gpu_released(list(_LOADED)):
                self.last_vllm = vllm_engine.generate_token_ids(request)
        print(self.last_vllm.describe(), flush=True)
        return self.last_vllm.token_ids

    def _generation_config(self, d: Decoding):
        from transformers import GenerationConfig

        sampling = dict(temperature=d.temperature, top_p=d.top_p, top_k=d.top_k) if d.do_sample else {}
        return GenerationConfig(
            max_new_tokens=d.max_new_tokens, min_new_tokens=d.min_new_tokens, do_sample=d.do_sample,
            num_beams=d.num_beams, repetition_penalty=d.repetition_penalty, use_cache=True,
            suppress_tokens=self.suppressed_ids or None,
            bos_token_id=self.start_id, eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id,
            **sampling,
        )

    def _decode_new(self, prompt: list[int], new: list[int]) -> str:
        """Text of ``new`` (cut at the first EOS) as it reads after ``prompt``."""
        cut = next((j for j, t in enumerate(new) if t in self.eos_ids), len(new))
        new = new[:cut]
        if not prompt:
            return self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        head = self.tokenizer.decode(prompt, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        full = self.tokenizer.decode(prompt + new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if full.startswith(head):  # sentencepiece tokenizers drop a leading space decoded on its own
            return full[len(head):]
        return self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _pad(self, seqs: list[list[int]], *, side: str):
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            sl = slice(width - len(s), width) if side == "left" else slice(0, len(s))
            ids[r, sl] = torch.tensor(s, dtype=torch.long)
            mask[r, sl] = 1
        return ids.to(self.device), mask.to(self.device)

    # -- scoring -------------------------------------------------------------------------------
    def loglikelihood_rolling(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Natural-log probability of each text from ``start`` and its number of tokens.

        The windows are lm-eval's (``get_rolling_token_windows`` + ``make_disjoint_window`` with
        context length :attr:`context`), scored in right-padded batches of ``batch_size``.
        """
        ids = self.encode(list(texts))
        windows = self._rolling_windows(ids)
        total = np.zeros(len(ids))
        sums = self._score([w for _, w in windows])
        np.add.at(total, np.array([d for d, _ in windows], dtype=np.int64), sums)
        return total, np.array([len(t) for t in ids], dtype=np.int64)

    def _rolling_windows(self, ids: list[list[int]]) -> list[tuple[int, tuple[list[int], list[int]]]]:
        """``(document, (context, continuation))`` of every disjoint rolling window of every document."""
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        return [(d, make_disjoint_window(w)) for d, toks in enumerate(ids)
                for w in get_rolling_token_windows(toks, prefix_token=self.start_id, max_seq_len=self.context, context_len=1)]

    def _continuation_logits(self, windows: list[tuple[list[int], list[int]]]):
        """Yield ``(i, logits)`` per (context, continuation) window, ``logits`` (float32, one row per
        continuation token) predicting it; right-padded batches of ``batch_size``, longest first.
        Call under ``torch.inference_mode()``."""
        inputs = [(ctx + cont)[-(self.context + 1):][:-1] for ctx, cont in windows]
        order = sorted(range(len(windows)), key=lambda i: -len(inputs[i]))
        for lo in _progress(range(0, len(order), self.batch_size), "perplexity"):
            rows = order[lo:lo + self.batch_size]
            ids, mask = self._pad([inputs[i] for i in rows], side="right")
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            for r, i in enumerate(rows):
                n = len(inputs[i])
                yield i, logits[r, n - len(windows[i][1]):n].float()

    def _score(self, windows: list[tuple[list[int], list[int]]]) -> np.ndarray:
        """Σ log p(continuation | context) of each (context, continuation) window."""
        import torch

        out = np.zeros(len(windows))
        with torch.inference_mode():
            for i, logits in self._continuation_logits(windows):  # log-softmax of the scored positions only
                logp = torch.log_softmax(logits, dim=-1)
                out[i] = logp.gather(1, torch.tensor(windows[i][1], device=logp.device)[:, None]).sum().item()
        return out

    def toedit(self, texts: Sequence[str], *, rule, seed: int) -> list:
        """ToEdit (:mod:`recursion.transforms`): every document edited by ``rule`` after one
        teacher-forced pass of this model, in the disjoint rolling windows of
        :meth:`loglikelihood_rolling` (each token predicted from ``start`` and up to a context of
        preceding tokens), batched like it. Candidates are the ``rule.candidates`` most probable
        non-special tokens (all of them for 0). A document left unchanged keeps its exact text."""
        import torch

        from ...toedit import RESAMPLE, EditedDoc, apply_edits, uniforms

        ids = self.encode(list(texts))
        windows = self._rolling_windows(ids)
        starts, seen = [], {}
        for d, (_, cont) in windows:  # where each window's continuation starts in its document
            starts.append(seen.get(d, 0))
            seen[d] = starts[-1] + len(cont)
        p = [np.zeros(len(t)) for t in ids]
        drawn: list[dict[int, int]] = [{} for _ in ids]
        u = [uniforms(seed, d, len(t)) for d, t in enumerate(ids)]
        special = sorted(set(self.tokenizer.all_special_ids))
        with torch.inference_mode():
            for i, logits in self._continuation_logits([w for _, w in windows]):
                d, start, cont = windows[i][0], starts[i], windows[i][1][1]
                logp = torch.log_softmax(logits, dim=-1)
                actual = logp.gather(1, torch.tensor(cont, device=logp.device)[:, None])[:, 0].exp().double().cpu().numpy()
                p[d][start:start + len(cont)] = actual
                rows = np.flatnonzero(rule.actions(actual) == RESAMPLE)
                if not rows.size:
                    continue
                cand = logp[torch.as_tensor(rows, device=logp.device)]
                cand[:, special] = -torch.inf
                k = rule.candidates if 0 < rule.candidates < cand.shape[1] - len(special) else cand.shape[1]
                values, index = torch.topk(cand, k, dim=-1)
                new = rule.resample(index.cpu().numpy(), values.double().cpu().numpy(), u[d][start + rows])
                drawn[d].update(zip((start + rows).tolist(), new.tolist()))
        out = []
        for d, (text, toks) in enumerate(zip(texts, ids)):
            actions = rule.actions(p[d])
            new, changed, dropped = apply_edits(toks, actions, [drawn[d][j] for j in np.flatnonzero(actions == RESAMPLE)])
            if changed or dropped:
                text = self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            out.append(EditedDoc(text, len(toks), int(np.sum(actions == RESAMPLE)), changed, dropped))
        return out

    def perplexity(self, texts: Sequence[str]) -> np.ndarray:
        """Per-document perplexity ``exp(−log P(text | start) / n_tokens)``; an empty text scores 1."""
        logp, n = self.loglikelihood_rolling(texts)
        return np.exp(-logp / np.maximum(n, 1))

    def next_token_stats(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 next-token probability and next-token entropy (nats) after ``start`` + each prompt."""
        import torch

        seqs = [[self.start_id] + ids[-(self.context - 1):] if self.context > 1 else [self.start_id]
                for ids in self.encode(list(prompts))]
        top1, ent = np.zeros(len(seqs)), np.zeros(len(seqs))
        with torch.inference_mode():
            for lo in _progress(range(0, len(seqs), self.batch_size), "next-token probes"):
                batch = seqs[lo:lo + self.batch_size]
                ids, mask = self._pad(batch, side="right")
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                last = logits[torch.arange(len(batch)), torch.tensor([len(s) - 1 for s in batch])].float()
                logp = torch.log_softmax(last, dim=-1)
                top1[lo:lo + len(batch)] = logp.max(dim=-1).values.exp().cpu().numpy()
                ent[lo:lo + len(batch)] = -(logp.exp() * logp).sum(dim=-1).cpu().numpy()
        return top1, ent

    def truncate(self, text: str, num_tokens: int) -> str:
        """The first ``num_tokens`` tokens of ``text``: a prefix of ``text`` itself (from the
        tokenizer's character offsets), the whole text if it is shorter."""
        if num_tokens < 0:
            raise ValueError(f"num_tokens must be >= 0, got {num_tokens!r}")
        if num_tokens == 0:
            return ""
        if self.tokenizer.is_fast:
            offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            return text if len(offsets) <= num_tokens else text[:offsets[num_tokens - 1][1]]
        ids = self.encode([text])[0]
        return text if len(ids) <= num_tokens else self.tokenizer.decode(ids[:num_tokens], skip_special_tokens=True)

    def lm_eval_model(self):
        """lm-eval's own ``HFLM`` around the loaded model and tokenizer (no reload, no copy)."""
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=self.model, tokenizer=self.tokenizer, batch_size=self.batch_size)


@dataclass(frozen=True)
class VllmSource:
    """Where vLLM loads a model from: a full model's folder, or (``merge``) the merged weights of a
    LoRA model written next to ``folder`` for the stage."""

    folder: Path
    merge: bool = False
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool = True
    trust_remote_code: bool = False

    @classmethod
    def of(cls, cfg, folder: Path, *, merge: bool, trust_remote_code: bool) -> VllmSource:
        """The source of a model folder under a back end's config (its vLLM settings)."""
        return cls(folder, merge=merge, gpu_memory_utilization=cfg.gpu_memory_utilization,
                   kv_cache_memory_bytes=cfg.kv_cache_memory_bytes, enforce_eager=cfg.enforce_eager,
                   trust_remote_code=trust_remote_code)


def _progress(batches: range, what: str):
    """A progress bar over batches, shown on a terminal only (quiet in logs and CI)."""
    return tqdm(batches, desc=what, unit="batch", leave=False, disable=None if len(batches) > 1 else True)


def _context_length(config, tokenizer) -> int:
    from lm_eval.models.utils import resolve_max_length

    return resolve_max_length(config, tokenizer)
