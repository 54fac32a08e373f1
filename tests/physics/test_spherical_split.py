"""A hashed p-spin model split over devices (physics.spherical_split): the same bits on 1, 2 and 4 CPU devices,
the single-device gradient to rounding, and the block tuples each used exactly once."""
from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from physics import spherical, spherical_split
from tests.devices import run_on_cpu_devices

# Runs in a fresh interpreter with 4 CPU devices (the count is fixed when JAX starts).
WORKER = r"""
import json, sys
import jax, numpy as np
from jax.sharding import Mesh
from physics import spherical, spherical_split
out = {}
for name, p, block in (("p3", 3, 8), ("mixed", {2: 0.6, 3: 1.0}, 8)):
    model = spherical.PSpin.random(jax.random.key(7), 64, p, couplings="hashed", block=block)
    s = jax.vmap(model.random_state)(jax.random.split(jax.random.key(8), 6))
    results = {}
    for d in (1, 2, 4):
        mesh = Mesh(np.asarray(jax.devices()[:d]), ("couplings",))
        e, g = jax.jit(lambda s, mesh=mesh: spherical_split.split_energy_and_grad(model, s, mesh, "couplings"))(s)
        results[d] = (np.asarray(e), np.asarray(g))
    e_ref, g_ref = jax.jit(jax.vmap(model.energy_and_grad))(s)
    same = lambda a, b: bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))
    out[name] = {
        "same_bits_2": same(results[1], results[2]),
        "same_bits_4": same(results[1], results[4]),
        "grad_rel": float(np.max(np.abs(results[4][1] - np.asarray(g_ref))) / np.max(np.abs(np.asarray(g_ref)))),
        "energy_rel": float(np.max(np.abs(results[4][0] - np.asarray(e_ref)) / np.abs(np.asarray(e_ref)))),
    }
open(sys.argv[1], "w").write(json.dumps(out))
"""


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    return run_on_cpu_devices(["-c", WORKER], tmp_path_factory.mktemp("split") / "out.json")


@pytest.mark.parametrize("name", ["p3", "mixed"])
def test_split_gradient_has_the_same_bits_on_1_2_and_4_devices(four_devices, name):
    r = four_devices[name]
    assert r["same_bits_2"] and r["same_bits_4"], r
    # the order of the sum over blocks differs from the single scan: float32 rounding, ~1e-7 relative per add
    # over ≤ 120 blocks → a few 1e-6 at most
    assert r["grad_rel"] < 1e-5 and r["energy_rel"] < 1e-5, r


def test_groups_cover_every_block_tuple_once():
    model = spherical.PSpin.random(jax.random.key(0), 20, 3, couplings="hashed", block=4)
    table = spherical_split.grouped_tuples(model, 3, 8)
    rows = table.reshape(-1, 3)
    real = rows[rows[:, 0] >= 0]
    np.testing.assert_array_equal(real, model._block_tuples(3))
    assert np.all(rows[len(real):] == -1)  # padding only at the end


def test_bad_arguments_are_named():
    mesh = Mesh(np.asarray(jax.devices()[:1]), ("couplings",))
    hashed = spherical.PSpin.random(jax.random.key(0), 16, 3, couplings="hashed", block=4)
    dense = spherical.PSpin.random(jax.random.key(0), 16, 3)
    s = jax.vmap(hashed.random_state)(jax.random.split(jax.random.key(1), 2))
    with pytest.raises(ValueError, match="model: must be a hashed PSpin"):
        spherical_split.split_energy_and_grad(dense, s, mesh, "couplings")
    with pytest.raises(ValueError, match="axis_name='rows': not an axis"):
        spherical_split.split_energy_and_grad(hashed, s, mesh, "rows")
    with pytest.raises(ValueError, match="groups=0: must be a positive multiple"):
        spherical_split.split_energy_and_grad(hashed, s, mesh, "couplings", groups=0)
    with pytest.raises(ValueError, match=r"s: shape \(16,\)"):
        spherical_split.split_energy_and_grad(hashed, s[0], mesh, "couplings")
