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


def make_run(root, generations=3, seeds=(0, 1, 2), overrides=None):
    for arm in ARMS:
        for seed in seeds:
            rep = root / arm / f"seed_{seed}"
            rep.mkdir(parents=True)
            config = {"name": "t", "arm": arm, "seeds": [seed], "generations": generations,
                      **({"overrides": overrides} if overrides else {})}
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
    assert {"report.md", "tables.md", "tables.tex", "results.csv", "quality.png", "quality.pdf", "diversity.png",
            "probes.png", "perplexity_density.png"} <= names
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


def set_results(run, arm, g, **values):
    """Overwrite numbers of one generation's lm_eval.json in every seed of ``arm``."""
    for path in (run / arm).glob(f"seed_*/gen_{g:02d}/lm_eval.json"):
        doc = json.loads(path.read_text())
        for key, v in values.items():
            task = "collapse_ppl_shakespeare" if "perplexity" in key else "collapse_gen_shakespeare"
            doc["results"][task][f"{key},none"] = v
        path.write_text(json.dumps(doc))


def test_no_reading_notes_for_a_healthy_run(tmp_path):
    rep = build_report([make_run(tmp_path / "run")], tmp_path / "out", plots_on=False)
    assert rep.notes == [] and "Reading these numbers" not in rep.path.read_text()


def test_perplexity_near_and_above_the_ngram_vocabulary_is_flagged(tmp_path):
    run = make_run(tmp_path / "run", seeds=(0,))
    for gen in run.glob("*/seed_0/gen_*"):
        (gen / "model").mkdir()
        vocab = 111 if gen.parent.parent.name == "accumulate" else 56  # V = 110 / 55 (<s> is never predicted)
        (gen / "model" / "ngram.json").write_text(json.dumps({"format": "lm-collapse-ngram", "vocab": ["w"] * vocab}))
    rep = build_report([run], tmp_path / "out", plots_on=False)
    text = "\n".join(rep.notes)
    # accumulate: 100 and 110 in (110 / 4, 2 × 110]: near uniform; replace, V = 55: 100 near, 120 > 2 × 55 above
    assert "Perplexity near the vocabulary size" in text and "Perplexity above the vocabulary size" in text
    assert "`accumulate` gen 0: ppl_shakespeare/word_perplexity = 100, V = 110" in text
    assert "`accumulate` gen 2: ppl_shakespeare/word_perplexity = 110, V = 110" in text
    assert "`replace` gen 0: ppl_shakespeare/word_perplexity = 100, V = 55" in text.split("above the vocabulary")[0]
    assert "`replace` gen 2: ppl_shakespeare/word_perplexity = 120, V = 55" in text.split("above the vocabulary")[1]
    md = rep.path.read_text()
    assert md.index("## Arms side by side") < md.index("### Reading these numbers") < md.index("## replace")


def test_perplexity_falling_while_diversity_falls_and_distinct1_rising_are_flagged(tmp_path):
    run = make_run(tmp_path / "run", seeds=(0,))
    set_results(run, "accumulate", 2, word_perplexity=50.0)  # better on real text while distinct-2 falls 0.9 -> 0.7
    for g, d1 in enumerate((0.3, 0.35, 0.4)):
        set_results(run, "replace", g, distinct_1=d1)  # single words spread while pairs narrow
    notes = build_report([run], tmp_path / "out", plots_on=False).notes
    assert len(notes) == 2
    assert notes[0].startswith("**Perplexity falling while diversity falls** (`accumulate`: "
                               "ppl_shakespeare/word_perplexity 100 → 50")
    assert "`replace`" not in notes[0]
    assert notes[1].startswith("**distinct-1 rising while distinct-2 falls** (`replace`: "
                               "distinct-1 0.3 → 0.4, distinct-2 0.9 → 0.7")


def test_figures_have_units_and_log_axes_where_values_span_decades():
    from lm_collapse.report.labels import grouped, label
    from lm_collapse.report.plots import log_axis

    assert label("ppl_shakespeare/word_perplexity").axis == "word perplexity (per word)"
    assert label("ppl_shakespeare/bits_per_byte").axis == "bits per byte (bits/byte)"
    assert label("gen_x/entropy_1").unit == "bits" and label("probe/next_token_entropy_mean").unit == "nats"
    assert label("gen_x/within_distinct_2").name.startswith("distinct-2 within") and label("some/new_metric").group == "other"
    assert log_axis(label("p/word_perplexity"), [7e4, 1.2e6]) and not log_axis(label("p/word_perplexity"), [100, 121])
    assert not log_axis(label("g/distinct_2"), [0.5, 0.9]) and log_axis(label("g/new"), [1.0, 500.0])
    groups = grouped(["ppl_x/bits_per_byte", "gen_x/distinct_2", "probe/top1_mass_mean", "toedit/changed_share"])
    assert list(groups) == ["quality", "diversity", "probes", "other"]


def test_shorter_generations_with_rising_distinct2_are_flagged(tmp_path):
    run = make_run(tmp_path / "run", seeds=(0,))
    for g, (length, d2) in enumerate(((24.0, 0.70), (19.0, 0.70), (13.0, 0.76))):
        set_results(run, "replace", g, mean_length=length, distinct_2=d2)
    set_results(run, "accumulate", 0, mean_length=24.0)
    set_results(run, "accumulate", 2, mean_length=22.0)  # a small change in length: not flagged
    [note] = build_report([run], tmp_path / "out", plots_on=False).notes
    assert note.startswith("**Generations getting shorter while distinct-2 rises** (`replace`: mean length 24 → 13 words, "
                           "distinct-2 0.7 → 0.76)")


def test_shi_diagnostics_and_toedit_shares_are_reported(tmp_path):
    run = make_run(tmp_path / "run", seeds=(0,))
    for g in range(3):
        gen = run / "replace/seed_0" / f"gen_{g:02d}"
        probes = json.loads((gen / "probes.json").read_text())
        probes.update({"train_knn_entropy": -10.0 - g, "nn_distance_to_train": 0.5 - 0.1 * g, "embedding_sample": 100})
        (gen / "probes.json").write_text(json.dumps(probes))
        (gen / "edits.json").write_text(json.dumps({"prior": "gen0", "resampled_share": 0.1, "changed_share": 0.01 * g,
                                                    "dropped_share": 0.0, "tokens": 100}))
    col = collect([run])
    cells = aggregate(col)
    assert cells[("replace", "probe/train_knn_entropy", 2)].mean == -12.0
    assert cells[("replace", "probe/nn_distance_to_train", 1)].mean == pytest.approx(0.4)
    assert cells[("replace", "toedit/changed_share", 2)].mean == 0.02
    assert cells[("replace", "toedit/resampled_share", 0)].sources[0].endswith("edits.json")
    assert ("accumulate", "toedit/changed_share", 0) not in cells and not col.problems
    rep = build_report([run], tmp_path / "out")
    assert "probes.png" in {f.name for f in rep.files}  # Shi's diagnostics are probes
    assert "probe/train_knn_entropy" in (tmp_path / "out/tables.md").read_text()


def test_samples_read_a_prompt_stored_inside_the_document(tmp_path):
    from lm_collapse.report.collect import Replica
    from lm_collapse.report.samples import sample_rows
    from recursion.artifacts import synthetic_record, write_jsonl

    for g, word in enumerate(["old", "new"]):
        write_jsonl(tmp_path / f"gen_0{g}/synthetic.jsonl",
                    [synthetic_record(f" {word} {i}", f"Title {i}: ", prompt_in_text=True) for i in range(3)])
    rows = sample_rows(Replica(tmp_path, "a", 0, generations=[0, 1]), num=1)
    assert rows == [("Title 0: ", 0, " old 0"), ("Title 0: ", 1, " new 0")]
