"""Config validation: every bad key or value fails before any work, naming the key."""
import pytest

from recursion.loader import ConfigError, load_config, parse_overrides, to_dict

BASE = """
name: t
generations: 2
model: {backend: ngram, n: 2, alpha: 0.1}
"""


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_and_arms(tmp_path):
    arms = load_config(write(tmp_path, BASE + "arms:\n  a: {}\n  b: {regime: {name: accumulate}}\n"))
    assert list(arms) == ["a", "b"]
    assert arms["a"].regime.name == "replace" and arms["b"].regime.name == "accumulate"
    assert arms["a"].model.alpha == 0.1 and arms["a"].eval.tasks == ("collapse",)
    assert to_dict(arms["a"])["model"] == {"backend": "ngram", "n": 2, "alpha": 0.1, "smoothing": "add_alpha", "discount": None,
                                           "jm_lambda": None, "tokenizer": "whitespace", "vocabulary": "fixed",
                                           "score_end": False}
    assert list(load_config(write(tmp_path, BASE))) == ["default"]


def test_set_overrides(tmp_path):
    [exp] = load_config(write(tmp_path, BASE), ["generations=4", "model.alpha=0.5", "seeds=[0,1]"]).values()
    assert exp.generations == 4 and exp.model.alpha == 0.5 and exp.seeds == (0, 1)
    assert parse_overrides(["a.b=1", "a.c=x"]) == {"a": {"b": 1, "c": "x"}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["novalue"])


@pytest.mark.parametrize(
    "extra, match",
    [
        ("regime: {nmae: replace}", r"unknown key 'regime.nmae' \(did you mean 'name'\?\); valid keys: name"),
        ("regime: {name: replce}", r"regime.name = 'replce' is not valid; choose one of: replace, accumulate"),
        ("filter: {name: surprize}", r"filter.name = 'surprize' is not valid; choose one of: none, random, surprise"),
        ("generations: two", r"generations must be int"),
        ("generations: 0", r"generations must be >= 1"),
        ("filter: {name: surprise, keep: 1.5}", r"filter.keep must be in \(0, 1\]"),
        ("generate: {prompt: task}", r"needs generate.prompts_file"),
        ("generate: {decoding: {temprature: 1}}", r"unknown key 'generate.decoding.temprature'"),
        ("bogus: 1", r"unknown key 'bogus'"),
        ("data: {source: 'ftp:x'}", r"data.source = 'ftp:x' is not valid; choose one of: shakespeare, jsonl:PATH"),
        ("generate: {decoding: {top_p: 0}}", r"generate.decoding.top_p must be in \(0, 1\]"),
        ("generate: {decoding: {num_beams: 5}}", r"generate.decoding.num_beams must be 1: the ngram back end"),
        ("model: {backend: ngram, alpha: -1}", r"model.alpha must be > 0"),
        ("eval: {limit: 0}", r"eval.limit must be > 0"),
        ("generate: {prompt: task}\ndata: {prompt_field: title}",
         r"generate.keep_prompt must be true with generate.prompt: task on \(prompt, text\) data"),
        ("generate: {keep_prompt: true}", r"generate.keep_prompt has no prompt to keep"),
        ("regime: {name: accumulate_select}", r"filter.top_k must be set with regime accumulate_select"),
        ("regime: {pool: real}", r"unknown key 'regime.pool'; valid keys: name"),
        ("filter: {name: surprise, tau: 1}", r"unknown key 'filter.tau'; valid keys: name, keep, top_k"),
        ("data: {validation_split: validation}", r"data.validation_split is read only by the hf back ends"),
        ("data: {source: 'jsonl:x', validation_split: v}", r"data.validation_split needs a source with splits"),
        ("data: {split: test}", r"data.split = 'test' is not a split of the shipped corpus \(source: shakespeare\); "
                                r"choose one of: train, heldout, all"),
        ("data: {chunk_words: 4, tokens: {tokenizer: t}}", r"data.tokens and chunk_words both cut documents"),
        ("data: {tokens: {size: 0}}", r"data.tokens.tokenizer must name a tokenizer"),
        ("data: {source: 'jsonl:x', template: xsum, prompt_field: p}", r"data.template and prompt_field"),
        ("data: {template: xsum}", r"data.template needs hub or jsonl records"),
        ("eval: {metadata: [1]}", r"eval.metadata must be a mapping"),
    ],
)
def test_bad_values_name_the_key(tmp_path, extra, match):
    given = {line.partition(":")[0] for line in extra.splitlines()}  # a key given twice is an error of its own
    base = "".join(line + "\n" for line in BASE.splitlines() if line.partition(":")[0] not in given)
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, base + extra + "\n"))


def test_bad_backend_and_model_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"model.backend = 'gpt5' is not valid; choose one of: ngram, hf_scratch"):
        load_config(write(tmp_path, "name: t\nmodel: {backend: gpt5}\n"))
    with pytest.raises(ConfigError, match=r"unknown key 'model.order'; valid keys: n, alpha"):
        load_config(write(tmp_path, "name: t\nmodel: {backend: ngram, order: 3}\n"))
    with pytest.raises(ConfigError, match=r"arm 'x'"):
        load_config(write(tmp_path, BASE + "arms:\n  x: {regime: {name: nope}}\n"))
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "text, match",
    [
        ("name: 123\nmodel: {backend: ngram}\n", r"^[^\n]*: name must be a non-empty string$"),
        ("name: t\nmodel: gpt2\n", r": model must be a mapping \(backend: \.\.\., its options\), got str"),
        ("name: t\nmodel: {backend: [a]}\n", r"model.backend = \['a'\] is not valid; choose one of: ngram"),
    ],
)
def test_values_of_the_wrong_type_are_config_errors(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):  # one line naming the key, never a TypeError
        load_config(write(tmp_path, text))


def test_set_changes_an_arm_but_never_adds_one(tmp_path):
    path = write(tmp_path, BASE + "arms:\n  surprise: {}\n  replace: {}\n")
    assert load_config(path, ["arms.surprise.generations=3"])["surprise"].generations == 3
    with pytest.raises(ConfigError, match=r"has no arm 'surprse'; its arms: surprise, replace"):
        load_config(path, ["arms.surprse.generations=3"])  # a typo would otherwise run as a fourth arm
    with pytest.raises(ConfigError, match=r"has no arm 'a'; it has no arms"):
        load_config(write(tmp_path, BASE), ["arms.a.generations=3"])


def test_every_problem_is_reported_at_once(tmp_path):
    text = (BASE.replace("generations: 2", "generations: 0")
            + "filter: {name: surprize, keep: 2}\ngenerate: {decoding: {temperature: 0, num_beams: 3}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    problems = info.value.problems
    assert len(problems) == 5, problems
    for key in ("generations", "filter.name", "filter.keep", "generate.decoding.temperature", "generate.decoding.num_beams"):
        assert any(f": {key} " in p for p in problems), key


def test_a_problem_of_one_arm_names_the_arm(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, BASE.replace("generations: 2", "generations: 0")
                          + "arms:\n  a: {}\n  x: {regime: {name: nope}}\n"))
    assert info.value.problems[0].endswith(": generations must be >= 1")  # shared by both arms: said once
    assert "(arm 'x'): regime.name = 'nope'" in info.value.problems[1] and len(info.value.problems) == 2


def test_hf_best_validation_hand_on_needs_a_validation_split(tmp_path):
    hf = "name: t\nmodel: {backend: hf_scratch, train: {hand_on: best_validation}}\n"
    with pytest.raises(ConfigError, match="model.train.hand_on = best_validation needs data.validation_split"):
        load_config(write(tmp_path, hf))
    [exp] = load_config(write(tmp_path, hf + "data: {validation_split: heldout}\n")).values()
    assert exp.model.train.hand_on == "best_validation" and exp.data.validation_split == "heldout"
    # a validation split with the last epoch handed on: the loss is evaluated per epoch and recorded
    [exp] = load_config(write(tmp_path, "name: t\nmodel: {backend: hf_finetune}\ndata: {validation_split: heldout}\n")).values()
    assert exp.model.train.hand_on == "last"
    with pytest.raises(ConfigError, match="hand_on"):
        load_config(write(tmp_path, "name: t\nmodel: {backend: hf_scratch, train: {hand_on: best}}\n"))


def test_dry_run_json_prints_every_arm_resolved(tmp_path, capsys):
    import json

    from lm_collapse.cli import main

    path = write(tmp_path, BASE + "eval: {enabled: false}\narms:\n  a: {}\n  b: {regime: {name: accumulate}}\n")
    assert main(["run", str(path), "--dry-run", "--format", "json", "--set", "generations=3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["a", "b"] and out["b"]["regime"] == {"name": "accumulate"}
    assert out["a"]["generations"] == 3 and out["a"]["generate"]["decoding"]["top_p"] == 1.0  # defaults filled in
    assert out == {arm: json.loads(json.dumps(to_dict(exp))) for arm, exp in load_config(path, ["generations=3"]).items()}
