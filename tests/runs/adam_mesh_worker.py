"""Run one Adam ``train`` config on 1, 2 and 4 CPU devices and compare every dataset of the run files.

Run in a fresh interpreter (the device count of XLA's CPU client is fixed when JAX starts)::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m tests.runs.adam_mesh_worker [--control] OUT.json

Writes ``{"differences": {D: {...}}, "meshes": {D: ...}, "loss_first_last": [...]}``: the datasets that differ
between the 1-device run and the D-device run (name: largest absolute difference; empty when bitwise equal), the
mesh each run recorded, and the mean training loss at the first and the last record of the 1-device run (the
networks did train). With ``--control`` it writes ``{"control": {...}}`` instead: the same comparison for 1 and 2
devices with the training program compiled with XLA's default passes (common-subexpression elimination on), which
is expected to find the differences the job's compiler options remove.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

from tests.runs.sharded_worker import datasets, differences, with_devices

# 8 networks: one group of 8 on 1 device, 4 (padded to 8) on each of 2, 2 on each of 4. Two chunks, so the optimizer
# state (Adam's step count and moments) also crosses a chunk boundary; weight decay on, so λθ enters the update.
ADAM = """
[run]
kind = "train"
seed = 11
chunk_steps = 10
[train]
dataset = "digits"
hidden = [8]
activation = "tanh"
optimizer = "adam"
learning_rates = [0.01, 0.03]
weight_decays = [0.0001]
seeds = 4
batch_size = 16
steps = 20
record_every = 10
"""


def _run(root: Path, name: str, devices: int) -> tuple[dict, dict]:
    from runs import config, pipeline

    path = pipeline.execute(config.loads(with_devices(ADAM, devices)), root / name, progress=False)
    with h5py.File(path, "r") as f:
        mesh = json.loads(f.attrs["mesh"])
    return datasets(path), mesh


def main(argv: list[str]) -> int:
    import jax

    from runs.jobs import train as train_job

    *flags, out = argv
    assert jax.device_count() == 4, f"expected 4 CPU devices, got {jax.device_count()}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if flags == ["--control"]:
            # XLA's default passes compile the 1- and 2-device programs differently (runs/jobs/train.py,
            # _SAME_PROGRAM_ON_EVERY_MESH): the job's compiled programs are rebuilt without its options.
            train_job._SAME_PROGRAM_ON_EVERY_MESH = {}
            train_job._COMPILED.clear()
            default = {d: _run(root, f"default-{d}", d)[0] for d in (1, 2)}
            report = {"control": differences(default[1], default[2])}
        else:
            assert not flags, f"unknown arguments {flags}"
            runs = {d: _run(root, f"adam-{d}", d) for d in (1, 2, 4)}
            one = runs[1][0]
            loss = np.asarray(one["train_loss"], np.float64)
            report = {
                "differences": {d: differences(one, runs[d][0]) for d in (2, 4)},
                "meshes": {d: mesh for d, (_, mesh) in runs.items()},
                "loss_first_last": [float(loss[..., 0].mean()), float(loss[..., -1].mean())],
            }
    Path(out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
