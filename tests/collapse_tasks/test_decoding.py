"""What reaches the model when lm-eval runs a generation task: the whole distribution, truncated only
where the task's YAML asks for it.

lm-eval's HFLM passes a task's ``generation_kwargs`` to ``model.generate`` and nothing else; transformers
then fills every unset key from the checkpoint's ``generation_config.json``, then from its global defaults
(``GenerationConfig._get_default_generation_params``: ``top_k = 50``). These tests build every
``collapse_gen_*`` and ``collapse_vs_*`` task with lm-eval, send its first request through a real HFLM on
the tiny GPT-2 — its generation config set as a Qwen2.5 instruct checkpoint's, plus a min-p — and read the
kwargs ``generate`` receives and the logits processors transformers builds from them.
"""
import pytest

import collapse_tasks

#: The only logits processors a task without truncation may build: the temperature, and min-p at 0 (a no-op:
#: transformers builds it for any min_p that is not None, and 0 is how the tasks say "off" to a checkpoint
#: whose generation_config.json sets one).
ALLOWED = {"TemperatureLogitsWarper", "MinPLogitsWarper"}
#: A checkpoint's own defaults that the tasks' kwargs must override (Qwen2.5 instruct models ship the first four).
CHECKPOINT_DEFAULTS = {"temperature": 0.7, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.05, "min_p": 0.05}
GEN_TASKS = ["collapse_gen_shakespeare", "collapse_gen_shakespeare_full", "collapse_gen_wikitext",
             "collapse_gen_tinystories", "collapse_gen_writingprompts", "collapse_gen_xsum", "collapse_gen_sciabs",
             "collapse_gen_writingprompts_full", "collapse_gen_xsum_full", "collapse_gen_sciabs_full"]
VS_TASKS = ["collapse_vs_cot", "collapse_vs_direct", "collapse_vs_multi", "collapse_vs_standard", "collapse_vs_xml"]


#: SamplingParams fields the tasks' kwargs may reach (vllm/sampling_params.py), plus what modify_gen_kwargs pops.
VLLM_FIELDS = {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "do_sample", "until", "max_gen_toks"}


class Built(Exception):
    """Raised once transformers has built the logits processors: nothing is generated past that point."""


@pytest.fixture(scope="module")
def tasks(fake_hub_module, offline_metadata):
    tm = collapse_tasks.task_manager(include_defaults=False, metadata=offline_metadata)
    return tm.load(tm.match_tasks(["collapse_*"]))["tasks"]


@pytest.fixture(scope="module")
def hflm(tiny_gpt2):
    from lm_eval.models.huggingface import HFLM

    # max_length above the VS tasks' max_gen_toks, so HFLM keeps room for a prompt (nothing is generated)
    return HFLM(pretrained=str(tiny_gpt2), device="cpu", batch_size=1, max_length=4096)


def capture(lm, monkeypatch, *, stop: bool):
    """Record the kwargs of ``lm.model.generate`` and what transformers resolves from them."""
    seen = {}
    model = lm.model
    generate, build = model.generate, model._get_logits_processor

    def recording_generate(*args, **kwargs):
        seen["kwargs"] = kwargs
        return generate(*args, **kwargs)

    def recording_build(*args, **kwargs):
        processors = build(*args, **kwargs)
        seen["config"], seen["processors"] = kwargs["generation_config"], processors
        if stop:
            raise Built
        return processors

    for key, value in CHECKPOINT_DEFAULTS.items():
        monkeypatch.setattr(model.generation_config, key, value)
    monkeypatch.setattr(model, "generate", recording_generate)
    monkeypatch.setattr(model, "_get_logits_processor", recording_build)
    return seen


def check_full_distribution(seen: dict, asked: dict) -> None:
    """Sampling at the YAML's temperature from every token: no top-k, top-p, min-p, typical, penalties."""
    kwargs, config = seen["kwargs"], seen["config"]
    assert config.do_sample and config.num_beams == 1 and config.top_k in (0, None)
    assert config.top_p in (1.0, None) and config.min_p == 0.0 and config.typical_p in (1.0, None)
    assert not config.epsilon_cutoff and not config.eta_cutoff
    assert config.repetition_penalty in (1.0, None) and not config.no_repeat_ngram_size
    built = {type(p).__name__ for p in seen["processors"]}
    assert built <= ALLOWED, f"truncation the task did not ask for: {sorted(built - ALLOWED)}"
    assert all(p.min_p == 0.0 for p in seen["processors"] if type(p).__name__ == "MinPLogitsWarper")
    assert kwargs["do_sample"] is True and kwargs["top_k"] == 0 and kwargs["top_p"] == 1.0
    assert kwargs["min_p"] == 0.0 and kwargs["repetition_penalty"] == 1.0 and kwargs["temperature"] == asked["temperature"]
    temperature = [p.temperature for p in seen["processors"] if type(p).__name__ == "TemperatureLogitsWarper"]
    assert temperature == ([] if asked["temperature"] == 1.0 else [asked["temperature"]])


def test_every_generation_task_is_listed(tasks):
    generating = sorted(name for name, t in tasks.items() if t.config.output_type == "generate_until")
    assert generating == sorted(GEN_TASKS + VS_TASKS)


@pytest.mark.parametrize("name", GEN_TASKS + VS_TASKS)
def test_the_whole_distribution_reaches_generate(name, tasks, hflm, monkeypatch):
    task = tasks[name]
    task.build_all_requests(limit=1, rank=0, world_size=1)
    request = task.instances[0]
    asked = request.args[1]
    assert (asked["top_k"], asked["top_p"], asked["min_p"], asked["repetition_penalty"]) == (0, 1.0, 0.0, 1.0)
    assert asked["do_sample"] is True  # all stated in the YAML
    seen = capture(hflm, monkeypatch, stop=True)
    with pytest.raises(Built):
        hflm.generate_until([request])
    check_full_distribution(seen, asked)


@pytest.mark.slow
def test_a_real_generation_run_samples_the_whole_distribution(tiny_gpt2, hflm, monkeypatch):
    """The shipped offline task end to end through simple_evaluate: generated, scored, untruncated."""
    import lm_eval

    seen = capture(hflm, monkeypatch, stop=False)
    tm = collapse_tasks.task_manager(include_defaults=False)
    out = lm_eval.simple_evaluate(model=hflm, tasks=["collapse_gen_shakespeare"], task_manager=tm, limit=2,
                                  gen_kwargs="max_gen_toks=8", bootstrap_iters=0)
    check_full_distribution(seen, {"temperature": 1.0})
    assert seen["kwargs"]["max_length"] - seen["kwargs"]["input_ids"].shape[1] == 8
    assert out["results"]["collapse_gen_shakespeare"]["mean_length,none"] > 0


def test_vllm_path_passes_the_same_options(tasks):
    """lm-eval's vLLM model normalizes the same kwargs (``normalize_gen_kwargs``) and hands them, less
    do_sample, until and max_gen_toks, to ``SamplingParams`` (``VLLM.modify_gen_kwargs``): top_k 0 and
    top_p 1.0 arrive as given, and every key is a ``SamplingParams`` field (an unknown one is a TypeError there).
    vLLM >= 0.9 reads top_k 0 as "off" (vllm-project/vllm#17773; older versions refuse 0 with an error, never
    truncate): setup.cfg's vllm extra asks for >= 0.9."""
    from lm_eval.models.utils import normalize_gen_kwargs

    for name in GEN_TASKS + VS_TASKS:
        kwargs = normalize_gen_kwargs(tasks[name].config.generation_kwargs)
        assert (kwargs["top_k"], kwargs["top_p"], kwargs["min_p"], kwargs["repetition_penalty"]) == (0, 1.0, 0.0, 1.0)
        assert kwargs["temperature"] > 0 and set(kwargs) <= VLLM_FIELDS, name
