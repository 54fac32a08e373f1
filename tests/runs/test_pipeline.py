"""The run pipeline: bitwise resume, config validation, the lock, the CLI's exit codes, readable HDF5."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from runs import cli, config, pipeline
from runs.store import RunDirectory, RunLockedError, read_results, to_xarray

BASE = """
[run]
kind = "ising"
seed = 5
chunk_steps = 40

[ising]
shape = [8, 8]
temperatures = [2.0, 2.6]
replicas = 4
kernel = "{kernel}"
equilibration = 40
measurement = 160
record_every = 10
"""


def _datasets(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in f if isinstance(f[k], h5py.Dataset)}, dict(f.attrs)


@pytest.mark.parametrize("kernel", ["metropolis", "wolff", "parallel_tempering"])
def test_interrupted_then_resumed_run_is_bitwise_identical(tmp_path, kernel):
    cfg = config.loads(BASE.format(kernel=kernel))
    full = pipeline.execute(cfg, tmp_path / "full", progress=False)
    part = pipeline.execute(cfg, tmp_path / "part", progress=False, max_chunks=2)
    assert RunDirectory(tmp_path / "part").status() == "running"
    with h5py.File(part, "r") as f:
        assert f["time"].shape[0] == 8  # two chunks of 40 steps, a record every 10
    pipeline.resume(tmp_path / "part", progress=False, max_chunks=1)
    pipeline.resume(tmp_path / "part", progress=False)
    a, attrs_a = _datasets(full)
    b, attrs_b = _datasets(part)
    assert attrs_b["status"] == "complete" and attrs_a["status"] == "complete"
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name], equal_nan=True), name


def test_records_written_after_the_last_checkpoint_are_dropped(tmp_path):
    cfg = config.loads(BASE.format(kernel="metropolis"))
    full = pipeline.execute(cfg, tmp_path / "full", progress=False)
    part = pipeline.execute(cfg, tmp_path / "part", progress=False, max_chunks=3)
    # Simulate a kill between the HDF5 append and the checkpoint: an extra garbage chunk without a checkpoint.
    run = RunDirectory(tmp_path / "part")
    with h5py.File(part, "r") as f:
        shapes = {k: f[k].shape for k in ("energy_per_spin", "magnetization_per_spin")}
    junk = {k: np.full(s[:-1] + (4,), 7.0) for k, s in shapes.items()}
    run.append(junk, np.arange(4), 160)
    pipeline.resume(tmp_path / "part", progress=False)
    a, _ = _datasets(full)
    b, _ = _datasets(part)
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


BAD = [
    ("temperatures = [-1.0]", "ising.temperatures[0] = -1.0: must be > 0"),
    ("shape = [1, 8]", "ising.shape[0] = 1: must be ≥ 2"),
    ("measurement = 0", "ising.measurement = 0: must be > 0"),
    ("replicas = 2.5", "ising.replicas = 2.5: must be an integer"),
    ("kernel = 'gibbs'", "ising.kernel = 'gibbs': must be one of"),
    ("colour = 'red'", "ising.colour = 'red': unknown key"),
    ("shape = [7, 8]", "needs even side lengths"),
    ("measurement = 155", "must be a multiple of record_every"),
]


@pytest.mark.parametrize("line,message", BAD)
def test_bad_config_is_refused_with_a_named_key(tmp_path, line, message, capsys):
    text = BASE.format(kernel="metropolis").replace("[ising]\n", f"[ising]\n{line}\n")
    # a key given twice is a TOML error; drop the default line of the same key
    key = line.split("=")[0].strip()
    lines = text.splitlines()
    seen = False
    kept = []
    for ln in lines:
        if ln.startswith(f"{key} ="):
            if seen:
                continue
            seen = True
        kept.append(ln)
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(kept))
    with pytest.raises(config.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.load(path)
    status = cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert status == 2
    assert message.split(":")[0] in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.h5").exists()


def test_unknown_kind_and_table(tmp_path):
    with pytest.raises(config.ConfigError, match="run.kind = 'potts'"):
        config.loads("[run]\nkind = 'potts'\n")
    with pytest.raises(config.ConfigError, match=r"\[extra\]: unknown table"):
        config.loads("[run]\nkind = 'ising'\n[extra]\na = 1\n")
    assert cli.main(["run", str(tmp_path / "missing.toml")]) == 2


def test_lock_refuses_a_second_writer(tmp_path):
    cfg = config.loads(BASE.format(kernel="metropolis"))
    with RunDirectory(tmp_path / "run"):
        with pytest.raises(RunLockedError):
            pipeline.execute(cfg, tmp_path / "run", progress=False)
        # and from another process too (flock is per open file description)
        code = ("import sys; from runs.store import RunDirectory, RunLockedError\n"
                f"try:\n    RunDirectory({str(tmp_path / 'run')!r}).__enter__()\n"
                "except RunLockedError:\n    sys.exit(3)")
        assert subprocess.run([sys.executable, "-c", code]).returncode == 3
    pipeline.execute(cfg, tmp_path / "run", progress=False)  # free again once released


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = config.loads(BASE.format(kernel="metropolis"))
    pipeline.execute(cfg, tmp_path / "run", progress=False)
    with pytest.raises(config.ConfigError, match="already holds a run"):
        pipeline.execute(cfg, tmp_path / "run", progress=False)


def test_results_layout_is_readable_without_deepglass(tmp_path):
    cfg = config.loads(BASE.format(kernel="metropolis"))
    path = pipeline.execute(cfg, tmp_path / "run", progress=False)
    with h5py.File(path, "r") as f:
        for attr in ("config", "deepglass_version", "jax_version", "devices", "seed", "status"):
            assert attr in f.attrs
        dims = [d.decode() if isinstance(d, bytes) else d for d in f["energy_per_spin"].attrs["dims"]]
        assert dims == ["disorder", "temperature", "replica", "time"]
        assert f["energy_per_spin_mean"].shape == (1, 2)
        assert f["energy_per_spin"].shape == (1, 2, 4, 20)
        assert np.array_equal(f["time"][...], np.arange(10, 201, 10))
    ds = to_xarray(path)
    assert ds["energy_per_spin"].dims == ("disorder", "temperature", "replica", "time")
    assert np.allclose(ds["temperature"].values, [2.0, 2.6])
    raw = read_results(path)
    assert raw["attrs"]["status"] == "complete"


def test_cli_run_plot_info(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(BASE.format(kernel="heat_bath"))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "results:" in out and "observables_vs_temperature.png" in out
    assert (tmp_path / "r" / "figures" / "observables_vs_temperature.png").stat().st_size > 1000
    assert cli.main(["info"]) == 0
    assert "ising" in capsys.readouterr().out
    assert cli.main(["resume", str(tmp_path / "nothing")]) == 2
    assert cli.main(["bench", "no-such-bench"]) == 2
