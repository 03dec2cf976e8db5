"""The paper-faithful task options: Shumailov et al.'s token blocks and Guo et al.'s diversity settings."""
from __future__ import annotations

import json
import math
import random
import string

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collapse_tasks import gen_utils, ppl_utils
from collapse_tasks.blocks import group_texts, shards


# -- group_texts --------------------------------------------------------------------------------------
def _hf_group_texts(size):
    """run_clm's group_texts, written from its documented behaviour: concatenate the batch, keep whole blocks."""

    def group(batch):
        stream = sum(batch["ids"], [])
        return {"block": [stream[i:i + size] for i in range(0, len(stream) - size + 1, size)]}

    return group


@pytest.mark.parametrize("batch_size, num_proc", [(None, 1), (3, 1), (3, 2), (4, 3)])
def test_group_texts_equals_datasets_map(batch_size, num_proc):
    rng = np.random.default_rng(0)
    lists = [rng.integers(0, 50, size=rng.integers(0, 9)).tolist() for _ in range(23)]
    ds = datasets.Dataset.from_dict({"ids": lists})
    mapped = ds.map(_hf_group_texts(4), batched=True, batch_size=batch_size or len(lists), num_proc=num_proc,
                    remove_columns=["ids"], keep_in_memory=True)
    assert group_texts(lists, 4, batch_size=batch_size, num_proc=num_proc) == mapped["block"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), max_size=7), max_size=30), st.integers(1, 6), st.integers(1, 5))
def test_group_texts_properties(lists, size, num_proc):
    blocks = group_texts(lists, size, num_proc=num_proc)
    assert all(len(b) == size for b in blocks)
    flat = [t for ids in lists for t in ids]
    if num_proc == 1:  # one batch: the stream itself, less a remainder shorter than a block
        assert sum(blocks, []) == flat[:len(flat) // size * size]
    assert [len(s) for s in shards(len(lists), num_proc)] == sorted((len(s) for s in shards(len(lists), num_proc)),
                                                                    reverse=True)


# -- the token-perplexity task ------------------------------------------------------------------------
def test_block_documents_split_each_block_after_its_first_token(tiny_gpt2, fake_hub):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gpt2)
    lines = [r["text"] for r in fake_hub["Salesforce/wikitext"][1]]
    docs = ppl_utils.wikitext2_blocks(path="Salesforce/wikitext", name="wikitext-2-raw-v1", split="test",
                                      pretrained=str(tiny_gpt2), block_size=16, map_batch_size=5, map_num_proc=2)["test"]
    blocks = group_texts(tok(lines)["input_ids"], 16, batch_size=5, num_proc=2)
    assert len(docs) == len(blocks)
    for doc, block in zip(docs, blocks):
        assert doc["context"] + doc["continuation"] == tok.decode(block, clean_up_tokenization_spaces=False)
        assert doc["context"].strip() and doc["num_tokens"] == 16 - len(tok(doc["context"])["input_ids"])
    with pytest.raises(ValueError, match="pretrained="):
        ppl_utils.wikitext2_blocks(path="Salesforce/wikitext", split="test")


@pytest.mark.slow
def test_token_perplexity_is_exp_of_the_mean_loss_of_the_scored_tokens(tiny_gpt2, fake_hub):
    """lm-eval's number equals a direct forward pass: the scored tokens of every block given its first
    token(s), exp(−Σ ll / Σ tokens)."""
    import lm_eval
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import collapse_tasks

    tm = collapse_tasks.task_manager(include_defaults=False, metadata={"pretrained": str(tiny_gpt2)})
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tiny_gpt2}", tasks=["collapse_ppl_wikitext2_blocks"],
                                  task_manager=tm, device="cpu", batch_size=8, bootstrap_iters=0, log_samples=False)
    reported = out["results"]["collapse_ppl_wikitext2_blocks"]["token_perplexity,none"]
    tok, model = AutoTokenizer.from_pretrained(tiny_gpt2), AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    docs = ppl_utils.wikitext2_blocks(path="Salesforce/wikitext", name="wikitext-2-raw-v1", split="test",
                                      pretrained=str(tiny_gpt2), block_size=64, map_batch_size=1000, map_num_proc=4)["test"]
    total, count = 0.0, 0
    for doc in docs:
        ids = tok(doc["context"] + doc["continuation"])["input_ids"]
        start = len(tok(doc["context"])["input_ids"])
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].double(), -1)
        total += sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))
        count += doc["num_tokens"]
    assert reported == pytest.approx(math.exp(-total / count), rel=1e-5)


# -- Guo et al.'s options -----------------------------------------------------------------------------
TEXTS = ["The cat sat. It was happy! Then it left, quietly...", "A dog ran; the dog barked at the cat.",
         "Why? Because -- well, \"reasons\". Short one.", "One sentence only here"]


def guo_unique_n(texts, n_tokens=200_000):
    """Guo et al.'s lexical_diversity.py on these texts (when every order has fewer than n_tokens n-grams,
    random.sample keeps all of them and the ratio is a TTR)."""
    from nltk.tokenize import WordPunctTokenizer

    punctuation = set(string.punctuation)
    grams = {1: [], 2: [], 3: []}
    for line in texts:
        tokens = [t.lower() for t in WordPunctTokenizer().tokenize(line) if t not in punctuation]
        for n in (1, 2, 3):
            grams[n] += list(zip(*(tokens[i:] for i in range(n))))
    assert all(len(g) < n_tokens for g in grams.values())
    return sum(len(set(g)) / len(g) for g in grams.values()) / 3


def test_wordpunct_tokens_are_nltk_s():
    from nltk.tokenize import WordPunctTokenizer

    for text in TEXTS:
        expected = [t.lower() for t in WordPunctTokenizer().tokenize(text) if t not in string.punctuation]
        assert gen_utils.wordpunct_tokens(text) == expected


def options(**over):
    return {**gen_utils.OPTION_DEFAULTS, "unique_n_sample": 200_000, "unique_n_tokens": "wordpunct",
            "unique_n_all_if_fewer": True, "ttr_length": 4, **over}


def test_unique_n_with_guo_options_equals_their_script():
    assert gen_utils._score(TEXTS, "unique_n", options()) == pytest.approx(guo_unique_n(TEXTS), abs=1e-12)
    capped = gen_utils._score(TEXTS, "unique_n", options(unique_n_sample=5))
    assert 0 < capped <= 1 and capped != gen_utils._score(TEXTS, "unique_n", options())
    assert math.isnan(gen_utils._score(TEXTS, "unique_n", options(unique_n_all_if_fewer=False)))  # nan, as the base tasks


def test_items_carry_the_options_to_every_aggregation():
    doc = {"metric_options": json.dumps({"unique_n_sample": 200_000, "unique_n_tokens": "wordpunct",
                                         "unique_n_all_if_fewer": True})}
    items = [gen_utils.process_results_options(doc, [[t, t + " again"]])["unique_n"] for t in TEXTS]
    generations = [g for t in TEXTS for g in (t, t + " again")]
    assert gen_utils.AGGREGATIONS["unique_n"](items) == pytest.approx(guo_unique_n(generations), abs=1e-12)
    distinct_2 = gen_utils.AGGREGATIONS["distinct_2"]
    assert distinct_2(items) == distinct_2([generations])  # options change unique_n only


def test_guo_sentences_and_their_sample():
    split = gen_utils.guo_sentences(TEXTS, splitter="punkt_untrained")
    assert split[:1] == ["It was happy!"] and "One sentence only here" in split
    many = [f"Start {i}. Middle {i} is here. End {i}." for i in range(50)]
    opts = options(sentences_sample=7, sentence_splitter="punkt_untrained")
    picked = gen_utils.sample_sentences(many, opts)
    random.seed(42)
    assert picked == random.sample([f"Middle {i} is here." for i in range(50)], 7)
    assert gen_utils.sample_sentences(many[:3], opts) == ["Middle 0 is here.", "Middle 1 is here.", "Middle 2 is here."]
    with pytest.raises(ValueError, match="punkt, punkt_untrained"):
        gen_utils.guo_sentences(TEXTS, splitter="spacy")


def test_div_sem_on_the_sampled_sentences():
    from metrics import semantic_diversity

    opts = options(sentences_sample=4, sentence_splitter="punkt_untrained", embedder=gen_utils.embedder_options()["model_name"])
    expected = semantic_diversity(gen_utils.sample_sentences(TEXTS * 3, opts), model_name=opts["embedder"])
    assert gen_utils._score(TEXTS * 3, "div_sem", opts) == pytest.approx(expected, abs=1e-9)


def test_ttr_fixed_and_the_sentence_count_reported_beside_div_sem():
    from metrics import tokenize, ttr_fixed_length

    assert gen_utils._score(TEXTS, "ttr_fixed", options()) == ttr_fixed_length([tokenize(t) for t in TEXTS], 4)
    doc = {"metric_options": json.dumps({"ttr_length": 4, "sentences_sample": 3, "sentence_splitter": "punkt_untrained"})}
    items = [gen_utils.process_results_options_full(doc, [[t, t]]) for t in TEXTS]
    ttr_fixed = gen_utils.AGGREGATIONS["ttr_fixed"]
    assert ttr_fixed([i["ttr_fixed"] for i in items]) == ttr_fixed_length([tokenize(t) for t in TEXTS * 2], 4)
    many = [f"Start {i}. Middle {i} is here. End {i}." for i in range(5)]
    opts = options(sentences_sample=3, sentence_splitter="punkt_untrained")
    assert gen_utils._score(many, "sentences_n", opts) == 3.0  # the 3,000 of the paper, here 3
    assert gen_utils._score(many[:2], "sentences_n", opts) == 2.0 == len(gen_utils.sample_sentences(many[:2], opts))


def test_check_options_fails_before_generation(monkeypatch):
    import nltk

    with pytest.raises(ValueError, match="unique_n_tokens"):
        gen_utils.check_options(options(unique_n_tokens="bpe"), full=False)
    for bad in (0, "16", True):
        with pytest.raises(ValueError, match="ttr_length"):
            gen_utils.check_options(options(ttr_length=bad), full=False)
    gen_utils.check_options(options(ttr_length=None), full=False)  # unset: the task does not report ttr_fixed

    def no_punkt(text):
        raise LookupError("Resource punkt_tab not found")

    monkeypatch.setattr(nltk, "sent_tokenize", no_punkt)
    with pytest.raises(ValueError, match="nltk.download"):
        gen_utils.check_options(options(), full=True)
    gen_utils.check_options(options(sentence_splitter="punkt_untrained",
                                    embedder=gen_utils.embedder_options()["model_name"]), full=True)
