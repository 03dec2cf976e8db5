"""A tiny GPT-2 trained on the shipped Shakespeare, and a LoRA adapter on it: real checkpoints for
end-to-end tests, built offline in about 20 s on one CPU thread.

* tokenizer: byte-level BPE (``tokenizers``), 1,024 types, trained on a slice of the train plays,
  with a chat template (``role: content`` lines, then ``assistant:``);
* model: ``GPT2Config(n_layer=2, n_head=2, n_embd=64, n_positions=256)``, a plain AdamW loop over
  random 128-token windows of the same slice;
* adapter: peft LoRA (r=4 on ``c_attn``) trained a few more steps on another slice.

Both are written with ``save_pretrained``: ``--model hf --model_args pretrained=DIR`` loads the
model, ``pretrained=DIR,peft=ADAPTER`` the adapter on top of it.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
EOT = "<|endoftext|>"


def _train_text(start: int, n_chars: int) -> str:
    from collapse_tasks import corpus

    return "\n\n".join(corpus.works("train").values())[start : start + n_chars]


@contextmanager
def _torch_threads(n: int):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train_loop(model, ids, *, steps: int, seed: int, lr: float, batch: int = 8, block: int = 128) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - block - 1, (batch,), generator=gen)
        x = torch.stack([ids[s : s + block] for s in starts.tolist()])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def build_tiny_gpt2(out_dir: str | Path, *, steps: int = 300, seed: int = 0, threads: int = 1) -> Path:
    """Train and save the tiny GPT-2 (model and tokenizer) in ``out_dir``; returns ``out_dir``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    out = Path(out_dir)
    text = _train_text(0, 600_000)

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text.split("\n\n"), vocab_size=1024, min_frequency=2, special_tokens=[EOT], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=EOT, eos_token=EOT, unk_token=EOT, pad_token=EOT, model_max_length=256
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config = GPT2Config(
        vocab_size=len(tokenizer), n_layer=2, n_head=2, n_embd=64, n_positions=256,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    ids = torch.tensor(bpe.encode(text).ids, dtype=torch.long)
    with _torch_threads(threads):
        _train_loop(model, ids, steps=steps, seed=seed, lr=3e-3)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_lora(base_dir: str | Path, out_dir: str | Path, *, steps: int = 30, seed: int = 0, threads: int = 1) -> Path:
    """Train and save a LoRA adapter (r=4 on ``c_attn``) for the model in ``base_dir``; returns ``out_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True))
    ids = torch.tensor(tokenizer(_train_text(600_000, 100_000), verbose=False)["input_ids"], dtype=torch.long)
    with _torch_threads(threads):
        _train_loop(model, ids, steps=steps, seed=seed, lr=1e-2)
    model.save_pretrained(out_dir)
    return Path(out_dir)
