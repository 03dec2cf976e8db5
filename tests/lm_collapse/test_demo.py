"""`lm-collapse demo --quick` end to end, as a newcomer runs it (the README's first command, smaller)."""
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "lm_collapse.cli", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("lab1_bigram", "tiny_gpt2_regimes"):
        report = out / name / "report" / "report.md"
        assert report.exists() and str(report) in proc.stdout
        text = report.read_text()
        assert "ppl_shakespeare/word_perplexity" in text and "## Figures" in text
        assert (out / name / "report" / "metrics.png").stat().st_size > 10_000
    assert "Demo finished" in proc.stdout and "gen 0 →" in proc.stdout
    assert "pure_synthetic" in proc.stdout and "accumulate_subsample" in proc.stdout
