"""The ``deepglass`` command line end to end: ``bench NAME --quick``, ``resume``, ``run --force``, ``plot``.

Benchmarks are smoke runs: their figures are checked for shape and consistency (a finite value, a same-run baseline,
ratio = value / baseline, the device named), never for speed.
"""
import math
import re

import h5py
import jax
import numpy as np
import pytest

from runs import config, pipeline
from runs.bench import available
from runs.cli import main

TINY = """
[run]
kind = "ising"
seed = {seed}
chunk_steps = 40

[ising]
shape = [8, 8]
temperatures = [2.0, 2.5]
replicas = 4
kernel = "metropolis"
equilibration = 40
measurement = 160
record_every = 10
"""


def _config(tmp_path, name="tiny", seed=3):
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(seed=seed))
    return path


def _contents(run_dir):
    """Every dataset of ``results.h5`` and the root attributes."""
    with h5py.File(run_dir / "results.h5", "r") as f:
        return {k: f[k][...] for k in f if isinstance(f[k], h5py.Dataset)}, dict(f.attrs)


def _assert_same_datasets(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name], equal_nan=True), name


# ---------------------------------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)"


def _bench_rows(text, name):
    """Parse the Markdown ``bench`` prints: the device named in the heading and the rows of the table."""
    lines = text.strip().splitlines()
    heading = re.fullmatch(rf"## bench {name} — device: (.+)", lines[0])
    assert heading, lines[0]
    assert lines[2].startswith("| figure | value | unit | baseline (same run) | baseline value | ratio | note |")
    rows = []
    for line in lines[4:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # the note may itself hold a "|" (e.g. "max |ΔE|"): the first six cells are fixed
        figure, value, unit, baseline, baseline_value, ratio = cells[:6]
        rows.append((figure, value, unit, baseline, baseline_value, ratio))
    return heading.group(1), rows


def _check_bench(name, capsys):
    assert main(["bench", name, "--quick"]) == 0
    device, rows = _bench_rows(capsys.readouterr().out, name)
    platform = jax.devices()[0].platform
    assert device.startswith(f"{platform}:") and device.endswith(f"×{jax.device_count()}"), device
    assert rows, f"bench {name} printed no figure"
    with_baseline = 0
    for figure, value, unit, baseline, baseline_value, ratio in rows:
        assert figure and unit, (figure, unit)
        assert re.fullmatch(_NUMBER, value) and math.isfinite(float(value)) and float(value) > 0, (figure, value)
        if baseline:
            with_baseline += 1
            b = float(baseline_value)
            assert math.isfinite(b) and b > 0, (figure, baseline_value)
            r = float(ratio.rstrip("×"))
            # value and baseline are printed to 4 significant figures, the ratio to 2 decimals
            assert r == pytest.approx(float(value) / b, rel=2e-3, abs=0.006), (figure, value, baseline_value, ratio)
        else:
            assert baseline_value == "" and ratio == "", figure
    assert with_baseline >= 1, f"bench {name}: no figure has a same-run baseline"


# Quick runs of a few seconds each on 2 CPU cores. Even when quick, spectra (powerlaw.Fit baselines, 16 networks
# analysed one by one) and train (16 networks trained vmapped and one by one, four times over) took about two
# minutes each on a loaded 2-core machine, so they run only in `make test-all`.
_QUICK = ["ising", "rem", "pspin", "spinglass", "lattice"]
_SLOW = ["spectra", "train"]


def test_every_benchmark_is_covered_here():
    assert set(available()) == set(_QUICK) | set(_SLOW)


@pytest.mark.parametrize("name", _QUICK)
def test_bench_quick_prints_consistent_figures(name, capsys):
    _check_bench(name, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("name", _SLOW)
def test_bench_quick_prints_consistent_figures_slow(name, capsys):
    _check_bench(name, capsys)


# ---------------------------------------------------------------------------------------------------------------
# run, resume, --force, plot
# ---------------------------------------------------------------------------------------------------------------


def test_resume_completes_an_interrupted_run_as_if_uninterrupted(tmp_path, capsys):
    path = _config(tmp_path)
    assert main(["run", str(path), "--out", str(tmp_path / "full"), "--quiet", "--no-plot"]) == 0
    # a run stopped after 2 of its 5 chunks, as a kill between checkpoints leaves it
    pipeline.execute(config.load(path), tmp_path / "part", progress=False, max_chunks=2)
    assert _contents(tmp_path / "part")[1]["status"] == "running"
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "part"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "results:" in out and "figure:" in out
    full, full_attrs = _contents(tmp_path / "full")
    part, part_attrs = _contents(tmp_path / "part")
    assert part_attrs["status"] == "complete" and full_attrs["status"] == "complete"
    assert part["time"][-1] == 200 and part["energy_per_spin"].shape[-1] == 20
    _assert_same_datasets(full, part)
    assert (tmp_path / "part" / "figures" / "observables_vs_temperature.png").stat().st_size > 1000


def test_run_refuses_an_existing_run_unless_forced(tmp_path, capsys):
    out = tmp_path / "run"
    first, second = _config(tmp_path, "first", seed=3), _config(tmp_path, "second", seed=4)
    assert main(["run", str(first), "--out", str(out), "--quiet", "--no-plot"]) == 0
    before, _ = _contents(out)
    capsys.readouterr()

    assert main(["run", str(second), "--out", str(out), "--quiet", "--no-plot"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    untouched, attrs = _contents(out)
    assert attrs["seed"] == 3
    _assert_same_datasets(before, untouched)

    stale = out / "figures" / "stale.png"
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"not a figure")
    assert main(["run", str(second), "--out", str(out), "--quiet", "--no-plot", "--force"]) == 0
    replaced, attrs = _contents(out)
    assert attrs["seed"] == 4 and attrs["status"] == "complete"
    assert not stale.exists()
    # the replacement holds exactly what the second config gives in a directory of its own
    assert main(["run", str(second), "--out", str(tmp_path / "fresh"), "--quiet", "--no-plot"]) == 0
    _assert_same_datasets(_contents(tmp_path / "fresh")[0], replaced)
    assert not np.array_equal(before["energy_per_spin"], replaced["energy_per_spin"])

    # `plot` draws the figures of an existing run (this one was run with --no-plot)
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0
    assert "observables_vs_temperature.png" in capsys.readouterr().out
    assert (out / "figures" / "observables_vs_temperature.png").stat().st_size > 1000
    assert main(["plot", str(tmp_path / "no-run")]) == 2


def test_bench_out_writes_json_and_markdown(tmp_path, capsys):
    """``bench --out DIR``: the printed figures, also as JSON records (value, baseline, ratio, device) and Markdown."""
    import json

    assert main(["bench", "rem", "--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    records = json.loads((tmp_path / "bench.json").read_text())
    assert records and all(r["benchmark"] == "rem" and r["device"] and np.isfinite(r["value"]) for r in records)
    for r in records:
        if r["baseline_value"] is not None:
            assert r["ratio"] == pytest.approx(r["value"] / r["baseline_value"])
    assert printed.strip() in (tmp_path / "bench.md").read_text()
