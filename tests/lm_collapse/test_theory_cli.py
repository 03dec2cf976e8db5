"""``lm-collapse theory``: json records, the table, the figure, and one-line errors on bad input."""
import json

import pytest

from lm_collapse.cli import main

SMALL = ["theory", "--d", "4", "--T", "12", "--generations", "2", "--reps", "20"]


def test_json_records(capsys):
    assert main([*SMALL, "--regimes", "replace,accumulate,mix:0.25", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 3 * 3
    assert [r["regime"] for r in records[::3]] == ["replace", "accumulate", "mix:0.25"]
    for r in records:
        assert {"regime", "generation", "test_error_sim", "test_error_sim_ci95", "test_error_theory"} <= set(r)
        assert isinstance(r["test_error_theory"], float) and len(r["test_error_sim_ci95"]) == 2


def test_table_and_figure(tmp_path, capsys):
    out = tmp_path / "theory.png"
    assert main([*SMALL, "--adaptive", "--spectrum", "power:1", "--plot", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| regime | learner | generation |") and "| mix:0.5 | adaptive | 2 |" in table
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--regimes", "replace,copy"], "unknown regime 'copy'"),
        (["--regimes", "mix:2"], "synthetic share must be in [0, 1]"),
        (["--T", "5"], "T must be >= d + 2 = 6"),
        (["--reps", "1"], "reps must be >= 2"),
        (["--ridge", "-0.5"], "λ must be >= 0"),
        (["--spectrum", "flat"], "isotropic or power:ALPHA"),
        (["--plot", "/no/such/folder/x.png"], "existing folder"),
        (["--plot", "x.jpg"], "expected a .png, .pdf, .svg file"),  # theory_plot.FIGURE_SUFFIXES
    ],
)
def test_bad_input_is_one_line(args, message, capsys):
    assert main([*SMALL, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_argparse_rejections_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main([*SMALL, "--d", "x"])
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_ridge_and_adaptive_learners_together(capsys):
    assert main([*SMALL, "--regimes", "replace", "--ridge", "0.1,1", "--adaptive", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert list(dict.fromkeys(r["learner"] for r in records)) == ["ols", "ridge:0.1", "ridge:1", "adaptive"]


def test_the_figure_draws_every_series_past_ten(tmp_path):
    from lm_collapse.report.theory_plot import theory_figure

    regimes = [f"regime_{i}" for i in range(12)]
    records = [{"regime": r, "learner": "ols", "generation": g, "test_error_sim": 1.0 + i + g,
                "test_error_sim_ci95": [0.5 + i + g, 1.5 + i + g], "test_error_theory": None}
               for i, r in enumerate(regimes) for g in range(2)]
    svg = theory_figure(records, tmp_path / "t.svg", title="twelve").read_text()
    for r in regimes:  # matplotlib writes each text of an SVG as a comment beside its glyphs
        assert f"<!-- {r} -->" in svg, r
