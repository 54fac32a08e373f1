"""The packed generic lattice kernels (3D Ising, Edwards–Anderson, heat bath) against the masked sweep they replace.

The kernels must draw the same numbers and do the same float arithmetic per site as the masked full-lattice sweep
(another kernel, split over devices, is built against exactly these per-site semantics), so the configurations are
compared bit for bit with a compact copy of that sweep, written here from its definition: per sweep, the uniform
``u_i = uniform01(key, i)`` of every site (flat row-major index i), then for the even sublattice (Σ coordinates even)
and then the odd one, ``f = model.local_field(x)`` of the whole lattice and the update of the sites of that colour.
The statistical validity of the sweep itself (χ² against exact enumeration with negative controls) is tested in
test_lattice.py; bitwise equality here carries those results over from the old kernel to the new one.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import hashing, kernels, lattice, run
from physics.kernels.lattice import checkerboard_masks, pack_checkerboard, pack_sublattices, unpack_sublattices

SWEEPS = 20
REPLICAS = 3


def _masked_sweep(model, temperature, algorithm):
    """One sweep of the replaced kernel, ``step(key, x) -> x``, written from its definition."""
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    masks = checkerboard_masks(model.shape)
    sites = jnp.arange(model.n, dtype=jnp.uint32).reshape(model.shape)

    def step(key, x):
        u = hashing.uniform01(key, sites)
        for mask in masks:
            field = model.local_field(x)
            if algorithm == "heat_bath":
                new = jnp.where(u < jax.nn.sigmoid(2.0 * beta * field), 1, -1).astype(x.dtype)
            else:
                de = 2.0 * x.astype(jnp.float32) * field
                new = jnp.where(u < jnp.exp(-beta * de), -x, x)
            x = jnp.where(mask, new, x)
        return x

    return step


def _reference_energy(model, x):
    """``-Σ_mu Σ_i J_mu(i) s_i s_{i+e_mu} - h Σ s_i`` in float64 NumPy, and the sum of the magnitudes of its terms."""
    s = np.asarray(x, np.float64)
    shape = model.shape
    d = len(shape)
    couplings = model.J if isinstance(model, lattice.Ising) else model.couplings
    c = np.broadcast_to(np.asarray(couplings, np.float64), (d, *shape))
    lattice_axes = tuple(range(-d, 0))
    terms = [c[mu] * s * np.roll(s, -1, axis=mu - d) for mu in range(d)] + [float(model.h) * s]
    energy = -sum(t.sum(axis=lattice_axes) for t in terms)
    magnitude = sum(np.abs(t).sum(axis=lattice_axes) for t in terms)
    return energy, magnitude


CASES = {
    # name: (model, temperature) — temperatures where a sizeable fraction of the sites flips every sweep
    "ising_3d": (lambda: lattice.Ising((4, 6, 8)), 4.5),
    "ising_3d_field": (lambda: lattice.Ising((4, 6, 8), J=1.0, h=0.3), 4.5),
    # J = 0.7 has no exact multiples in float32: the float path, not the integer-threshold one
    "ising_3d_inexact_j": (lambda: lattice.Ising((4, 6, 8), J=0.7, h=-0.2), 3.0),
    "ising_3d_sides_2": (lambda: lattice.Ising((2, 2, 4), J=1.0, h=0.1), 4.0),
    "ising_2d_field": (lambda: lattice.Ising((6, 8), J=1.0, h=0.2), 2.3),
    "ea_gaussian_2d": (lambda: lattice.EdwardsAnderson.random(jax.random.key(1), (6, 8), "gaussian", h=0.2), 1.2),
    "ea_pm1_2d": (lambda: lattice.EdwardsAnderson.random(jax.random.key(2), (6, 8), "pm1"), 1.2),
    "ea_gaussian_3d": (lambda: lattice.EdwardsAnderson.random(jax.random.key(3), (4, 6, 8), "gaussian", h=0.3),
                       1.5),
    "ea_pm1_3d": (lambda: lattice.EdwardsAnderson.random(jax.random.key(4), (4, 6, 8), "pm1"), 1.5),
}
ALGORITHMS = {"metropolis": kernels.lattice.generic_metropolis, "heat_bath": kernels.heat_bath}


def _trajectories(model, temperature, algorithm, key, xs):
    """Configurations after each of SWEEPS sweeps of REPLICAS chains: (new kernel, masked reference), and the final
    states of the new kernel. Both use ``run``'s step keys and ``kernels.batched``'s per-chain split keys."""
    kern = kernels.batched(ALGORITHMS[algorithm](model, temperature), REPLICAS)
    reference = jax.vmap(_masked_sweep(model, temperature, algorithm))

    @jax.jit
    def both(xs):
        state, trace = run(kern, key, kern.init(key, xs), SWEEPS, observe=lambda s, i: (s.x, s.energy, i))

        def ref_step(x, t):
            x = reference(jax.random.split(jax.random.fold_in(key, t), REPLICAS), x)
            return x, x

        _, expected = jax.lax.scan(ref_step, xs, jnp.arange(SWEEPS))
        return state, trace, expected

    return both(xs)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
@pytest.mark.parametrize("case", list(CASES))
def test_packed_sweeps_match_masked_sweep_bitwise(case, algorithm):
    make, temperature = CASES[case]
    model = make()
    key = jax.random.key(11)
    xs = jax.vmap(model.random_state)(jax.random.split(key, REPLICAS))
    state, (x_trace, energy_trace, info), expected = _trajectories(model, temperature, algorithm, key, xs)
    x_trace, expected = np.asarray(x_trace), np.asarray(expected)
    for t in range(SWEEPS):
        mismatch = np.argwhere(x_trace[t] != expected[t])
        assert mismatch.size == 0, f"sweep {t}: first differing sites (replica, *site) {mismatch[:3].tolist()}"
    # the chains move (a test on frozen configurations would prove nothing)
    changed = (x_trace[1:] != x_trace[:-1]).mean()
    assert changed > 0.05, f"only {changed:.3f} of the sites changed per sweep"
    # acceptance is the fraction of sites that changed in the sweep
    before = np.concatenate([np.asarray(xs)[None], x_trace[:-1]])
    np.testing.assert_allclose(np.asarray(info.acceptance), (x_trace != before).mean(axis=tuple(range(2, 2 + len(
        model.shape)))), rtol=0, atol=1e-6)
    assert np.all(np.asarray(info.is_finite))
    # The energy is computed when read, in float32: against a float64 sum of the same bonds, the error of a float32
    # sum of n terms is at most (n - 1)·2⁻²⁴·Σ|terms| (recursive summation; the per-term products are exact for ±1
    # spins), plus one rounding of the result.
    reference, magnitude = _reference_energy(model, x_trace[-1])
    terms = (len(model.shape) + 1) * model.n
    bound = terms * 2.0**-24 * magnitude + 2.0**-23 * np.abs(reference)
    assert np.all(np.abs(np.asarray(energy_trace[-1]) - reference) <= bound), (energy_trace[-1], reference, bound)
    np.testing.assert_array_equal(np.asarray(state.x), x_trace[-1])


def test_pack_sublattices_round_trip_and_colours():
    x = lattice.random_spins(jax.random.key(5), (2, 4, 6, 8))  # a batch axis and a 3D lattice
    even, odd = jax.jit(pack_sublattices, static_argnums=1)(x, 3)
    assert even.shape == odd.shape == (2, 4, 6, 4)
    np.testing.assert_array_equal(jax.jit(unpack_sublattices, static_argnums=2)(even, odd, 3), x)
    parity = np.indices((4, 6, 8)).sum(axis=0) % 2
    for sites, colour in ((even, 0), (odd, 1)):
        # row by row, the packed sites are the sites of that colour in order
        expected = np.asarray(x)[:, parity == colour].reshape(2, 4, 6, 4)
        np.testing.assert_array_equal(np.asarray(sites), expected)
    # in 2D the packing is pack_checkerboard's (the 2D Ising, split and multi-spin kernels share the layout)
    x2 = lattice.random_spins(jax.random.key(1), (3, 6, 10))
    assert all(np.array_equal(a, b) for a, b in zip(pack_sublattices(x2, 2), pack_checkerboard(x2)))


def test_integer_threshold_path_is_taken_exactly_when_fields_are_exact():
    exact = kernels.lattice._exact_integer_fields
    assert exact(lattice.Ising((4, 4, 4))) and exact(lattice.Ising((4, 4, 4), J=0.5, h=0.3))
    assert not exact(lattice.Ising((4, 4, 4), J=0.7))  # 3·0.7 is not a float32 multiple of float32(0.7)
    assert not exact(lattice.EdwardsAnderson.random(jax.random.key(0), (4, 4), "pm1"))


def test_state_energy_at_init_and_under_vmap():
    model = lattice.EdwardsAnderson.random(jax.random.key(6), (4, 4, 6), "gaussian", h=-0.4)
    kern = kernels.metropolis(model, 1.0)
    xs = jax.vmap(model.random_state)(jax.random.split(jax.random.key(7), 4))
    states = jax.jit(jax.vmap(kern.init))(jax.random.split(jax.random.key(8), 4), xs)
    np.testing.assert_array_equal(np.asarray(states.x), np.asarray(xs))
    reference, magnitude = _reference_energy(model, xs)
    bound = 4 * model.n * 2.0**-24 * magnitude + 2.0**-23 * np.abs(reference)  # as in the bitwise test
    assert np.all(np.abs(np.asarray(states.energy) - reference) <= bound)
