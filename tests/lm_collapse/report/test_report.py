"""Reports on small synthetic run folders with known numbers."""
import json
import math

import pytest
import yaml

from lm_collapse.cli import main
from lm_collapse.report import build_report
from lm_collapse.report.collect import collect, metric_name
from lm_collapse.report.stats import t_interval
from lm_collapse.report.tables import aggregate, latex_escape

ARMS = {"replace": 1.0, "accumulate": 0.5}  # word perplexity grows by this much per generation
SAMPLING = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_gen_toks": 64, "until": ["\n\n"]}
CONFIGS = {"collapse_gen_shakespeare": {"output_type": "generate_until", "generation_kwargs": SAMPLING},
           "collapse_ppl_shakespeare": {"output_type": "loglikelihood_rolling"}}  # as lm-eval saves them


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
                (gen / "lm_eval.json").write_text(json.dumps({"results": results, "configs": CONFIGS}))
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
    assert t_interval([1.0]).half is None and c.by_seed == {0: 120.0, 1: 121.0, 2: 122.0}
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
    assert csv[0] == ("arm,metric,generation,n,mean,ci95,ci_low,ci_high,change_pct,change_pct_low,change_pct_high,"
                      "seed_0,seed_1,seed_2,sources") and len(csv) == 1 + 2 * 3 * 5


def test_latex_is_compile_shaped(tmp_path):
    build_report([make_run(tmp_path / "run")], tmp_path / "out", formats=("latex",))
    tex = (tmp_path / "out/tables.tex").read_text()
    # four tables: side by side, differences, one per arm
    assert tex.count("{") == tex.count("}") and tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 4
    assert r"\toprule" in tex and r"word\_perplexity" in tex and r"\%" in tex and "$\\pm$" in tex
    body = tex.replace(r"\_", "").replace(r"\%", "")
    assert "_" not in body and "%" not in body
    assert latex_escape("a_b 5% & {x}") == r"a\_b 5\% \& \{x\}" and latex_escape("a − b ± 1") == r"a $-$ b $\pm$ 1"
    assert "±" not in tex and "−" not in tex


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
    assert notes[1].startswith("**distinct-1 rising while distinct-2 falls** (`replace` gen_shakespeare: "
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
    assert note.startswith("**Generations getting shorter while distinct-2 rises** (`replace` gen_shakespeare: "
                           "mean length 24 → 13 words, distinct-2 0.7 → 0.76)")


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


# -- seeds and intervals ---------------------------------------------------------------------------
T_975_2 = 4.302653  # Student's t, 0.975 quantile, 2 degrees of freedom (any t table)


def test_t_interval_and_paired_difference_by_hand():
    from lm_collapse.report.stats import change, paired_difference

    # 2, 4, 9: mean 5, s = sqrt((9 + 1 + 16) / 2) = sqrt(13) = 3.605551, half = 4.302653 * 3.605551 / sqrt(3) = 8.956686
    iv = t_interval([2.0, 4.0, 9.0])
    assert (iv.mean, iv.n) == (5.0, 3)
    assert iv.half == pytest.approx(T_975_2 * math.sqrt(13) / math.sqrt(3), rel=1e-6) == pytest.approx(8.956686, abs=1e-6)
    assert (iv.lo, iv.hi) == (pytest.approx(-3.956686, abs=1e-6), pytest.approx(13.956686, abs=1e-6)) and iv.spans_zero
    # paired by seed: d = 0.50-0.55, 0.60-0.66, 0.70-0.74 = -0.05, -0.06, -0.04: mean -0.05, s = 0.01,
    # half = 4.302653 * 0.01 / sqrt(3) = 0.024841; the arms' own intervals (s = 0.1, 0.095) overlap widely
    a, b = {0: 0.50, 1: 0.60, 2: 0.70}, {2: 0.74, 0: 0.55, 1: 0.66, 3: 0.9}  # seed 3 has no partner: left out
    d = paired_difference(a, b)
    assert d.n == 3 and d.mean == pytest.approx(-0.05) and d.half == pytest.approx(0.024841, abs=1e-6)
    assert (d.lo, d.hi) == (pytest.approx(-0.074841, abs=1e-6), pytest.approx(-0.025159, abs=1e-6)) and not d.spans_zero
    assert t_interval(list(a.values())).lo < t_interval([0.55, 0.66, 0.74]).hi  # unpaired: no separation
    # change vs generation 0, per seed: 0.9 -> 0.5, 0.6, 0.7 = -44.44%, -33.33%, -22.22%: s = 11.1111, half = 27.601530
    rel = change({0: 0.9, 1: 0.9, 2: 0.9}, a, relative=True)
    assert rel.mean == pytest.approx(-100 / 3) and rel.half == pytest.approx(27.601530, abs=1e-5)
    assert change({0: 0.0}, {0: 1.0}, relative=True) is None and paired_difference({0: 1.0}, {1: 1.0}) is None


def set_seed_values(run, arm, g, metric, values):
    """Set ``metric`` (``task/key``) of generation ``g`` of ``arm``, one value per seed."""
    task, key = metric.split("/")
    for seed, v in values.items():
        path = run / arm / f"seed_{seed}" / f"gen_{g:02d}/lm_eval.json"
        doc = json.loads(path.read_text())
        doc["results"][f"collapse_{task}"][f"{key},none"] = v
        path.write_text(json.dumps(doc))


def test_report_prints_intervals_paired_differences_and_spanning_zero(tmp_path):
    run = make_run(tmp_path / "run")
    d2, ppl = "gen_shakespeare/distinct_2", "ppl_shakespeare/word_perplexity"
    set_seed_values(run, "replace", 2, d2, {0: 0.50, 1: 0.60, 2: 0.70})
    set_seed_values(run, "accumulate", 2, d2, {0: 0.55, 1: 0.66, 2: 0.74})
    set_seed_values(run, "replace", 2, ppl, {0: 120.0, 1: 125.0, 2: 118.0})  # replace - accumulate: -1, +6, -4
    set_seed_values(run, "accumulate", 2, ppl, {0: 121.0, 1: 119.0, 2: 122.0})
    set_seed_values(run, "replace", 2, "ppl_shakespeare/bits_per_byte", {0: 1.49, 1: 1.52, 2: 1.50})
    rep = build_report([run], tmp_path / "out", plots_on=False)
    md = rep.path.read_text()
    diffs = md.split("### Differences between arms, paired by seed")[1].split("\n## ")[0]
    assert "| metric (3 seeds, 95% t-CI) | replace − accumulate (gen 2) |" in diffs
    # -0.05 [-0.05 - 0.024841, -0.05 + 0.024841]
    assert f"| {d2} | -0.05 [-0.07484, -0.02516] |" in diffs
    # d = -1, 6, -4: mean 0.333, s = 5.131601, half = 12.747605: spans 0, printed without a sign
    assert f"| {ppl} | no detectable difference (CI spans 0: -12.41 to +13.08) |" in diffs
    assert "+0.3333" not in md
    # replace's change 0.9 -> 0.5, 0.6, 0.7 per seed, and no arrow for a change from gen 1 whose CI spans 0
    replace = md.split("## replace")[1]
    assert "-33.3% [-60.9%, -5.7%]" in replace
    # gen 1 -> 2: 0.8 -> 0.5, 0.6, 0.7: -0.3, -0.2, -0.1 per seed, mean -0.2 ± 0.2484: spans 0, no arrow
    assert "| 0.6 ± 0.2484 |" in replace
    row = next(line for line in replace.splitlines() if line.startswith(f"| {ppl} |"))
    assert row.split(" | ")[3] == "121.0 ± 8.957 ↑"  # s = sqrt(13); gen 1 -> 2: 111, 112, 113 -> 120, 125, 118: +9, +13, +5
    row = next(line for line in replace.splitlines() if line.startswith("| ppl_shakespeare/bits_per_byte |"))
    # gen 1 -> 2: 1.5 -> 1.49, 1.52, 1.50: -0.01, +0.02, 0: CI spans 0, so no arrow, and no direction versus gen 0:
    # -0.667%, +1.333%, 0%: mean 0.2222, s = 1.01835, half = 4.302653 * 1.01835 / sqrt(3) = 2.5297
    assert row.split(" | ")[3:] == ["1.503 ± 0.03795", "no detectable change (CI spans 0: -2.3% to +2.8%) |"]
    csv = (tmp_path / "out/differences.csv").read_text().splitlines()
    assert csv[0] == "arm,reference,metric,generation,n,mean,ci_low,ci_high,spans_zero"
    line = next(r for r in csv if f",{ppl}," in r).split(",")
    assert line[:5] == ["replace", "accumulate", ppl, "2", "3"] and line[-1] == "True"
    assert float(line[6]) == pytest.approx(1 / 3 - T_975_2 * 5.131601 / math.sqrt(3), abs=1e-4)
    results = (tmp_path / "out/results.csv").read_text().splitlines()
    row = next(r for r in results if r.startswith(f"replace,{d2},2,")).split(",")
    assert row[3] == "3" and [float(v) for v in row[11:14]] == [0.5, 0.6, 0.7]  # seed_0, seed_1, seed_2
    assert float(row[6]) == pytest.approx(0.6 - T_975_2 * 0.1 / math.sqrt(3), abs=1e-5)  # ci_low
    assert float(row[8]) == pytest.approx(-100 / 3)  # change_pct


def test_arm_order_sets_the_reference_of_the_differences(tmp_path):
    run = make_run(tmp_path / "run")
    assert build_report([run], tmp_path / "a", plots_on=False).arms == ["accumulate", "replace"]  # by folder name
    rep = build_report([run], tmp_path / "b", plots_on=False, arm_order=["replace", "nope"])
    assert rep.arms == ["replace", "accumulate"] and "| accumulate − replace (gen 2) |" in rep.path.read_text()
    assert "| ppl_shakespeare/word_perplexity | -10 [-10, -10] |" in rep.path.read_text()


def test_single_seed_tables_say_so_in_their_header(tmp_path):
    from lm_collapse.report.tables import last_generations, to_markdown, trajectory

    rep = build_report([make_run(tmp_path / "run", seeds=(0,))], tmp_path / "out", plots_on=False)
    md = rep.path.read_text()
    assert md.count("| metric (single seed: no interval) |") == 4  # side by side, differences, 2 arms
    assert not [line for line in md.splitlines() if line.startswith("| ") and ("±" in line or "[" in line)]
    table = to_markdown(trajectory(rep.cells, rep.arms, ["ppl_shakespeare/word_perplexity"],
                                   last_generations(rep.cells, rep.arms)))
    assert table.startswith("| metric (single seed: no interval) |") and "100.0 → 120.0 (+20.0%)" in table


def test_demo_key_table_prints_each_number_with_its_interval(tmp_path):
    from lm_collapse.report.tables import last_generations, to_markdown, trajectory

    rep = build_report([make_run(tmp_path / "run")], tmp_path / "out", plots_on=False)
    table = to_markdown(trajectory(rep.cells, rep.arms, ["ppl_shakespeare/word_perplexity"],
                                   last_generations(rep.cells, rep.arms)))
    # replace: 100, 101, 102 -> 120, 121, 122: +20%, +19.80%, +19.61% per seed
    assert "| metric (3 seeds, 95% t-CI) |" in table and "101.0 ± 2.484 → 121.0 ± 2.484 (+19.8% [+19.3%, +20.3%])" in table


def test_header_states_each_tasks_decoding_and_the_environment(tmp_path):
    from recursion.environment import write_environment

    run = make_run(tmp_path / "run")
    for rep in sorted(run.glob("*/seed_*")):
        write_environment(rep, threads=1)
    md = build_report([run], tmp_path / "out", plots_on=False).path.read_text()
    assert ("- `gen_shakespeare`: do_sample=True, max_gen_toks=64, temperature=1.0, top_k=0, top_p=1.0, "
            "until=['\\n\\n']") in md
    assert "- `ppl_shakespeare`: scored by log-likelihood (loglikelihood_rolling), no decoding" in md
    env = md.split("**Environment**")[1].split("Replicas read")[0]
    assert env.count("\n- ") == 1 and "torch threads 1" in env and "torch " in env and "numpy " in env
    assert "different environments" not in env
    # one replica ran elsewhere, one task decoded differently there: the header says both
    write_environment(run / "replace/seed_2", threads=2)
    path = run / "replace/seed_2/gen_00/lm_eval.json"
    doc = json.loads(path.read_text())
    doc["configs"]["collapse_gen_shakespeare"]["generation_kwargs"] = {**SAMPLING, "top_k": 50}
    path.write_text(json.dumps(doc))
    md = build_report([run], tmp_path / "out2", plots_on=False).path.read_text()
    assert "**The replicas ran in different environments:**" in md and "torch threads 2" in md
    assert "resumed from 1 earlier environment(s)" in md
    assert "`gen_shakespeare` **differs between replicas**" in md
    assert "top_k=50, top_p=1.0, until=['\\n\\n'] (replace seed 2)" in md


def test_environment_record_keeps_an_earlier_different_one(tmp_path):
    from recursion.environment import write_environment

    first = write_environment(tmp_path, threads=1)
    assert write_environment(tmp_path, threads=1) == first and "previous" not in first  # same environment: unchanged
    again = write_environment(tmp_path, threads=2)
    assert again["torch_threads"] == 2 and again["previous"] == [first]
    assert json.loads((tmp_path / "environment.json").read_text()) == again
    assert {"torch", "transformers", "lm_eval", "numpy"} <= set(first["versions"]) and first["cpu"]


def test_a_replica_given_twice_is_one_observation(tmp_path):
    import shutil

    run = make_run(tmp_path / "run")
    shutil.copytree(run / "replace/seed_0", tmp_path / "copy/seed_0")  # the same arm and seed in another folder
    col = collect([run, tmp_path / "copy"])
    assert len(col.replicas) == 6 and any("replace seed 0 was already read" in p for p in col.problems)
    assert aggregate(col)[("replace", "ppl_shakespeare/word_perplexity", 0)].n == 3


def test_reading_notes_claim_no_direction_whose_interval_spans_zero(tmp_path):
    run = make_run(tmp_path / "run")
    ppl = "ppl_shakespeare/word_perplexity"
    # accumulate: 100, 101, 102 -> 50, 150, 60: the mean falls 15%, but per seed -50, +49, -42: the CI spans 0
    set_seed_values(run, "accumulate", 2, ppl, {0: 50.0, 1: 150.0, 2: 60.0})
    assert build_report([run], tmp_path / "out", plots_on=False).notes == []
    set_seed_values(run, "accumulate", 2, ppl, {0: 50.0, 1: 52.0, 2: 51.0})  # falls in every seed
    [note] = build_report([run], tmp_path / "out2", plots_on=False).notes
    assert note.startswith("**Perplexity falling while diversity falls** (`accumulate`")


def test_interval_properties():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from lm_collapse.report.stats import paired_difference

    values = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=8)

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values, st.floats(-1e3, 1e3))
    def check(xs, shift):
        iv, moved = t_interval(xs), t_interval([x + shift for x in xs])
        assert iv.lo <= iv.mean <= iv.hi and iv.n == len(xs)
        assert moved.half == pytest.approx(iv.half, rel=1e-6, abs=1e-6)  # a shift moves the interval, not its width
        a, b = dict(enumerate(xs)), dict(enumerate(reversed(xs)))
        ab, ba = paired_difference(a, b), paired_difference(b, a)
        assert ab.mean == pytest.approx(-ba.mean, abs=1e-6) and ab.spans_zero == ba.spans_zero  # antisymmetric
        assert paired_difference(a, a).half == 0  # an arm against itself: exactly nothing

    check()
