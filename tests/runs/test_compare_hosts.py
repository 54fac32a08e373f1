"""The ``compare`` job over two processes on localhost under ``jax.distributed`` (CPU, 2 local devices each): the
units of work are divided between the processes, not repeated, and process 0 writes one results.h5 bitwise equal
to the single-process run's."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from runs import config, pipeline
from tests.runs import sharded_worker
from tests.runs.test_compare_job import TINY

ROOT = Path(__file__).resolve().parents[2]

# Three units of work, the cheapest kinds of the toy config (network, glass, information), two per chunk: chunk
# [0, 1] gives one unit to each process, chunk [2] gives process 1 nothing to do (it still takes part in the swap).
THREE_UNITS = TINY.replace("[compare]\n", '[compare]\npanels = ["minima", "information"]\n', 1).replace(
    "[run]\n", "[run]\nchunk_steps = 2\n", 1)
TWO_PROCESSES = THREE_UNITS.replace(
    "[run]\n", "[run]\nprocesses = 2\nheartbeat_timeout = 5\ncoordinator_timeout = 60\n", 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start_process(args: list[str], port: int, index: int) -> subprocess.Popen:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT), DEEPGLASS_COORDINATOR=f"localhost:{port}", DEEPGLASS_NUM_PROCESSES="2",
               DEEPGLASS_PROCESS_ID=str(index))
    return subprocess.Popen([sys.executable, "-m", "tests.runs.compare_hosts_worker", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_divide_the_units_and_write_the_one_process_results(tmp_path):
    cfg_path = tmp_path / "two.toml"
    cfg_path.write_text(TWO_PROCESSES)
    out = tmp_path / "run"
    port = _free_port()
    procs = [_start_process([str(cfg_path), str(out)], port, i) for i in range(2)]
    finished = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in finished]
    ran = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in finished]
    # unit u on process u mod 2: units 0 (network 0) and 2 (information) on process 0, unit 1 (glass 0) on process 1
    assert ran == [[["network", 0], ["information", 0]], [["glass", 0]]]
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoint.npz", "config.toml", "results.h5"]
    reference = pipeline.execute(config.loads(THREE_UNITS), tmp_path / "reference", progress=False)
    one, two = sharded_worker.datasets(reference), sharded_worker.datasets(out / "results.h5")
    assert sharded_worker.differences(one, two) == {}  # every dataset and attribute, NaN slots included
    import h5py

    with h5py.File(out / "results.h5", "r") as f:
        assert f.attrs["status"] == "complete" and list(f["unit_kind"][...]) == [0, 1, 6]
        assert '"process_count": 2' in f.attrs["mesh"] and '"devices_used": 4' in f.attrs["mesh"]
