"""Run 2D/3D Ising and Edwards–Anderson lattices split in slabs over 2 and 4 CPU devices and on one device; compare.

Run in a fresh interpreter (the device count of XLA's CPU client is fixed when JAX starts)::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 \
        python -m tests.physics.split_generic_worker [--job [NAME ...]] OUT.json

Writes ``{"cases": {name: {...}}, "errors": {...}}``. For each case (one record per sweep): how many spins and
acceptances differ between ``kernels.split_generic.split_checkerboard`` and the one-device ``kernels.metropolis`` /
``kernels.heat_bath`` run with the same keys, how many magnetizations differ from ``Σ s`` of the one-device
configurations; the split and one-device energies' largest distance from the float64 energy of the (shared)
configurations, computed here in NumPy, and the rigorous float32 rounding bound for a sum of those terms; and the
``ValueError`` messages of refused arguments that need several devices to arise.

With ``--job`` it runs instead the ``ising`` job configs of ``JOBS`` (those named, or all) with ``split = "rows"``
on 4 devices and unsplit on 1, and writes ``{name: {"differences": {dataset: largest |difference| or None}, "mesh": ...,
"configuration_mismatches": n, "energy_bound_per_spin": b}}``: the results.h5 datasets that differ (as
``tests.runs.sharded_worker`` compares them) and the spins that differ in the final checkpoints; and, under
``"plans"``, the memory figures ``pipeline.plan`` gives a 64³ run split over 1 and 4 devices and unsplit.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np

from physics import lattice, run
from physics.kernels import batched, heat_bath, metropolis
from physics.kernels.split_generic import split_checkerboard
from tests.physics.split_worker import refusals

SWEEPS = 20

# name: (model, shape, disorder or J, h, temperature, algorithm, devices, mesh kind[, chains, temperatures])
# model "ising" takes J; "ea" a disorder. h = 0.5 and integer couplings keep every energy sum exact in float32.
CASES = {
    "ising3d_L16_field_metropolis_4": ("ising", (16, 16, 16), 1.0, 0.5, 4.0, "metropolis", 4, "line"),
    "ising3d_L16_field_heat_bath_4": ("ising", (16, 16, 16), 1.0, 0.5, 4.0, "heat_bath", 4, "line"),
    "ising2d_heat_bath_2": ("ising", (32, 16), -1.0, 0.5, 2.0, "heat_bath", 2, "line"),
    "ea2d_gaussian_256x16_metropolis_4": ("ea", (256, 16), "gaussian", 0.0, 0.8, "metropolis", 4, "line"),
    "ea3d_pm1_field_metropolis_4": ("ea", (16, 8, 8), "pm1", 0.5, 1.2, "metropolis", 4, "line"),
    "ea3d_pm1_field_heat_bath_4": ("ea", (16, 8, 8), "pm1", 0.5, 1.2, "heat_bath", 4, "line"),
    "ea3d_gaussian_field_metropolis_4": ("ea", (8, 8, 8), "gaussian", 0.3, 1.0, "metropolis", 4, "line"),
    "ea3d_gaussian_field_heat_bath_2": ("ea", (8, 8, 8), "gaussian", 0.3, 1.0, "heat_bath", 2, "line"),
    # kernels.batched chains under vmap over temperatures (the ising job's layout), on a 2 × 2 mesh split over 2
    "ea3d_pm1_3_chains_2_temperatures_mesh_2x2": ("ea", (8, 4, 4), "pm1", 0.5, (0.9, 1.7), "metropolis", 2, "2x2",
                                                   3),
}

# float32 unit roundoff: a rounded sum of n terms errs by at most (n - 1) u Σ|t| whatever the order (each of the
# n - 1 additions rounds a partial sum no larger than Σ|t| by at most u of it; Higham, Accuracy and Stability of
# Numerical Algorithms, §4.2). The products J s s' and h s are exact or rounded once (one more u |t|).
UNIT_ROUNDOFF = 2.0**-24


def _mesh(devices: int, how: str):
    if how == "2x2":  # split over "rows", replicated over the other axis
        return jax.make_mesh((2, 2), ("replicas", "rows"))
    return jax.make_mesh((devices,), ("rows",), devices=jax.devices()[:devices])


def _model(kind, shape, j_or_disorder, h):
    if kind == "ising":
        return lattice.Ising(shape, J=j_or_disorder, h=h)
    return lattice.EdwardsAnderson.random(jax.random.key(7), shape, j_or_disorder, h=h)


def _energy64(model, xs: np.ndarray) -> tuple[np.ndarray, float]:
    """Float64 energies of configurations ``xs`` (``(..., *shape)``) and the float32 rounding bound of their sum."""
    shape = model.shape
    d = len(shape)
    couplings = np.broadcast_to(np.asarray(model.couplings, np.float64), (d, *shape))
    s = xs.astype(np.float64)
    axes = tuple(range(-d, 0))
    h = float(np.asarray(model.h))
    bonds = sum(np.sum(couplings[mu] * s * np.roll(s, -1, axis=mu - d), axis=axes) for mu in range(d))
    energy = -bonds - h * np.sum(s, axis=axes)
    terms = (d + 1) * model.n
    bound = (terms + 1) * UNIT_ROUNDOFF * (np.sum(np.abs(couplings)) + abs(h) * model.n)
    return energy, float(bound)


def _observe(state, info):
    return state.x, state.energy, info.acceptance


def _split_observe(state, info):
    return state.x, state.energy, info.acceptance, state.magnetization


def compare(kind, shape, j_or_disorder, h, temperature, algorithm, devices, how, chains=0) -> dict:
    model = _model(kind, shape, j_or_disorder, h)
    key = jax.random.key(11)
    one_device = {"metropolis": metropolis, "heat_bath": heat_bath}[algorithm]
    mesh = _mesh(devices, how)
    if chains:
        temperatures = jnp.asarray(temperature, jnp.float32)
        x0 = jax.vmap(jax.vmap(model.random_state))(
            jax.random.split(jax.random.key(5), (len(temperature), chains)))

        def both(t, x):
            one = batched(one_device(model, t), chains)
            split = batched(split_checkerboard(model, t, mesh, "rows", algorithm), chains)
            reference = run(one, key, one.init(key, x), SWEEPS, observe=_observe)[1]
            state, trace = run(split, key, split.init(key, x), SWEEPS, observe=_split_observe)
            return reference, trace, state.x

        reference, trace, x_final = jax.jit(jax.vmap(both))(temperatures, x0)
    else:
        x0 = model.random_state(jax.random.key(5))
        one = one_device(model, temperature)
        split = split_checkerboard(model, temperature, mesh, "rows", algorithm)
        reference = jax.jit(lambda s: run(one, key, s, SWEEPS, observe=_observe)[1])(one.init(key, x0))
        state, trace = jax.jit(lambda s: run(split, key, s, SWEEPS, observe=_split_observe))(split.init(key, x0))
        x_final = state.x
    spins, energy, acceptance = (np.asarray(a) for a in reference)
    split_spins, split_energy, split_acceptance, split_m = (np.asarray(a) for a in trace)
    exact, bound = _energy64(model, spins)
    axes = tuple(range(-len(shape), 0))
    spec = tuple(x_final.sharding.spec) + (None,) * x_final.ndim
    return {
        "devices": devices,
        "sweeps": SWEEPS,
        "mismatches": {
            "spins": int(np.sum(spins != split_spins)),
            "acceptance": int(np.sum(acceptance != split_acceptance)),
            "magnetization": int(np.sum(np.sum(spins.astype(np.int64), axis=axes) != split_m)),
            "energy_vs_one_device": int(np.sum(energy != split_energy)),
        },
        "split_energy_error": float(np.max(np.abs(split_energy - exact))),
        "one_device_energy_error": float(np.max(np.abs(energy - exact))),
        "energy_bound": bound,
        "flips_per_sweep": float(np.mean(acceptance)),
        "split_axes": list(spec[x_final.ndim - len(shape):x_final.ndim]),
    }


def errors() -> dict[str, str]:
    return refusals({
        "rows_not_divisible": lambda: split_checkerboard(lattice.Ising((10, 4, 4)), 2.0, _mesh(4, "line")),
        "odd_slab_rows": lambda: split_checkerboard(lattice.Ising((12, 4, 4)), 2.0, _mesh(4, "line")),
    })


JOB = """
[run]
kind = "ising"
seed = 9
chunk_steps = 20
[ising]
model = "edwards_anderson"
disorder = "{disorder}"
shape = {shape}
disorder_samples = 2
temperatures = [1.0, 2.0]
replicas = 2
kernel = "{kernel}"
equilibration = 20
measurement = 40
record_every = 4
"""

# ±J bonds keep every energy sum exact: the split run must give every dataset bit for bit. Gaussian bonds: the same
# configurations, energies within float32 summation error.
JOBS = {
    "ea3d_pm1_metropolis": JOB.format(disorder="pm1", shape=[8, 4, 4], kernel="metropolis"),
    "ea2d_gaussian_heat_bath": JOB.format(disorder="gaussian", shape=[16, 8], kernel="heat_bath"),
}


def _job_energy_bound_per_spin(job) -> float:
    """The largest float32 rounding error, per spin, of the split energy plus that of the unsplit one.

    Split: one rounded sum of the ``(d + 1) N`` terms ``J s s'`` and ``h s`` (``_energy64``'s bound). Unsplit: the
    same for the initial ``model.energy``; then each half-sweep adds ``Σ ΔE``, N terms with
    ``Σ|ΔE| ≤ A = 4 Σ|J| + 2 N |h|`` (each bond enters twice at each end), each ``ΔE = 2 s f`` off by the rounding
    of its ``2d + 1``-term local field, the sum rounded in ≤ N additions and added to ``|E| ≤ Σ|J| + N|h|``. The
    recorded ``E / N`` rounds once more on each side. The worst disorder sample counts.
    """
    o = job.options
    n, d = job.n, len(o.shape)
    bonds = np.abs(np.asarray(job.couplings, np.float64)).reshape(job.couplings.shape[0], -1).sum(axis=1)
    h = abs(o.field)
    total = bonds + h * n
    sweep_terms = 4 * bonds + 2 * n * h
    one_sum = ((d + 1) * n + 1) * UNIT_ROUNDOFF * total
    per_half_sweep = UNIT_ROUNDOFF * ((n + 2 * d + 1) * sweep_terms + total)
    error = 2 * one_sum + 2 * job.total_steps * per_half_sweep + 2 * UNIT_ROUNDOFF * total
    return float(np.max(error) / n)


def _final_spins(cfg, results: Path) -> np.ndarray:
    """The configurations of a finished run's checkpoint, ``(disorder, temperature, replica, *shape)``: the split
    job saves them as they are, the unsplit one its kernel's state, whose ``.x`` rebuilds them."""
    from runs.jobs import job_kinds
    from runs.store import CHECKPOINT

    job = job_kinds()["ising"](cfg)
    template = jax.eval_shape(job.to_checkpoint, jax.eval_shape(job.init, jax.random.key(0)))
    leaves, treedef = jax.tree_util.tree_flatten(template)
    with np.load(results.parent / CHECKPOINT) as saved:
        state = jax.tree_util.tree_unflatten(treedef, [saved[f"leaf_{i:05d}"] for i in range(len(leaves))])
    return np.asarray(state if job.mesh is not None else state.x)


def compare_job(name: str, text: str, root: Path) -> dict:
    from runs import config, pipeline
    from runs.jobs import job_kinds
    from tests.runs.sharded_worker import datasets, differences, with_devices

    one = pipeline.execute(config.loads(with_devices(text, 1)), root / f"{name}-1", progress=False)
    split_text = with_devices(text.replace("[ising]\n", '[ising]\nsplit = "rows"\n'), 4)
    four = pipeline.execute(config.loads(split_text), root / f"{name}-4", progress=False)
    with h5py.File(four, "r") as f:
        mesh = json.loads(f.attrs["mesh"])
    spins = [_final_spins(config.loads(t), path) for t, path in ((text, one), (split_text, four))]
    return {
        "mesh": mesh,
        "differences": differences(datasets(one), datasets(four)),
        "configuration_mismatches": int(np.sum(spins[0] != spins[1])) if spins[0].shape == spins[1].shape else -1,
        "configurations": int(spins[0].size),
        "energy_bound_per_spin": _job_energy_bound_per_spin(job_kinds()["ising"](config.loads(text))),
    }


def plans() -> dict[str, dict]:
    """``pipeline.plan`` memory figures of a 64³ Gaussian EA run split over 1 and over 4 devices, and unsplit."""
    from runs import config, pipeline
    from tests.runs.sharded_worker import with_devices

    big = JOB.format(disorder="gaussian", shape=[64, 64, 64], kernel="metropolis")
    split = big.replace("[ising]\n", '[ising]\nsplit = "rows"\n')
    out = {}
    for name, text, devices in (("split_1", split, 1), ("split_4", split, 4), ("unsplit_1", big, 1)):
        plan = pipeline.plan(config.loads(with_devices(text, devices)))
        out[name] = {k: plan[k] for k in ("memory_bytes", "memory_per_device_bytes")}
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[-1])
    assert jax.device_count() == 4, f"expected 4 CPU devices, got {jax.device_count()}"
    if "--job" in argv:
        names = [a for a in argv[:-1] if a != "--job"] or list(JOBS)
        with tempfile.TemporaryDirectory() as tmp:
            report = {name: compare_job(name, JOBS[name], Path(tmp)) for name in names}
        report["plans"] = plans()
        out.write_text(json.dumps(report, indent=1))
        return 0
    report = {"cases": {}, "seconds": {}}
    for name, case in CASES.items():
        t0 = time.perf_counter()
        report["cases"][name] = compare(*case)
        report["seconds"][name] = time.perf_counter() - t0
    report["errors"] = errors()
    out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
