"""Run the ``pspin`` job with one hashed model split over 1 and 4 CPU devices (``split = "couplings"``) and unsplit,
and compare their results.h5.

Run in a fresh interpreter (the device count of XLA's CPU client is fixed when JAX starts)::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m tests.runs.pspin_split_worker [--slow] OUT.json

Writes ``{"cases": {dynamics: {...}}, "plan": {...}, "refused": {...}}``. For each dynamics: ``devices_1_vs_4``,
the datasets that differ between the split run on 1 device and on 4 (``sharded_worker.differences``: empty when
bitwise equal) and the mesh of the 4-device run; ``split_vs_unsplit``, the largest absolute difference of each
float dataset between the split run on 1 device and the unsplit hashed job (same seed). ``--slow`` adds Metropolis
against the unsplit job and a run killed after one chunk on 4 devices and resumed on 1. ``plan`` holds the
memory figures of ``deepglass run --dry-run`` on 1 and 4 devices; ``refused``, what a device count that does not
divide ``coupling_groups`` gives (the ``ConfigError`` message and the CLI's exit status).
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.runs.sharded_worker import TINY as SHARDED_TINY
from tests.runs.sharded_worker import datasets, differences

# Langevin uses the gradient, Metropolis the energy only (both through the ordered sum of the group partials).
# block = 4 at n = 16 makes 4 index blocks per axis, 20 block triples: 8 groups of 3 (the last 2 padded), so
# every device of 4 holds real blocks. waiting_times = [0, 20] exercises the snapshots held in the carry.
TINY = SHARDED_TINY["pspin"].replace("p = 3\n", 'p = 3\ncouplings = "hashed"\nblock = 4\nsplit = "couplings"\n')

METROPOLIS = TINY.replace('dynamics = "langevin"', 'dynamics = "metropolis"').replace("step_size = 0.02",
                                                                                    "step_size = 0.3")


def with_devices(text: str, devices: int) -> str:
    return text.replace("[run]\n", f"[run]\ndevices = {devices}\n", 1)


def unsplit(text: str) -> str:
    return text.replace('split = "couplings"', 'split = "none"')


def largest_differences(a: dict, b: dict) -> dict[str, float | None]:
    """Largest absolute difference of every float dataset (None: missing, other shape, or NaNs in other places)."""
    out = {}
    for name in sorted(set(a) | set(b)):
        if name.startswith("@") or (name in a and a[name].dtype.kind != "f"):
            continue
        if name not in a or name not in b or a[name].shape != b[name].shape:
            out[name] = None
            continue
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            out[name] = None
            continue
        finite = np.isfinite(x)
        out[name] = float(np.max(np.abs(x[finite] - y[finite]), initial=0.0))
    return out


def compare(text: str, root: Path, *, against_unsplit: bool, resume: bool) -> dict:
    from runs import config, pipeline

    name = root.name
    one = pipeline.execute(config.loads(with_devices(text, 1)), root / f"{name}-1", progress=False)
    four = pipeline.execute(config.loads(with_devices(text, 4)), root / f"{name}-4", progress=False)
    import h5py

    with h5py.File(four, "r") as f:
        mesh = json.loads(f.attrs["mesh"])
    result = {"mesh": mesh, "devices_1_vs_4": differences(datasets(one), datasets(four))}
    if against_unsplit:
        plain = pipeline.execute(config.loads(with_devices(unsplit(text), 1)), root / f"{name}-plain",
                                 progress=False)
        result["split_vs_unsplit"] = largest_differences(datasets(one), datasets(plain))
    if resume:
        killed = root / f"{name}-killed"
        pipeline.execute(config.loads(with_devices(text, 4)), killed, progress=False, max_chunks=1)
        (killed / "config.toml").write_text(with_devices(text, 1))
        resumed = pipeline.resume(killed, progress=False)
        result["resumed_differences"] = differences(datasets(one), datasets(resumed))
    return result


def refused(root: Path) -> dict:
    """6 coupling groups cannot be divided among 4 devices: the message, and ``deepglass check``'s exit status."""
    from runs import cli, config, pipeline
    from runs.config import ConfigError

    text = with_devices(TINY.replace("[pspin]\n", "[pspin]\ncoupling_groups = 6\n"), 4)
    try:
        pipeline.plan(config.loads(text))
        message = None
    except ConfigError as err:
        message = str(err)
    path = root / "refused.toml"
    path.write_text(text)
    return {"message": message, "exit_status": cli.main(["check", str(path)])}


def main(argv: list[str]) -> int:
    import jax

    from runs import config, pipeline

    slow = "--slow" in argv
    (out,) = [Path(a) for a in argv if a != "--slow"]  # tests.devices appends the output path after the flags
    assert jax.device_count() == 4, f"expected 4 CPU devices, got {jax.device_count()}"
    report = {"cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "langevin").mkdir()
        (tmp / "metropolis").mkdir()
        report["cases"]["langevin"] = compare(TINY, tmp / "langevin", against_unsplit=True, resume=slow)
        report["cases"]["metropolis"] = compare(METROPOLIS, tmp / "metropolis", against_unsplit=slow, resume=False)
        report["plan"] = {str(d): {k: pipeline.plan(config.loads(with_devices(text, d)))[k]
                                   for k in ("memory_bytes", "memory_per_device_bytes", "mesh")}
                          for d, text in ((1, TINY), (4, TINY))}
        report["plan"]["unsplit"] = {k: pipeline.plan(config.loads(with_devices(unsplit(TINY), 1)))[k]
                                     for k in ("memory_bytes", "memory_per_device_bytes")}
        report["refused"] = refused(tmp)
    out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
