"""Run one 2D Ising lattice split over 1, 2 and 4 CPU devices and on the one-device packed kernel; compare and time.

Run in a fresh interpreter (the device count of XLA's CPU client is fixed when JAX starts)::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m tests.physics.split_worker OUT.json [--no-timing]

Writes ``{"cases": {name: {"devices": D, "steps": S, "mismatches": {observable: count}}}, "errors": {...},
"timing": {...}}``: for each case, how many recorded values (spins, energies, magnetizations, acceptances, one
record per sweep) differ between the split run and the one-device run (0 everywhere: bitwise equal); the
``ValueError`` messages of refused arguments that need several devices to arise; and spin-flip attempts per ns.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from physics import lattice, run
from physics.kernels import batched, metropolis
from physics.kernels.split import split_metropolis

STEPS = 8

# name: (shape, J, h, temperature, devices, mesh constructor[, chains]): chains > 0 runs kernels.batched
CASES = {
    "L256_T_c_4_devices": ((256, 256), 1.0, 0.0, 2.269, 4, "make_mesh"),
    "rectangular_antiferromagnet_2_devices": ((32, 64), -1.0, 0.5, 1.5, 2, "Mesh"),
    "two_rows_per_device": ((8, 4), 1.0, 0.0, 1.0, 4, "make_mesh"),
    "3_chains_batched_4_devices": ((16, 8), 1.0, 0.1, 2.0, 4, "make_mesh", 3),
    "mesh_2x2_split_over_2": ((16, 8), 1.0, 0.0, 2.0, 2, "2x2"),
}


def _mesh(devices: int, how: str):
    if how == "2x2":  # split over "rows", replicated over the other axis
        return jax.make_mesh((2, 2), ("replicas", "rows"))
    if how == "Mesh":  # a plain Mesh (Auto axes) as well as make_mesh's Explicit ones
        return jax.sharding.Mesh(np.array(jax.devices()[:devices]), ("rows",))
    return jax.make_mesh((devices,), ("rows",), devices=jax.devices()[:devices])


def _packed_observe(state, info):
    x = state.x
    return x, state.energy, jnp.sum(x.astype(jnp.int32), axis=(-2, -1)), info.acceptance


def _split_observe(state, info):
    return state.x, state.energy, state.magnetization, info.acceptance


def compare(shape, J, h, temperature, devices, how, chains=0) -> dict:
    model = lattice.Ising(shape, J=J, h=h)
    key = jax.random.key(11)
    one = metropolis(model, temperature)
    split = split_metropolis(model, temperature, _mesh(devices, how), "rows")
    if chains:
        one, split = batched(one, chains), batched(split, chains)
        x0 = jax.vmap(model.random_state)(jax.random.split(jax.random.key(5), chains))
    else:
        x0 = model.random_state(jax.random.key(5))
    _, reference = jax.jit(lambda s: run(one, key, s, STEPS, observe=_packed_observe))(one.init(key, x0))
    state, trace = jax.jit(lambda s: run(split, key, s, STEPS, observe=_split_observe))(split.init(key, x0))
    names = ("spins", "energy", "magnetization", "acceptance")
    mismatches = {n: int(np.sum(np.asarray(a) != np.asarray(b))) for n, a, b in zip(names, reference, trace)}
    spec = tuple(state.white.sharding.spec)
    spec += (None,) * (state.white.ndim - len(spec))
    return {"devices": devices, "steps": STEPS, "mismatches": mismatches, "split_axes": list(spec[-2:])}


def refusals(builds: dict) -> dict[str, str]:
    """``{name: the ValueError's message, or "accepted"}`` for each kernel builder called."""
    out = {}
    for name, build in builds.items():
        try:
            build()
        except ValueError as e:
            out[name] = str(e)
        else:
            out[name] = "accepted"
    return out


def errors() -> dict[str, str]:
    return refusals({
        "rows_not_divisible": lambda: split_metropolis(lattice.Ising((10, 8)), 2.0, _mesh(4, "make_mesh")),
        "odd_slab_rows": lambda: split_metropolis(lattice.Ising((12, 8)), 2.0, _mesh(4, "make_mesh")),
    })


def _rate(kernel, model, sweeps: int, repeats: int = 3) -> float:
    """Spin-flip attempts per ns: best of ``repeats`` timed runs of ``sweeps`` sweeps (after a warm-up)."""
    key = jax.random.key(0)
    state = kernel.init(key, model.random_state(key))
    advance = jax.jit(lambda s: run(kernel, key, s, sweeps, every=sweeps)[0])
    jax.block_until_ready(advance(state))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(advance(state))
        best = min(best, time.perf_counter() - t0)
    return model.n * sweeps / best / 1e9


def timing() -> dict:
    out = {"cpu_cores": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "rows": []}
    for size, sweeps in ((256, 40), (1024, 4)):
        model = lattice.Ising((size, size))
        row = {"L": size, "packed_1_device": _rate(metropolis(model, 2.269), model, sweeps)}
        for devices in (1, 4):
            total = _rate(split_metropolis(model, 2.269, _mesh(devices, "make_mesh")), model, sweeps)
            row[f"split_{devices}_devices_total"] = total
            row[f"split_{devices}_devices_per_device"] = total / devices
        out["rows"].append(row)
    out["load_average_1min_after"] = os.getloadavg()[0]
    return out


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    assert jax.device_count() == 4, f"expected 4 CPU devices, got {jax.device_count()}"
    t0 = time.perf_counter()
    report = {"cases": {name: compare(*case) for name, case in CASES.items()}, "errors": errors()}
    report["compare_seconds"] = time.perf_counter() - t0
    if "--no-timing" not in argv:
        t0 = time.perf_counter()
        report["timing"] = timing()
        report["timing"]["seconds"] = time.perf_counter() - t0
    out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
