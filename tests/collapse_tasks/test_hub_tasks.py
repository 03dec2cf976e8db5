"""The hub-backed tasks, loaded through lm-eval against local datasets shaped like the hub ones."""
import re

import datasets
import pytest
from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

import collapse_tasks
from collapse_tasks import gen_utils, hub_utils

HUB_TASKS = {
    "collapse_ppl_wikitext2": "EleutherAI/wikitext_document_level",
    "collapse_ppl_wikitext2_blocks": "Salesforce/wikitext",
    "collapse_ppl_tinystories": "roneneldan/TinyStories",
    "collapse_gen_wikitext": "EleutherAI/wikitext_document_level",
    "collapse_gen_tinystories": "roneneldan/TinyStories",
    "collapse_gen_writingprompts": "euclaise/writingprompts",
    "collapse_gen_xsum": "EdinburghNLP/xsum",
    "collapse_gen_sciabs": "aalksii/ml-arxiv-papers",
}
GUO_FULL = {f"{t}_full": HUB_TASKS[t] for t in ("collapse_gen_xsum", "collapse_gen_sciabs", "collapse_gen_writingprompts")}


@pytest.fixture(scope="module")
def loaded(fake_hub_module, offline_metadata):
    """Every ``collapse_*`` task built by lm-eval from the glob, the hub answered locally."""
    tm = collapse_tasks.task_manager(include_defaults=False, metadata=offline_metadata)
    return tm.load(tm.match_tasks(["collapse_*"]))["tasks"]


def test_the_glob_loads_every_task_once(loaded):
    tm = collapse_tasks.task_manager(include_defaults=False)
    assert sorted(loaded) == tm.all_subtasks and len(loaded) == 19  # 14 + the 5 collapse_vs_* (a tag, no group)
    for name, path in {**HUB_TASKS, **GUO_FULL}.items():
        assert loaded[name].config.dataset_path == path


def test_ppl_hub_tasks(loaded, fake_hub_module):
    fake_hub = fake_hub_module
    wiki = loaded["collapse_ppl_wikitext2"]
    page = fake_hub[HUB_TASKS["collapse_ppl_wikitext2"]][1][0]
    doc = wiki.eval_docs[0]
    assert wiki.doc_to_target(doc) == wikitext_detokenizer(page) and "@-@" not in wiki.doc_to_target(doc)
    assert wiki.process_results(doc, [-5.0])["word_perplexity"] == (-5.0, len(re.split(r"\s+", page["page"])))
    stories = loaded["collapse_ppl_tinystories"]
    assert stories.config.test_split == "validation" and len(stories.eval_docs) == 40
    assert stories.doc_to_target(stories.eval_docs[0]) == fake_hub[HUB_TASKS["collapse_ppl_tinystories"]][1][0]["text"]


@pytest.mark.parametrize(
    ("task", "prompt_pattern"),
    [
        ("collapse_gen_wikitext", r"(\S+ ){63}\S+"),
        ("collapse_gen_tinystories", r"(\S+ ){9}\S+"),
        ("collapse_gen_writingprompts", r"Prompt: (?!\[ WP)[^\n]+\nStory:"),
        ("collapse_gen_xsum", r"Article: [^\n]+\nSummary:"),
        ("collapse_gen_sciabs", r"The title of the paper is: [^\n]+\nThe abstract of the paper is: [^\n]*?[.!?]"),
    ],
)
def test_gen_hub_tasks_build_prompts(loaded, task, prompt_pattern):
    t = loaded[task]
    docs = list(t.eval_docs)
    assert 0 < len(docs) <= gen_utils.NUM_PROMPTS
    for doc in docs:
        assert re.fullmatch(prompt_pattern, t.doc_to_text(doc)), t.doc_to_text(doc)
        assert t.doc_to_target(doc).strip()
    assert set(t.process_results(docs[0], [["a b c", "c d e"]])) == set(t.aggregation())


def test_wikitext_blocks_are_consecutive():
    page = {"page": " ".join(f"w{i}" for i in range(300))}
    docs = hub_utils.wikitext_prompts(datasets.Dataset.from_list([page]))
    assert len(docs) == 2  # 300 words: two 128-word blocks, the rest dropped
    assert docs[1]["prompt"].split()[0] == "w128" and docs[1]["reference"].split()[-1] == "w255"


def test_prompt_selection_is_even_and_capped(monkeypatch):
    rows = datasets.Dataset.from_list([{"text": f"story {i} " + "word " * 30} for i in range(5000)])
    docs = hub_utils.tinystories_prompts(rows)
    assert len(docs) == gen_utils.NUM_PROMPTS
    firsts = [int(d["prompt"].split()[1]) for d in docs]
    assert firsts[0] == 0 and firsts[-1] == 4999 and firsts == sorted(firsts)
    assert hub_utils.tinystories_prompts(rows)[:] == docs[:]
    with pytest.raises(ValueError, match="no usable document"):
        hub_utils.tinystories_prompts(datasets.Dataset.from_list([{"text": "too short"}]))


def test_writingprompts_cleaning():
    row = {"prompt": "[ WP ] [ EU ]  A dragon   asks for help", "story": "One.  <newline> <newline> Two."}
    assert hub_utils.writingprompts_record(row) == {"prompt": "Prompt: A dragon asks for help\nStory:",
                                                    "reference": "One.\nTwo."}
    assert hub_utils.writingprompts_record({"prompt": "[ WP ]", "story": "x"}) is None


def test_xsum_article_is_cut():
    doc = hub_utils.xsum_record({"document": "w " * 1000, "summary": " s ", "id": "1"})
    assert len(doc["prompt"].split()) == hub_utils.XSUM_ARTICLE_WORDS + 2 and doc["reference"] == "s"


@pytest.mark.slow
def test_hub_tasks_score_a_model_end_to_end(fake_hub, tiny_gpt2, offline_metadata):
    import lm_eval

    tm = collapse_tasks.task_manager(include_defaults=False, metadata=offline_metadata)
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_gpt2}", tasks=list(HUB_TASKS), task_manager=tm,
        limit=2, device="cpu", batch_size=8, gen_kwargs="max_gen_toks=8", bootstrap_iters=0,
    )
    for task in HUB_TASKS:
        reported = {k.partition(",")[0] for k in results["results"][task] if "," in k and "_stderr" not in k}
        assert reported == {m["metric"] for m in results["configs"][task]["metric_list"]}, task
