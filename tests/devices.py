"""Run a worker in a fresh interpreter with several XLA host-platform (CPU) devices and read the JSON it writes.

The device count of XLA's CPU client is fixed when JAX starts, so multi-device tests cannot run in the pytest
process (one device); each starts a worker with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_on_cpu_devices(worker: list[str], out: Path, *, devices: int = 4, timeout: float = 600) -> dict:
    """Run ``python *worker OUT`` with ``devices`` CPU devices (e.g. ``["-m", "tests.runs.sharded_worker"]``) and
    return the JSON it wrote to ``out``; a failing worker fails the test with its stderr."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, *worker, str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(Path(out).read_text())
