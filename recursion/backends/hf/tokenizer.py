"""Generation 0's tokenizer of ``hf_scratch`` (Gerstgrasser et al. 2024): a byte-level BPE
trained on its training texts, which every later generation copies unchanged.
"""
from __future__ import annotations

from collections.abc import Sequence

SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}


def train_tokenizer(texts: Sequence[str], *, vocab_size: int, model_max_length: int, min_frequency: int = 2):
    """A byte-level BPE tokenizer (``tokenizers``) trained on ``texts``, as a ``PreTrainedTokenizerFast``.

    Ids 0, 1, 2 are ``<pad>``, ``<s>`` (BOS), ``</s>`` (EOS); no prefix space is added and decoding
    is lossless, so ``decode(encode(t)) == t``. A merge needs a pair seen ``min_frequency`` times.

    Examples
    --------
    >>> tok = train_tokenizer(["to be or not to be"] * 20, vocab_size=270, model_max_length=64)
    >>> tok.convert_ids_to_tokens(tok("to be, naïve")["input_ids"])[:3]
    ['to', 'Ġbe', ',']
    >>> tok.decode(tok("to be, naïve")["input_ids"]), tok.bos_token_id, tok.eos_token_id
    ('to be, naïve', 1, 2)
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(texts), trainer)
    return fast_tokenizer(bpe, model_max_length)


def fast_tokenizer(bpe, model_max_length: int):
    """A trained ``tokenizers`` BPE as the ``PreTrainedTokenizerFast`` of :func:`train_tokenizer`."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=bpe, model_max_length=model_max_length,
                                   clean_up_tokenization_spaces=False, **SPECIAL)
