"""One 2D/3D Ising or Edwards–Anderson lattice split in slabs over devices
(``kernels.split_generic.split_checkerboard``): the split Metropolis and heat-bath runs give the one-device
``kernels.metropolis`` / ``kernels.heat_bath`` configurations and acceptances bit for bit on 2 and 4 CPU devices
(3D Ising L = 16 with a field, 2D Gaussian EA 256 × 16, 3D ±J and Gaussian EA with a field, batched chains under
``vmap`` over temperatures on a 2 × 2 mesh); energies read from the split state are exact where every float32 sum is,
and within the rigorous float32 summation bound of the float64 energy otherwise; refused arguments say why.

The one-device kernels themselves are checked against exact enumeration in ``test_lattice.py``; bitwise equality
carries those checks over to the split kernel."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from physics import lattice
from physics.kernels.split_generic import split_checkerboard
from tests.devices import run_on_cpu_devices
from tests.physics import split_generic_worker

CASES = split_generic_worker.CASES


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One fresh interpreter with 4 CPU devices runs every case of ``split_generic_worker``."""
    return run_on_cpu_devices(["-m", "tests.physics.split_generic_worker"],
                              tmp_path_factory.mktemp("split_generic") / "report.json")


def _exact_in_float32(case) -> bool:
    """Integer couplings (Ising J = ±1, EA ±J) and h = 0.5 or 0: every partial energy sum is a multiple of 1/2
    below 2^22 in magnitude, hence exact in float32 in any order."""
    kind, _, j_or_disorder, h = case[:4]
    return (kind == "ising" or j_or_disorder == "pm1") and h in (0.0, 0.5)


@pytest.mark.parametrize("case", list(CASES))
def test_split_run_equals_one_device_run_bitwise(report, case):
    result = report["cases"][case]
    assert result["devices"] == CASES[case][6]
    assert result["split_axes"][0] == "rows" and set(result["split_axes"][1:]) == {None}
    mismatches = result["mismatches"]
    assert {k: mismatches[k] for k in ("spins", "acceptance", "magnetization")} == {
        "spins": 0, "acceptance": 0, "magnetization": 0}, result
    assert 0.05 < result["flips_per_sweep"] < 0.5, result  # the chains move: the equality is not vacuous
    if _exact_in_float32(CASES[case]):
        assert result["split_energy_error"] == 0.0 and mismatches["energy_vs_one_device"] == 0, result
    else:
        # Gaussian bonds: per-slab sums added with psum round differently from one device's running ΔE sum; both
        # stay within the rigorous bound (n - 1)·u·Σ|t| of the float64 energy (split_generic_worker.UNIT_ROUNDOFF)
        assert result["split_energy_error"] <= result["energy_bound"], result
        assert result["one_device_energy_error"] <= result["energy_bound"], result


def test_slabs_that_do_not_divide_the_first_axis_are_refused(report):
    errors = report["errors"]
    assert errors["rows_not_divisible"].startswith("model.shape[0]=10: ")
    assert "divisible by 2 × 4 = 8" in errors["rows_not_divisible"] and "[1, 5]" in errors["rows_not_divisible"]
    assert errors["odd_slab_rows"].startswith("model.shape[0]=12: ") and "[1, 2, 3, 6]" in errors["odd_slab_rows"]


@pytest.mark.parametrize("build, match", [
    (lambda mesh: split_checkerboard(lattice.Ising((8, 8, 8)), 1.0, mesh, algorithm="wolff"),
     r"algorithm='wolff': allowed: \('metropolis', 'heat_bath'\)"),
    (lambda mesh: split_checkerboard(object(), 1.0, mesh), r"model=object: .*Ising or .*EdwardsAnderson"),
    (lambda mesh: split_checkerboard(lattice.Ising((8, 8, 6 + 1)), 1.0, mesh), r"shape=\(8, 8, 7\): .*even"),
    (lambda mesh: split_checkerboard(lattice.Ising((8, 8)), 0.0, mesh),
     r"temperature=0.0: must be a finite number > 0"),
    (lambda mesh: split_checkerboard(lattice.Ising((8, 8)), 1.0, "rows"), r"mesh='rows': must be a jax.sharding.Mesh"),
    (lambda mesh: split_checkerboard(lattice.Ising((8, 8)), 1.0, mesh, "cols"),
     r"axis_name='cols': not an axis of the mesh; allowed: \('rows',\)"),
    (lambda mesh: split_checkerboard(lattice.Ising((8, 8)), 1.0, jax.make_mesh((1, 1), ("a", "b"))),
     r"axis_name=None: the mesh has axes \('a', 'b'\)"),
    (lambda mesh: split_checkerboard(lattice.Ising((8, 8, 8)), 1.0, mesh).init(None, jnp.ones((8, 8), jnp.int8)),
     r"x.shape=\(8, 8\): must be the model's shape \(8, 8, 8\)"),
])
def test_bad_arguments_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build(jax.make_mesh((1,), ("rows",)))
