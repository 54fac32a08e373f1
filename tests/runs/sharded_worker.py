"""Run tiny configs of every job kind on 1 device and on 4, and compare their results.h5 bit for bit.

Run in a fresh interpreter (the device count of XLA's CPU client is fixed when JAX starts)::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m tests.runs.sharded_worker OUT.json [KIND ...]

Writes ``{kind: {"mesh": ..., "differences": {...}, "resumed_differences": {...}}}``: the datasets whose values
differ between the 1-device and the 4-device run (with the largest absolute difference), and between an
uninterrupted 1-device run and a run killed after its first chunk on 4 devices and resumed on 1.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

from tests.runs.test_compare_job import TINY as COMPARE_TINY

TINY = {
    "ising": """
[run]
kind = "ising"
seed = 5
chunk_steps = 20
[ising]
model = "edwards_anderson"
disorder = "pm1"
shape = [8, 8]
disorder_samples = 2
temperatures = [1.5, 2.5]
replicas = 4
equilibration = 20
measurement = 40
record_every = 4
""",
    "ising_pt": """
[run]
kind = "ising"
seed = 6
chunk_steps = 20
[ising]
model = "edwards_anderson"
shape = [4, 4, 4]
disorder_samples = 2
temperatures = [1.0, 1.6, 2.4]
replicas = 2
kernel = "parallel_tempering"
pt_base = "heat_bath"
equilibration = 20
measurement = 20
record_every = 4
""",
    "ising_2d_ferro": """
[run]
kind = "ising"
seed = 7
chunk_steps = 20
[ising]
shape = [16, 16]
temperatures = [2.0, 2.2, 2.4, 2.6]
replicas = 8
equilibration = 20
measurement = 40
record_every = 4
""",
    "ising_split": """
[run]
kind = "ising"
seed = 8
chunk_steps = 20
[ising]
shape = [16, 16]
temperatures = [2.0, 2.4]
replicas = 2
split = "rows"
equilibration = 20
measurement = 40
record_every = 4
""",
    "pspin": """
[run]
kind = "pspin"
seed = 3
chunk_steps = 20
[pspin]
n = 16
p = 3
dynamics = "langevin"
temperatures = [0.5, 1.0]
step_size = 0.02
replicas = 2
disorder_samples = 2
steps = 60
equilibration = 20
record_every = 10
waiting_times = [0, 20]
""",
    "rem": """
[run]
kind = "rem"
seed = 3
[rem]
sizes = [8, 10]
samples = 4
temperatures = [0.3, 2.0]
chunk_bits = 8
""",
    "funnel": """
[run]
kind = "funnel"
seed = 4
[funnel]
n = 8
samples = 4
gap_ratios = [4.5]
temperatures = [0.8, 1.4]
profile_temperatures = [1.0]
fold_temperatures = [1.5]
starts = 4
max_sweeps = 20
""",
    "mcrg": """
[run]
kind = "mcrg"
seed = 3
chunk_steps = 40
[mcrg]
L = 16
flow_couplings = [0.3, 0.6]
levels = 2
even = 3
odd = 2
replicas = 4
equilibration = 40
measurement = 80
record_every = 4
""",
    "rbm_rg": """
[run]
kind = "rbm_rg"
seed = 1
chunk_steps = 20
[rbm_rg]
L = 8
K = 0.408
hidden = [16, 4]
replicas = 4
equilibration = 20
measurement = 60
record_every = 2
train_steps = 40
batch_size = 20
learning_rate = 0.01
num_chains = 20
""",
    "train": """
[run]
kind = "train"
seed = 2
chunk_steps = 20
[train]
dataset = "digits"
hidden = [16]
widths = [8]
activation = "tanh"
optimizer = "sgd"
learning_rates = [0.05, 0.1]
weight_decays = [0.0]
seeds = 2
batch_size = 16
steps = 60
record_every = 20
""",
    # the toy compare config of test_compare_job, a checkpoint every 4 units so a chunk spreads over 4 devices
    "compare": COMPARE_TINY.replace("[run]\n", "[run]\nchunk_steps = 4\n", 1),
}

# Resuming on another mesh is the same code for every kind (the checkpoint holds the gathered global state):
# checked on one physics job with a sharded replica axis, one with sharded temperatures, and the networks.
RESUME_ACROSS_MESHES = ("ising_pt", "pspin", "train", "ising_split")

# Attributes that say where a run computed, not what it computed.
PLACEMENT_ATTRS = {"mesh", "devices", "config"}  # config differs in its devices line only


def with_devices(text: str, devices: int) -> str:
    return text.replace("[run]\n", f"[run]\ndevices = {devices}\n", 1)


def datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None)
        out.update({f"@{k}": np.asarray(v) for k, v in f.attrs.items() if k not in PLACEMENT_ATTRS})
    return out


def differences(a: dict, b: dict) -> dict[str, float | None]:
    """Datasets that differ: ``{name: largest absolute difference}`` (None: shapes, NaNs or integers differ)."""
    out = {}
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b or a[name].shape != b[name].shape:
            out[name] = None
            continue
        x, y = a[name], b[name]
        if x.dtype.kind == "f":
            if not np.array_equal(x, y, equal_nan=True):
                finite = np.isfinite(x) & np.isfinite(y)
                same_nonfinite = np.array_equal(x[~finite], y[~finite], equal_nan=True)
                if not np.array_equal(np.isnan(x), np.isnan(y)) or not same_nonfinite:
                    out[name] = None
                else:
                    out[name] = float(np.max(np.abs(x[finite] - y[finite])))
        elif not np.array_equal(x, y):
            out[name] = None
    return out


def compare(kind: str, text: str, root: Path) -> dict:
    from runs import config, pipeline

    one = pipeline.execute(config.loads(with_devices(text, 1)), root / f"{kind}-1", progress=False)
    four = pipeline.execute(config.loads(with_devices(text, 4)), root / f"{kind}-4", progress=False)
    with h5py.File(four, "r") as f:
        mesh = json.loads(f.attrs["mesh"])
    result = {"mesh": mesh, "differences": differences(datasets(one), datasets(four))}
    if kind not in RESUME_ACROSS_MESHES:
        return result
    # killed after one chunk on 4 devices, resumed on 1: the checkpoint restores into the smaller mesh
    killed = root / f"{kind}-killed"
    pipeline.execute(config.loads(with_devices(text, 4)), killed, progress=False, max_chunks=1)
    (killed / "config.toml").write_text(with_devices(text, 1))
    resumed = pipeline.resume(killed, progress=False)
    result["resumed_differences"] = differences(datasets(one), datasets(resumed))
    return result


def main(argv: list[str]) -> int:
    import jax

    out, kinds = Path(argv[0]), argv[1:] or list(TINY)
    assert jax.device_count() == 4, f"expected 4 CPU devices, got {jax.device_count()}"
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            report[kind] = compare(kind, TINY[kind], Path(tmp))
    out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
