"""configs/lab1_seed_notebook.yaml measures what the seed Lab 1 notebook measures.

Its generation-0 held-out perplexity (the driver's probe ``heldout_perplexity``) must be the number
the notebook's own estimator gives on the same documents: the estimator is written here as the
seed writes it — regex tokens, dict counts, add-one probabilities, exp of the mean negative
log-likelihood over every transition of ``<s> w1 ... wn </s>``, the end token included (the seed
scores (last word -> </s>) too; the config sets ``model.score_end: true`` for it).
"""
import json
import math
import re
from pathlib import Path

from collapse_tasks import corpus
from recursion.artifacts import HELDOUT, PROBES, gen_dir, read_texts, read_training_texts
from recursion.driver import run_experiment

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lab1_seed_notebook.yaml"
SMALL = ["seeds=[0]", "generations=2", "eval.enabled=false", "generate.num_docs=300", "probes.num_prompts=5"]


def tokenize(line):
    return re.findall(r"[a-zA-Z0-9']+", line.lower())


def notebook_perplexity(train_lines, test_lines, alpha=1.0):
    """The seed notebook's estimator: add-α bigram over the training lines' vocabulary (+ </s>, <unk>),
    every transition of each test line scored, (last word -> </s>) included."""
    vocab, history_counts, bigram_counts = set(), {}, {}
    for line in train_lines:
        tokens = ["<s>"] + tokenize(line) + ["</s>"]
        vocab.update(tokens[1:])
        for prev, word in zip(tokens, tokens[1:]):
            bigram_counts[(prev, word)] = bigram_counts.get((prev, word), 0) + 1
            history_counts[prev] = history_counts.get(prev, 0) + 1
    vocab.add("<unk>")
    V = len(vocab)
    nll, n = 0.0, 0
    for line in test_lines:
        tokens = ["<s>"] + [w if w in vocab else "<unk>" for w in tokenize(line)] + ["</s>"]
        for prev, word in zip(tokens, tokens[1:]):
            p = (bigram_counts.get((prev, word), 0) + alpha) / (history_counts.get(prev, 0) + alpha * V)
            nll -= math.log(p)
            n += 1
    return math.exp(nll / n)


def test_generation_0_heldout_perplexity_is_the_notebooks(tmp_path):
    [pure, surprise] = run_experiment(CONFIG, tmp_path / "run", overrides=SMALL, log=lambda s: None)
    train, heldout = read_texts(gen_dir(pure, 0) / "train.jsonl"), read_texts(pure / HELDOUT)
    # the documents are the notebook's: lines of the first 300,000 characters, > 20 characters, >= 5 tokens, 90/10
    text = "\n\n".join(corpus.works("train").values())[:300_000]
    lines = [s.strip() for s in text.splitlines() if len(s.strip()) > 20 and len(tokenize(s)) >= 5]
    assert sorted(train + heldout) == sorted(lines) and len(train) == int(0.9 * len(lines))
    probes = [json.loads((gen_dir(pure, g) / PROBES).read_text()) for g in range(2)]
    expected = notebook_perplexity(train, heldout)
    assert math.isclose(probes[0]["heldout_perplexity"], expected, rel_tol=1e-12), (probes[0]["heldout_perplexity"], expected)
    assert probes[0]["num_heldout"] == len(heldout) == 550
    # later generations: the notebook's estimator on that generation's training set (its rebuilt vocabulary)
    gen1 = notebook_perplexity(read_training_texts(gen_dir(pure, 1)), heldout)
    assert math.isclose(probes[1]["heldout_perplexity"], gen1, rel_tol=1e-12)
    assert len(read_training_texts(gen_dir(surprise, 1))) == 300  # top_k 600 of 300 samples: all of them
