"""Multi-process runs on localhost under ``jax.distributed`` (CPU, 2 local devices per process): one complete
results.h5 written by process 0, bitwise equal to the single-process run; a killed process stops the other with a
non-zero exit and ``resume`` continues; a wrong process count or an unreachable coordinator is refused."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from runs import config, pipeline
from tests.runs import sharded_worker

ROOT = Path(__file__).resolve().parents[2]

TWO_PROCESSES = sharded_worker.TINY["ising"].replace(
    "[run]\n", "[run]\nprocesses = 2\nheartbeat_timeout = 5\ncoordinator_timeout = 60\n", 1)

# Long enough (many small chunks) that a process can be killed between two checkpoints.
LONG = TWO_PROCESSES.replace("chunk_steps = 20", "chunk_steps = 4").replace("measurement = 40", "measurement = 400")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(args: list[str], port: int, index: int, count: int = 2, *, stderr=subprocess.PIPE):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT), DEEPGLASS_COORDINATOR=f"localhost:{port}", DEEPGLASS_NUM_PROCESSES=str(count),
               DEEPGLASS_PROCESS_ID=str(index))
    code = "import sys; from runs.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=stderr, text=True)


def _run_both(args: list[str], timeout: float = 300) -> list[tuple[int, str]]:
    port = _free_port()
    procs = [_launch(args, port, i) for i in range(2)]
    errs = [p.communicate(timeout=timeout)[1] for p in procs]
    return [(p.returncode, e) for p, e in zip(procs, errs, strict=True)]


def _reference(text: str, tmp_path: Path) -> dict:
    return sharded_worker.datasets(pipeline.execute(config.loads(text), tmp_path / "reference", progress=False))


def test_two_processes_write_one_results_file_equal_to_one_process(tmp_path):
    cfg_path = tmp_path / "two.toml"
    cfg_path.write_text(TWO_PROCESSES)
    out = tmp_path / "run"
    results = _run_both(["run", str(cfg_path), "--out", str(out), "--quiet", "--no-plot"])
    assert [rc for rc, _ in results] == [0, 0], results
    assert "process 1 of 2: 2 local of 4 devices" in results[1][1]
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoint.npz", "config.toml", "results.h5"]
    two = sharded_worker.datasets(out / "results.h5")
    one = _reference(TWO_PROCESSES.replace("processes = 2\n", ""), tmp_path)
    assert sharded_worker.differences(one, two) == {}
    import h5py

    with h5py.File(out / "results.h5", "r") as f:
        assert f.attrs["status"] == "complete"
        assert '"process_count": 2' in f.attrs["mesh"] and '"devices_used": 4' in f.attrs["mesh"]


def test_a_killed_process_stops_the_other_and_resume_continues(tmp_path):
    cfg_path = tmp_path / "long.toml"
    cfg_path.write_text(LONG)
    out = tmp_path / "run"
    port = _free_port()
    args = ["run", str(cfg_path), "--out", str(out), "--quiet", "--no-plot"]
    procs = [_launch(args, port, i) for i in range(2)]
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline and procs[0].poll() is None:
        time.sleep(0.2)
    assert (out / "checkpoint.npz").exists(), procs[0].communicate()[1][-2000:]
    procs[1].send_signal(signal.SIGKILL)
    procs[1].communicate(timeout=10)
    err0 = procs[0].communicate(timeout=120)[1]  # the heartbeat (5 s in the config) tells process 0 its peer is gone
    assert procs[0].returncode != 0 and procs[1].returncode == -signal.SIGKILL
    assert "heartbeat" in err0 or "another task died" in err0, err0[-3000:]  # JAX's coordination service says why
    resumed = _run_both(["resume", str(out), "--quiet"])
    assert [rc for rc, _ in resumed] == [0, 0], resumed
    one = _reference(LONG.replace("processes = 2\n", ""), tmp_path)
    assert sharded_worker.differences(one, sharded_worker.datasets(out / "results.h5")) == {}


def test_a_run_that_sees_another_process_count_is_refused(tmp_path, capsys):
    from runs.cli import main

    cfg_path = tmp_path / "two.toml"
    cfg_path.write_text(TWO_PROCESSES)
    assert main(["run", str(cfg_path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "run.processes = 2: this run sees 1 process(es); refusing to run independent copies" in err
    assert not (tmp_path / "run").exists()


def test_an_unreachable_coordinator_is_exit_1_within_the_timeout(tmp_path):
    cfg_path = tmp_path / "lonely.toml"
    cfg_path.write_text(TWO_PROCESSES.replace("coordinator_timeout = 60", "coordinator_timeout = 3"))
    t0 = time.monotonic()
    # process 1 of 2 does not host the coordinator service: nothing listens on the port
    proc = _launch(["run", str(cfg_path), "--out", str(tmp_path / "run"), "--quiet"], _free_port(), 1)
    err = proc.communicate(timeout=120)[1]
    rc = proc.returncode
    assert rc == 1, err[-2000:]
    assert "could not join the run's processes: nothing answered at the coordinator localhost:" in err
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "run" / "results.h5").exists()


def test_importing_and_loading_a_config_starts_no_backend():
    """jax.distributed.initialize must come before any backend starts: no module may touch a device at import
    (a module-level jnp constant did once, and every multi-process run failed)."""
    code = ("import sys; from jax._src import xla_bridge as xb; import physics, nets, bridges, runs.cli; "
            "from runs import config; config.loads(open(sys.argv[1]).read()); "
            "print(xb.backends_are_initialized())")
    cfg = ROOT / "runs" / "configs" / "quickstart.toml"
    out = subprocess.run([sys.executable, "-c", code, str(cfg)], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
