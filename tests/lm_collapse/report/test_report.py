"""Reports on small synthetic run folders with known numbers."""
import json
import math

import pytest
import yaml

from lm_collapse.cli import main
from lm_collapse.report import build_report
from lm_collapse.report.collect import collect, metric_name
from lm_collapse.report.tables import aggregate, ci95, latex_escape

ARMS = {"replace": 1.0, "accumulate": 0.5}  # word perplexity grows by this much per generation


def value(arm, seed, g):
    return 100.0 + ARMS[arm] * 10 * g + seed  # seeds 0, 1, 2 -> mean 101 + ...


def make_run(root, generations=3, seeds=(0, 1, 2)):
    for arm in ARMS:
        for seed in seeds:
            rep = root / arm / f"seed_{seed}"
            rep.mkdir(parents=True)
            config = {"name": "t", "arm": arm, "seeds": [seed], "generations": generations}
            (rep / "config.yaml").write_text(yaml.safe_dump(config))
            (rep / "manifest.json").write_text(json.dumps({"seed": seed, "stages": {}}))
            for g in range(generations):
                gen = rep / f"gen_{g:02d}"
                gen.mkdir()
                results = {"collapse_ppl_shakespeare": {"alias": "x", "word_perplexity,none": value(arm, seed, g),
                                                        "word_perplexity_stderr,none": "N/A", "bits_per_byte,none": 1.5},
                           "collapse_gen_shakespeare": {"distinct_2,none": 0.9 - 0.1 * g}}
                (gen / "lm_eval.json").write_text(json.dumps({"results": results}))
                (gen / "probes.json").write_text(json.dumps({"gen0_perplexity": [10.0 * (g + 1), 20.0, 30.0 + g],
                                                             "gen0_perplexity_median": 20.0, "top1_mass_mean": 0.1 * (g + 1)}))
                docs = [{"text": f"{arm} gen {g} doc {i}", "prompt": f"p{i}"} for i in range(3)]
                (gen / "synthetic.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return root


def test_collect_and_aggregate(tmp_path):
    col = collect([make_run(tmp_path / "run")])
    assert sorted(col.arms) == ["accumulate", "replace"] and len(col.replicas) == 6 and not col.problems
    cells = aggregate(col)
    c = cells[("replace", "ppl_shakespeare/word_perplexity", 2)]
    assert c.mean == pytest.approx(121.0) and c.n == 3
    # three seeds 120, 121, 122: s = 1; Student's t with 2 dof has the closed form (2p-1)/sqrt(2p(1-p))
    t = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert c.ci95 == pytest.approx(t / math.sqrt(3), rel=1e-10)
    assert len(c.sources) == 3 and all(s.endswith("lm_eval.json") for s in c.sources)
    assert ("replace", "ppl_shakespeare/word_perplexity_stderr", 0) not in cells
    assert ci95([1.0]) is None
    assert metric_name("collapse_gen_x", "distinct_2,none") == "gen_x/distinct_2"


def test_report_files_and_numbers(tmp_path):
    run = make_run(tmp_path / "run")
    rep = build_report([run], tmp_path / "out")
    names = {f.name for f in rep.files}
    assert {"report.md", "tables.md", "tables.tex", "results.csv", "metrics.png", "metrics.pdf",
            "perplexity_density.png", "top1_mass.png"} <= names
    md = (tmp_path / "out/report.md").read_text()
    assert "121.0 ± 2.484" in md  # replace, gen 2, mean ± t-CI
    assert "111.0 ± 2.484" in md and "+19.8%" in md  # replace: 101 -> 121
    assert "0.7 ± 0 ↓" in md and "## Samples" in md and "replace gen 2 doc 0" in md
    for png in (tmp_path / "out").glob("*.png"):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    csv = (tmp_path / "out/results.csv").read_text().splitlines()
    assert csv[0] == "arm,metric,generation,mean,ci95,n,sources" and len(csv) == 1 + 2 * 3 * 5


def test_latex_is_compile_shaped(tmp_path):
    build_report([make_run(tmp_path / "run")], tmp_path / "out", formats=("latex",))
    tex = (tmp_path / "out/tables.tex").read_text()
    assert tex.count("{") == tex.count("}") and tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 3
    assert r"\toprule" in tex and r"word\_perplexity" in tex and r"\%" in tex and "$\\pm$" in tex
    body = tex.replace(r"\_", "").replace(r"\%", "")
    assert "_" not in body and "%" not in body
    assert latex_escape("a_b 5% & {x}") == r"a\_b 5\% \& \{x\}"


def test_unfinished_and_corrupt_runs_report_what_is_there(tmp_path):
    run = make_run(tmp_path / "run", seeds=(0,))
    (run / "replace/seed_0/gen_01/lm_eval.json").write_text("{not json")
    (run / "accumulate/seed_0/gen_02/probes.json").unlink()
    (run / "accumulate/seed_0/config.yaml").write_text(yaml.safe_dump({"arm": "accumulate", "generations": 5}))
    rep = build_report([run], tmp_path / "out")
    problems = "\n".join(rep.problems)
    assert "gen_01/lm_eval.json: unreadable" in problems
    assert "gen_02/probes.json: missing" in problems
    assert "3 of 5 generations present" in problems
    assert "What is missing or unreadable" in (tmp_path / "out/report.md").read_text()


def test_cli(tmp_path, capsys):
    run = make_run(tmp_path / "run", seeds=(0, 1))
    assert main(["report", str(run), "--out", str(tmp_path / "o"), "--format", "md,csv"]) == 0
    out = capsys.readouterr().out
    assert "report.md" in out and (tmp_path / "o/results.csv").exists() and not (tmp_path / "o/tables.tex").exists()
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert main(["report", str(run), "--format", "docx"]) == 2


def test_samples_read_a_prompt_stored_inside_the_document(tmp_path):
    from lm_collapse.report.collect import Replica
    from lm_collapse.report.samples import sample_rows
    from recursion.artifacts import synthetic_record, write_jsonl

    for g, word in enumerate(["old", "new"]):
        write_jsonl(tmp_path / f"gen_0{g}/synthetic.jsonl",
                    [synthetic_record(f" {word} {i}", f"Title {i}: ", prompt_in_text=True) for i in range(3)])
    rows = sample_rows(Replica(tmp_path, "a", 0, generations=[0, 1]), num=1)
    assert rows == [("Title 0: ", 0, " old 0"), ("Title 0: ", 1, " new 0")]
