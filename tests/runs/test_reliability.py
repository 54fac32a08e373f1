"""Reliability of the run pipeline: live readers, resume that never mixes runs, early kills, damaged files."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from runs import cli, config, pipeline
from runs.store import RunDirectory, RunFileError, RunLockedError, open_results, read_results, to_xarray

BASE = """
[run]
kind = "ising"
seed = 3
chunk_steps = 40

[ising]
shape = [8, 8]
temperatures = [2.0, 2.6]
replicas = 4
equilibration = 40
measurement = 160
record_every = 10
"""


def _datasets(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in f if isinstance(f[k], h5py.Dataset)}


def _assert_same(a_path, b_path):
    a, b = _datasets(a_path), _datasets(b_path)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name], equal_nan=True), name


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The uninterrupted reference run of BASE."""
    out = tmp_path_factory.mktemp("full")
    return pipeline.execute(config.loads(BASE), out / "run", progress=False)


# --- 1. live readers --------------------------------------------------------------------------------------------
LIVE = BASE.replace("measurement = 160", "measurement = 3000").replace("chunk_steps = 40", "chunk_steps = 20")


def test_readers_during_a_run_do_not_stop_it_and_see_consistent_records(tmp_path):
    """A run in another process is read throughout by an SWMR reader held open, by fresh readers (h5py, xarray,
    `deepglass plot`) and by a plain h5py reader held open: the run completes with exit 0, bitwise equal to an
    undisturbed run, and every read shows whole records (series as long as `time`, times = 10, 20, …)."""
    path = tmp_path / "live.toml"
    path.write_text(LIVE)
    out = tmp_path / "live"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "runs.cli", "run", str(path), "--out", str(out), "--quiet",
                             "--no-plot"], env=env, stderr=subprocess.PIPE, text=True)
    results = out / "results.h5"
    deadline = time.time() + 120
    while not results.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert results.exists(), proc.stderr.read() if proc.poll() is not None else "no results.h5 after 120 s"
    held = open_results(results)  # an SWMR reader held open for the whole run
    plain = None
    reads = []
    while proc.poll() is None:
        raw = read_results(out)
        n = raw["time"][1].shape[0]
        assert raw["energy_per_spin"][1].shape[-1] == n
        assert np.array_equal(raw["time"][1], 10 * np.arange(1, n + 1))
        assert np.all(np.isfinite(raw["energy_per_spin"][1]))
        ds = to_xarray(out)
        assert ds["energy_per_spin"].sizes["time"] == ds["time"].size
        held["time"].refresh()
        reads.append((n, held["time"].shape[0]))
        if plain is None and n > 0:
            try:  # a plain reader (default HDF5 lock) opened between two chunks and kept open
                plain = h5py.File(results, "r")
            except OSError:
                plain = None  # it landed inside a write window: plain readers may be refused, never the writer
        if len(reads) % 5 == 0:
            assert cli.main(["plot", str(out)]) == 0
        time.sleep(0.02)
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == 0, err
    held.close()
    if plain is not None:
        plain.close()
    assert len(reads) >= 3 and max(r[0] for r in reads) > 0, reads  # the reads really happened mid-run
    assert reads == sorted(reads)  # records only ever grow
    reference = pipeline.execute(config.loads(LIVE), tmp_path / "quiet", progress=False)
    _assert_same(reference, results)


def test_every_array_dataset_has_a_checksum_and_garbled_bytes_fail_loudly(tmp_path, full_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(full_run.parent, run)
    results = run / "results.h5"
    with h5py.File(results, "r") as f:
        unchecked = [k for k, d in f.items() if isinstance(d, h5py.Dataset) and d.ndim > 0
                     and d.dtype.kind in "fiub" and not d.fletcher32]
        assert not unchecked
        chunk = f["energy_per_spin"].id.get_chunk_info(0)
    with open(results, "r+b") as fh:  # flip bytes inside the first chunk of a time series
        fh.seek(chunk.byte_offset + 16)
        fh.write(b"\xff\x00\xff\x00\xff\x00\xff\x00")
    with pytest.raises(RunFileError, match="results.h5"):
        read_results(run)
    assert cli.main(["plot", str(run)]) == 2
    assert "results.h5" in capsys.readouterr().err


# --- 2. resume refuses what would mix two runs ------------------------------------------------------------------
def test_resume_refuses_an_edited_config_naming_the_keys(tmp_path, capsys):
    out = tmp_path / "run"
    pipeline.execute(config.loads(BASE), out, progress=False, max_chunks=2)
    edited = BASE.replace("seed = 3", "seed = 4").replace("temperatures = [2.0, 2.6]", "temperatures = [2.0, 2.7]")
    (out / "config.toml").write_text(edited)
    assert cli.main(["resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "run.seed (3 vs 4)" in err and "ising.temperatures" in err
    # comments and layout are not differences
    (out / "config.toml").write_text("# a comment\n" + BASE.replace("replicas = 4", "replicas   =   4"))
    pipeline.resume(out, progress=False)
    assert RunDirectory(out).status() == "complete"


def test_resume_refuses_a_results_file_older_than_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    pipeline.execute(config.loads(BASE), out, progress=False, max_chunks=1)
    shutil.copy(out / "results.h5", tmp_path / "old.h5")  # 4 records
    pipeline.resume(out, progress=False, max_chunks=2)  # checkpoint at step 120: 12 records
    shutil.copy(tmp_path / "old.h5", out / "results.h5")
    assert cli.main(["resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds 4 records" in err and "step 120 needs 12" in err


def test_results_are_fsynced_before_the_checkpoint(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    pipeline.execute(config.loads(BASE), tmp_path / "run", progress=False, max_chunks=1)
    names = [Path(c).name for c in calls]
    assert "results.h5" in names and "checkpoint.npz.tmp" in names
    assert names.index("results.h5", 1) < names.index("checkpoint.npz.tmp")  # after the chunk's append


def test_a_writer_killed_inside_a_write_is_resumed_bitwise(tmp_path, full_run):
    """SIGKILL while the HDF5 file is open for writing leaves it flagged "open for write"; resume recovers it."""
    out = tmp_path / "run"
    pipeline.execute(config.loads(BASE), out, progress=False, max_chunks=2)
    code = ("import os, h5py\n"
            f"f = h5py.File({str(out / 'results.h5')!r}, 'a', libver='latest', locking=False)\n"
            "f.swmr_mode = True\nf['time'].resize((9,))\nf.flush()\nos._exit(9)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(out / "results.h5", "a").close()
    pipeline.resume(out, progress=False)
    _assert_same(full_run, out / "results.h5")


# --- 3. early kills ---------------------------------------------------------------------------------------------
def test_run_killed_before_its_first_records_resumes_from_step_zero(tmp_path, full_run, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text(BASE)  # what a kill during job.init leaves
    assert cli.main(["resume", str(out), "--quiet"]) == 0
    assert "starting from step 0" in capsys.readouterr().err
    _assert_same(full_run, out / "results.h5")


def test_deleted_results_with_a_checkpoint_restart_from_step_zero(tmp_path, full_run, capsys):
    out = tmp_path / "run"
    pipeline.execute(config.loads(BASE), out, progress=False, max_chunks=2)
    (out / "results.h5").unlink()
    assert cli.main(["resume", str(out), "--quiet"]) == 0
    assert "starts again from step 0" in capsys.readouterr().err
    _assert_same(full_run, out / "results.h5")


# --- 4. clear errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbled"])
def test_damaged_checkpoint_is_exit_2_naming_the_file(tmp_path, damage, capsys):
    out = tmp_path / "run"
    pipeline.execute(config.loads(BASE), out, progress=False, max_chunks=2)
    ck = out / "checkpoint.npz"
    data = ck.read_bytes()
    ck.write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                    "garbled": data[:40] + bytes(255 - b for b in data[40:])}[damage])
    assert cli.main(["resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.npz" in err and "delete it" in err


@pytest.mark.parametrize("damage", ["empty", "garbage"])
def test_damaged_results_file_is_exit_2_naming_the_file(tmp_path, damage, capsys):
    out = tmp_path / "run"
    pipeline.execute(config.loads(BASE), out, progress=False, max_chunks=2)
    (out / "results.h5").write_bytes(b"" if damage == "empty" else os.urandom(4096))
    assert cli.main(["resume", str(out), "--quiet"]) == 2
    assert "results.h5" in capsys.readouterr().err
    assert cli.main(["plot", str(out)]) == 2


def test_config_that_is_a_directory_or_not_utf8(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path), "--quiet"]) == 2
    assert "is a directory" in capsys.readouterr().err
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(BASE.replace("[run]", "# température\n[run]").encode("latin-1"))
    assert cli.main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "latin1.toml" in err and "not UTF-8" in err


def test_missing_job_table_is_reported(tmp_path, capsys):
    path = tmp_path / "defaults.toml"
    path.write_text("[run]\nkind = 'ising'\n")
    assert config.load(path).notes
    assert cli.main(["check", str(path)]) == 0
    assert "has no [ising] table" in capsys.readouterr().out


@pytest.mark.parametrize("kind,table", [
    ("ising", "temperatures = [2.0, 2.5, 2.0]"),
    ("pspin", "temperatures = [1.0, 1.0]"),
    ("rem", "temperatures = [0.5, 0.5]"),
    ("funnel", "fold_temperatures = [0.3, 0.3]"),
    ("train", "learning_rates = [0.001, 0.001]"),
])
def test_duplicate_temperatures_and_grid_values_are_refused(kind, table):
    with pytest.raises(config.ConfigError, match="must not repeat|distinct|strictly increasing"):
        config.loads(f"[run]\nkind = '{kind}'\n[{kind}]\n{table}\n")


def test_impossible_hashed_pspin_names_its_key():
    # hashed couplings reach n = 2^30 (physics.spherical.MAX_N: the extended coupling counter) for any p
    with pytest.raises(config.ConfigError, match=r"pspin\.n = 2000000000"):
        config.loads("[run]\nkind = 'pspin'\n[pspin]\nn = 2000000000\ncouplings = 'hashed'\n")
    config.loads("[run]\nkind = 'pspin'\n[pspin]\nn = 46000\np = 5\ncouplings = 'hashed'\n")  # refused before


def test_lock_message_names_the_process_and_host(tmp_path):
    with RunDirectory(tmp_path / "run"):
        code = ("from runs.store import RunDirectory, RunLockedError\n"
                f"try:\n    RunDirectory({str(tmp_path / 'run')!r}).__enter__()\n"
                "except RunLockedError as e:\n    print(e)\n")
        msg = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        assert f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on host"):
            pipeline.execute(config.loads(BASE), tmp_path / "run", progress=False)


# --- 5. check and configs ---------------------------------------------------------------------------------------
def test_every_shipped_config_validates_with_check(capsys):
    shipped = sorted((Path(cli.__file__).parent / "configs").glob("*.toml"))
    assert len(shipped) >= 10
    for path in shipped:
        assert cli.main(["check", str(path)]) == 0, path
        out = capsys.readouterr().out
        assert "valid" in out and "steps:" in out and "memory:" in out
    assert cli.main(["configs"]) == 0
    listing = capsys.readouterr().out
    for path in shipped:
        assert path.name in listing


def test_check_and_dry_run_write_nothing(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(BASE)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "temperature 2 × replica 4" in out and "200 in 5 chunk(s) of 40" in out
    assert not (tmp_path / "out").exists()


def test_snapshots_not_declared_at_creation_get_their_slots_when_written(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with run:
        run.create_results({}, {}, {}, {}, {"step_a": {"w": ((2, 3), np.float32)}})
        run.append({}, np.zeros(0, np.int64), 0, {"step_a": {"w": np.ones((2, 3), np.float32)},
                                                   "step_b": {"w": np.full(4, 2.0, np.float32)}})
    with open_results(run.results) as f:
        for label, value in (("step_a", 1.0), ("step_b", 2.0)):
            assert f[f"snapshots/{label}"].attrs["written"] == 1
            assert np.all(f[f"snapshots/{label}/w"][...] == value) and f[f"snapshots/{label}/w"].fletcher32
