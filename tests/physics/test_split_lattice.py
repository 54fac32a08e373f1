"""One 2D Ising lattice split in row slabs over devices (``kernels.split.split_metropolis``): the split run equals the
one-device packed Metropolis run bit for bit (spins, energies, magnetizations, acceptances) on 1, 2 and 4 CPU
devices, L = 256 among them; refused arguments name the argument, its value and what is allowed.

The packed kernel itself is checked against exact enumeration and Kaufman's L = 16 energy in ``test_lattice.py``;
bitwise equality carries those checks over to the split kernel."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import lattice, run
from physics.kernels import metropolis
from physics.kernels.split import split_metropolis
from tests.devices import run_on_cpu_devices
from tests.physics import split_worker


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One fresh interpreter with 4 CPU devices runs every case of ``split_worker`` and times the kernels."""
    return run_on_cpu_devices(["-m", "tests.physics.split_worker"], tmp_path_factory.mktemp("split") / "report.json")


@pytest.mark.parametrize("case", list(split_worker.CASES))
def test_split_run_equals_one_device_run_bitwise(report, case):
    result = report["cases"][case]
    assert result["devices"] == split_worker.CASES[case][4]
    assert result["mismatches"] == {"spins": 0, "energy": 0, "magnetization": 0, "acceptance": 0}, result
    assert result["split_axes"] == ["rows", None]


def test_splits_that_do_not_divide_the_rows_are_refused(report):
    errors = report["errors"]
    assert errors["rows_not_divisible"].startswith("model.shape[0]=10: ")
    assert "divisible by 2 × 4 = 8" in errors["rows_not_divisible"] and "[1, 5]" in errors["rows_not_divisible"]
    assert errors["odd_slab_rows"].startswith("model.shape[0]=12: ") and "[1, 2, 3, 6]" in errors["odd_slab_rows"]


def test_flip_rates_are_reported(report):
    """Per-device spin-flip attempts per ns on 1 and 4 CPU devices (reported, never asserted: BENCHMARKS.md)."""
    rows = report["timing"]["rows"]
    assert [r["L"] for r in rows] == [256, 1024]
    for r in rows:
        for name in ("packed_1_device", "split_1_devices_per_device", "split_4_devices_per_device"):
            assert r[name] > 0, r


def _observe(state, info):
    x = state.x
    return x, state.energy, jnp.sum(x.astype(jnp.int32)), info.acceptance


def test_one_device_split_equals_packed_kernel_with_traced_temperature():
    """On a 1-device mesh (the torus closed through one device); one compiled program serves both temperatures."""
    model = lattice.Ising((16, 8), J=0.7, h=-0.2)
    mesh = jax.make_mesh((1,), ("rows",))
    key = jax.random.key(2)
    x0 = model.random_state(jax.random.key(9))
    traces = []

    @jax.jit
    def split_run(temperature):
        traces.append(temperature)
        kernel = split_metropolis(model, temperature, mesh)
        state, trace = run(kernel, key, kernel.init(key, x0), 6,
                           observe=lambda s, i: (s.x, s.energy, s.magnetization, i.acceptance))
        return trace, state.black

    for temperature in (1.2, 3.0):
        one = metropolis(model, temperature)
        state, expected = run(one, key, one.init(key, x0), 6, observe=_observe)
        got, black = split_run(jnp.float32(temperature))
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(state.black), np.asarray(black))
    assert len(traces) == 1


@pytest.mark.parametrize("build, match", [
    (lambda mesh: split_metropolis(lattice.EdwardsAnderson.random(jax.random.key(0), (8, 8)), 1.0, mesh),
     r"model=EdwardsAnderson\(shape=\(8, 8\)\): .*allowed: physics.lattice.Ising with a 2D shape"),
    (lambda mesh: split_metropolis(lattice.Ising((4, 4, 4)), 1.0, mesh),
     r"model=Ising\(shape=\(4, 4, 4\)\): .*2D shape"),
    (lambda mesh: split_metropolis(lattice.Ising((8, 6 + 1)), 1.0, mesh), r"shape=\(8, 7\): .*even"),
    (lambda mesh: split_metropolis(lattice.Ising((8, 8)), 0.0, mesh), r"temperature=0.0: must be a finite number > 0"),
    (lambda mesh: split_metropolis(lattice.Ising((8, 8)), 1.0, "rows"), r"mesh='rows': must be a jax.sharding.Mesh"),
    (lambda mesh: split_metropolis(lattice.Ising((8, 8)), 1.0, mesh, "cols"),
     r"axis_name='cols': not an axis of the mesh; allowed: \('rows',\)"),
    (lambda mesh: split_metropolis(lattice.Ising((8, 8)), 1.0, jax.make_mesh((1, 1), ("a", "b"))),
     r"axis_name=None: the mesh has axes \('a', 'b'\)"),
    (lambda mesh: split_metropolis(lattice.Ising((8, 8)), 1.0, mesh).init(None, jnp.ones((8, 6), jnp.int8)),
     r"x.shape=\(8, 6\): must be the model's shape \(8, 8\)"),
])
def test_bad_arguments_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build(jax.make_mesh((1,), ("rows",)))
