"""``runs/gpu_check.sh``: the script a lent GPU runs once, so it must work the first time it meets one.

On this CPU-only machine the script's own CPU path (quick sizes, one validity file) is run end to end (slow: about
2 minutes); the accelerator-only pieces that can run on a CPU are exercised directly at small sizes.
"""
import os
import subprocess
from pathlib import Path

import pytest

from runs.benchmarks import pspin

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "runs" / "gpu_check.sh"


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_largest_pspin_sizes_are_timed_once_after_an_ahead_of_time_compile(monkeypatch):
    """On a GPU the n = 16384 and 32768 rows time one evaluation each (minutes at most); the same code at n = 64."""
    calls = []
    monkeypatch.setattr(pspin, "_ONE_CALL_FROM", 64)
    monkeypatch.setattr(pspin, "timeit", lambda *a, **k: calls.append("timeit") or 1.0)
    rows = pspin._hashed_rows(64, 2, 0.1, "; a note")
    assert calls == ["timeit"]  # only the dense comparison row (n ≤ 512) used timeit; the hashed one was one call
    assert rows[0].value > 0 and rows[0].note.endswith("; a note")


@pytest.mark.slow
def test_cpu_path_runs_every_stage_and_prints_every_table(tmp_path):
    env = {**os.environ, "GPU_CHECK_QUICK": "1", "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "check"
    done = subprocess.run(["bash", str(SCRIPT), str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = [line for line in done.stdout.splitlines() if line.startswith("== GPU check")]
    assert len(summary) == 1 and "validity exit 0" in summary[0]
    for name in ("ising", "spinglass", "lattice", "rem", "train", "pspin"):
        assert f"{name} 0" in summary[0]
        assert (out / name / "bench.json").exists()
        assert f"## bench {name}" in done.stdout
    assert "passed" in (out / "validity.txt").read_text()
