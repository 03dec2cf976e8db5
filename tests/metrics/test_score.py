import json

import pytest

from lm_collapse.cli import main
from metrics import distinct_n, top_k_share
from metrics.score import DEFAULT_METRICS, resolve, score


def test_score_equals_the_functions(shakespeare_lines):
    texts = shakespeare_lines[:300]
    out = score(texts, ["distinct_2", "top5_share"])
    assert out == {"distinct_2": distinct_n(texts, 2), "top5_share": top_k_share(texts, 5)}


def test_unknown_metric_fails_before_work():
    with pytest.raises(ValueError, match="unknown metric 'distinct_x'.*valid names"):
        score(["a"], ["distinct_1", "distinct_x"])
    with pytest.raises(ValueError):
        resolve("distinct_0")


def test_token_lists_cannot_be_parsed():
    with pytest.raises(ValueError, match="raw strings"):
        score([["a", "b"], ["c"]], ["div_syn"])


def test_memorization_needs_a_reference():
    with pytest.raises(ValueError, match="reference_texts"):
        score(["a b c"], ["memorization_2"])


def test_options_reach_the_metric(shakespeare_lines):
    texts = shakespeare_lines[:200]
    a = score(texts, ["unique_n"], options={"unique_n": {"sample_size": 100, "seed": 1}})
    b = score(texts, ["unique_n"], options={"unique_n": {"sample_size": 100, "seed": 2}})
    assert a != b


def test_cli_table_and_json(tmp_path, capsys):
    gen = tmp_path / "gen.jsonl"
    gen.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(["a b c", "a b d"])))
    plain = tmp_path / "plain.txt"
    plain.write_text("a b c\n\na b d\n")
    assert main(["metrics", str(gen), str(plain), "--metrics", "distinct_1,mean_length", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "distinct_1" in out and out.count("0.6667") == 2
    assert main(["metrics", str(gen), "--format", "json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result[str(gen)]) == list(DEFAULT_METRICS)


def test_cli_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"content": "x"}\n')
    assert main(["metrics", str(bad), "--quiet"]) == 2
    assert "no field 'text'" in capsys.readouterr().err
    assert main(["metrics", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["metrics", str(bad), "--field", "content", "--metrics", "nope"]) == 2
    assert "unknown metric" in capsys.readouterr().err
