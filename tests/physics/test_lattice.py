"""Lattice models and kernels: χ² tests against exact enumeration (2D 4×4 and 3D 2×2×4), Kaufman's finite-L energy,
negative controls for both harnesses, the local field against a site-by-site computation, compile-once sweeps.

Every statistical harness here is a helper shared by its test and by a negative control that feeds it samples drawn
at a temperature 5% off and asserts that it rejects them: a harness that cannot fail checks nothing.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import kernels, lattice, run, theory
from tests.stats import assert_within, boltzmann, chi2_pvalue

# A χ² test passes when its p-value is above ACCEPT; a negative control passes when the same harness, fed samples
# from the wrong temperature, gives a p-value below it (the test would fail).
ACCEPT = 1e-3
SEEDS = (1, 2, 3)
WRONG = 1.05  # controls sample at WRONG·T and test against the law at T

SHAPE_2D = (4, 4)
# 16 spins, 65,536 states. The sides of length 2 join each site to the same neighbour through two distinct bonds
# (i → i+e and i+e → i, both stored), so those pairs carry J_mu(i) + J_mu(i+e); the enumeration sums the same
# bond list, so this is part of the model being tested, not an approximation.
SHAPE_3D = (2, 2, 4)


# --- exact enumeration, independent of the library's energy code ----------------------------------------------
@functools.cache
def _all_states(shape):
    """Every ±1 configuration of ``shape``; state k has s_j = 1 - 2·(bit j of k) on the flattened lattice."""
    n = int(np.prod(shape))
    idx = np.arange(2**n, dtype=np.int64)
    return (1 - 2 * ((idx[:, None] >> np.arange(n)) & 1)).reshape(-1, *shape).astype(np.int8)


def _state_index(x, shape):
    """Inverse of :func:`_all_states` for sampled configurations with any leading axes."""
    bits = (1 - np.asarray(x, np.int64).reshape(-1, int(np.prod(shape)))) // 2
    return (bits << np.arange(bits.shape[1], dtype=np.int64)).sum(axis=1)


def _reference_energy(couplings, h, states):
    """``-Σ_mu Σ_i J_mu(i) s_i s_{i+e_mu} - h Σ_i s_i`` in float64 numpy, for a stack of configurations."""
    shape = states.shape[1:]
    s = states.astype(np.float64)
    c = np.broadcast_to(np.asarray(couplings, np.float64), (len(shape), *shape))
    energy = -h * s.reshape(len(s), -1).sum(axis=1)
    for mu in range(len(shape)):
        neighbour = np.roll(s, -1, axis=mu + 1)
        energy -= (c[mu] * s * neighbour).reshape(len(s), -1).sum(axis=1)
    return energy


def _model_couplings(model):
    return np.asarray(model.J if isinstance(model, lattice.Ising) else model.couplings, np.float64)


def _exact_cells(model, temperature, num_energy_bins=12):
    """Exact probabilities of (energy bin, magnetization) cells and the cell of every enumerated state.

    Energy bins are quantiles of the Boltzmann energy distribution at ``temperature`` (degenerate levels stay whole),
    so every bin holds samples. Quantiles of the flat state count put most bins at energies a low-temperature chain
    never visits: with them the 4×4 ±J harness at T = 1 would reject 1.05·T only at an expected p ≈ 1e-2.
    """
    states = _all_states(model.shape)
    n = int(np.prod(model.shape))
    energies = _reference_energy(_model_couplings(model), float(model.h), states)
    probs = boltzmann(energies, temperature)
    order = np.argsort(energies, kind="stable")
    cdf = np.cumsum(probs[order])
    edges = np.unique(energies[order][np.searchsorted(cdf, np.linspace(0, 1, num_energy_bins + 1)[1:-1])])
    energy_bin = np.searchsorted(edges, energies, side="right")
    mag = states.reshape(len(states), -1).sum(axis=1)
    cell_of_state = energy_bin * (n + 1) + (mag + n) // 2
    return cell_of_state, np.bincount(cell_of_state, weights=probs, minlength=(len(edges) + 1) * (n + 1))


def _chi2_pvalues(draw, model, temperature, sampled_temperature):
    """The χ² harness: p-value of the configurations ``draw(seed, T')`` of all SEEDS, drawn at ``sampled_temperature``,
    against the exact cell probabilities at ``temperature``; and each seed's own p-value, for the failure message.

    One χ² over the pooled counts: Fisher's combination of three per-seed tests dilutes the evidence of a 5% error
    (the 3D Gaussian EA Metropolis control gave p = 2e-5 that way, 3e-12 pooled).
    """
    cell_of_state, probs = _exact_cells(model, temperature)
    # Cells no state reaches (a magnetization impossible at those energies) are left out of the χ²: a sample in one
    # is an outright failure, and pooling only such cells would give chi2_pvalue a 0/0.
    possible = probs > 0
    per_seed = []
    for seed in SEEDS:
        cells = cell_of_state[_state_index(draw(seed, sampled_temperature), model.shape)]
        per_seed.append(np.bincount(cells, minlength=probs.size))
        assert per_seed[-1][~possible].sum() == 0
    pooled = chi2_pvalue(np.sum(per_seed, axis=0)[possible], probs[possible])
    return pooled, [chi2_pvalue(counts[possible], probs[possible]) for counts in per_seed]


MODELS = {
    "ising": lambda: lattice.Ising(SHAPE_2D),
    "ising_field": lambda: lattice.Ising(SHAPE_2D, J=0.8, h=0.3),
    "ea_gaussian": lambda: lattice.EdwardsAnderson.random(jax.random.key(7), SHAPE_2D, "gaussian"),
    "ea_pm1": lambda: lattice.EdwardsAnderson.random(jax.random.key(8), SHAPE_2D, "pm1"),
    "ising_3d": lambda: lattice.Ising(SHAPE_3D),
    "ea_gaussian_field_3d": lambda: lattice.EdwardsAnderson.random(jax.random.key(17), SHAPE_3D, "gaussian", h=0.3),
    "ea_pm1_3d": lambda: lattice.EdwardsAnderson.random(jax.random.key(18), SHAPE_3D, "pm1"),
}


def test_reference_energy_matches_model():
    """The enumeration's numpy energy and the model's own energy agree on every state of every χ² model, so the
    χ² tests check the kernels against the model the library defines."""
    energies = jax.jit(jax.vmap(lambda model, x: model.energy(x), in_axes=(None, 0)))
    for name, make in MODELS.items():
        model = make()
        states = _all_states(model.shape)
        reference = _reference_energy(_model_couplings(model), float(model.h), states)
        # float32 rounding of sums of up to 48 bond terms (|E| ≤ 48): ~1e-5; measured ≤ 3e-6
        np.testing.assert_allclose(np.asarray(energies(model, jnp.asarray(states)), np.float64), reference,
                                   atol=1e-4, err_msg=name)


# --- samplers and the 2D χ² tests -------------------------------------------------------------------------------
# Kernels that branch on concrete model values get the model baked into their program: the 2D Ising Metropolis
# takes its zero-field fast path only for a concrete h = 0, and Wolff checks J > 0, h = 0 when they are concrete.
# Every other model is an argument of the compiled sampler, so models of one type and shape share one compilation.
BAKED_IN = {("metropolis", "ising"), ("wolff", "ising")}


@functools.cache
def _compiled_sampler(kernel_name, baked_model_name, burn, gap, samples):
    baked = MODELS[baked_model_name]() if baked_model_name else None

    def one_chain(key, temperature, model):
        model = baked if baked is not None else model
        ka, kb = jax.random.split(key)
        kern = getattr(kernels, kernel_name)(model, temperature)
        state = kern.init(ka, model.random_state(ka))
        state, _ = run(kern, kb, state, burn)
        _, x = run(kern, jax.random.fold_in(kb, 1), state, gap * samples, observe=lambda s, i: s.x, every=gap)
        return x

    return jax.jit(jax.vmap(one_chain, in_axes=(0, None, None)))


def _chain_sampler(kernel_name, model_name, chains=1024, burn=60, gap=15, samples=4):
    """``draw(seed, T)``: ``samples`` configurations, ``gap`` steps apart, from each of ``chains`` independent chains.

    The temperature is an argument of the compiled program, so a control at 1.05·T reuses the test's compilation.
    """
    baked = (kernel_name, model_name) in BAKED_IN
    sample = _compiled_sampler(kernel_name, model_name if baked else None, burn, gap, samples)
    model = None if baked else MODELS[model_name]()

    def draw(seed, temperature):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1), chains)
        return np.asarray(sample(keys, jnp.float32(temperature), model))

    return draw


def _checkerboard_pvalues(kernel_name, model_name, temperature, sampled_temperature):
    """The checkerboard harness: 3 seeds × 1024 chains × 4 samples drawn at ``sampled_temperature``, tested against
    the exact law at ``temperature``."""
    return _chi2_pvalues(_chain_sampler(kernel_name, model_name), MODELS[model_name](), temperature,
                         sampled_temperature)


CHECKERBOARD_CASES = [("ising", 2.5), ("ising_field", 2.0), ("ea_gaussian", 1.2), ("ea_pm1", 1.0)]


@pytest.mark.parametrize("kernel_name", ["metropolis", "heat_bath"])
@pytest.mark.parametrize("model_name,temperature", CHECKERBOARD_CASES)
def test_checkerboard_chi2_exact(kernel_name, model_name, temperature):
    """12,288 configurations (3 seeds × 1024 chains × 4) of the 4×4 torus against exact enumeration."""
    p, per_seed = _checkerboard_pvalues(kernel_name, model_name, temperature, temperature)
    assert p > ACCEPT, (p, per_seed)


@pytest.mark.parametrize("kernel_name", ["metropolis", "heat_bath"])
@pytest.mark.parametrize("model_name,temperature", CHECKERBOARD_CASES)
def test_checkerboard_chi2_rejects_wrong_temperature(kernel_name, model_name, temperature):
    """Negative control: the same harness, fed samples drawn at 1.05·T, rejects them."""
    p, per_seed = _checkerboard_pvalues(kernel_name, model_name, temperature, WRONG * temperature)
    assert p < ACCEPT, (p, per_seed)


WOLFF_T = 2.3


def _wolff_pvalues(sampled_temperature):
    return _chi2_pvalues(_chain_sampler("wolff", "ising", gap=25), MODELS["ising"](), WOLFF_T, sampled_temperature)


def test_wolff_chi2_exact():
    p, per_seed = _wolff_pvalues(WOLFF_T)
    assert p > ACCEPT, (p, per_seed)


def test_wolff_chi2_rejects_wrong_temperature():
    """Negative control: Wolff clusters grown at 1.05·T are rejected by the harness built for T = 2.3."""
    p, per_seed = _wolff_pvalues(WRONG * WOLFF_T)
    assert p < ACCEPT, (p, per_seed)


PT_LADDER = (0.5, 0.8, 1.2, 2.0)


@functools.cache
def _pt_sampler(chains=2048):
    """``draw(seed, ladder)``: configurations at every rung (axis -3) of parallel tempering on the 4×4 EA model,
    and the round trips each chain made."""
    model = MODELS["ea_gaussian"]()

    def one_chain(key, temps):
        ka, kb = jax.random.split(key)
        kern = kernels.parallel_tempering(lambda t: kernels.metropolis(model, t), temps)
        state = kern.init(ka, jax.vmap(model.random_state)(jax.random.split(ka, temps.shape[0])))
        state, _ = run(kern, kb, state, 60)
        final, x = run(kern, jax.random.fold_in(kb, 1), state, 60, observe=lambda s, i: s.x, every=15)
        return x, final.round_trips

    sample = jax.jit(jax.vmap(one_chain, in_axes=(0, None)))

    def draw(seed, ladder):
        x, trips = sample(jax.random.split(jax.random.key(seed), chains), jnp.asarray(ladder, jnp.float32))
        return np.asarray(x), int(np.asarray(trips).sum())

    return draw


def _pt_pvalues(ladder):
    """The PT harness: per tested rung (T = 0.5 and 1.2), the χ² p-value of samples drawn with ``ladder``
    against the exact law at the rung's PT_LADDER temperature; and the total number of round trips."""
    draw, model = _pt_sampler(), MODELS["ea_gaussian"]()
    runs = {seed: draw(seed, ladder) for seed in SEEDS}
    results = {rung: _chi2_pvalues(lambda seed, _, rung=rung: runs[seed][0][..., rung, :, :], model,
                                   PT_LADDER[rung], ladder)
               for rung in (0, 2)}
    return results, sum(trips for _, trips in runs.values())


def test_parallel_tempering_chi2_exact():
    results, trips = _pt_pvalues(PT_LADDER)
    for rung, (p, per_seed) in results.items():
        assert p > ACCEPT, (rung, p, per_seed)
    assert trips > 0  # walkers do travel the whole ladder and back


def test_parallel_tempering_chi2_rejects_wrong_ladder():
    """Negative control: the whole ladder 5% hot; both tested rungs are rejected."""
    results, _ = _pt_pvalues(tuple(WRONG * t for t in PT_LADDER))
    for rung, (p, per_seed) in results.items():
        assert p < ACCEPT, (rung, p, per_seed)


# --- Kaufman's exact finite-size energy ------------------------------------------------------------------------
KAUFMAN_SIZE, KAUFMAN_T, KAUFMAN_REPLICAS = 16, 2.269, 64


@functools.cache
def _kaufman_replicas(kernel_name, steps, burn):
    """Mean energy per spin of each of 64 independent L = 16 replicas at a (traced) temperature."""
    model = lattice.Ising((KAUFMAN_SIZE, KAUFMAN_SIZE))

    def replica(key, temperature):
        ka, kb = jax.random.split(key)
        kern = getattr(kernels, kernel_name)(model, temperature)
        state = kern.init(ka, model.random_state(ka))
        state, _ = run(kern, kb, state, burn)
        _, e = run(kern, jax.random.fold_in(kb, 1), state, steps)
        return jnp.mean(e) / model.n

    return jax.jit(jax.vmap(replica, in_axes=(0, None)))


def _kaufman_comparison(kernel_name, steps, burn, sampled_temperature):
    """The Kaufman harness: (mean, standard error over replicas, exact u at T = 2.269) for chains run at
    ``sampled_temperature``."""
    keys = jax.random.split(jax.random.key(11), KAUFMAN_REPLICAS)
    means = np.asarray(_kaufman_replicas(kernel_name, steps, burn)(keys, jnp.float32(sampled_temperature)))
    exact = theory.kaufman_energy(KAUFMAN_SIZE, KAUFMAN_T)
    return means.mean(), means.std(ddof=1) / np.sqrt(KAUFMAN_REPLICAS), exact


@pytest.mark.parametrize("kernel_name,steps,burn", [("metropolis", 3000, 500), ("wolff", 3000, 300)])
def test_energy_matches_kaufman_L16(kernel_name, steps, burn):
    """Mean energy per spin at T = 2.269 vs Kaufman's exact L = 16 value, errors from 64 independent replicas."""
    mean, err, exact = _kaufman_comparison(kernel_name, steps, burn, KAUFMAN_T)
    assert_within(mean, exact, err, k=3, what=f"{kernel_name} u(L=16)")


def test_kaufman_comparison_rejects_wrong_temperature():
    """Negative control: Metropolis run at 1.05·T is more than 4 standard errors from the exact u(T)."""
    mean, err, exact = _kaufman_comparison("metropolis", 3000, 500, WRONG * KAUFMAN_T)
    assert abs(mean - exact) > 4 * err, (mean, exact, err)


# --- 3D: exact enumeration of the 2×2×4 torus at moderate temperatures -----------------------------------------
# T = 4.5 is near the bulk 3D Ising T_c ≈ 4.51 and T = 3 is in its ordered phase; the EA temperatures sit where
# the Boltzmann weight is spread over a few dozen energy levels, not frozen in the ground state.
CASES_3D = [("ising_3d", 4.5), ("ising_3d", 3.0), ("ea_gaussian_field_3d", 1.5), ("ea_pm1_3d", 1.5)]


@pytest.mark.parametrize("kernel_name", ["metropolis", "heat_bath"])
@pytest.mark.parametrize("model_name,temperature", CASES_3D)
def test_3d_checkerboard_chi2_exact(kernel_name, model_name, temperature):
    """12,288 configurations of the 2×2×4 torus (generic checkerboard path) against exact enumeration."""
    p, per_seed = _checkerboard_pvalues(kernel_name, model_name, temperature, temperature)
    assert p > ACCEPT, (p, per_seed)


@pytest.mark.parametrize("kernel_name", ["metropolis", "heat_bath"])
@pytest.mark.parametrize("model_name,temperature", CASES_3D)
def test_3d_checkerboard_chi2_rejects_wrong_temperature(kernel_name, model_name, temperature):
    """Negative control: samples drawn at 1.05·T are rejected by the 3D harness built for T."""
    p, per_seed = _checkerboard_pvalues(kernel_name, model_name, temperature, WRONG * temperature)
    assert p < ACCEPT, (p, per_seed)


# --- the local field ---------------------------------------------------------------------------------------------
def _site_by_site_field(couplings, x):
    """``f_i = Σ_mu J_mu(i) s_{i+e_mu} + J_mu(i-e_mu) s_{i-e_mu}`` by explicit neighbour coordinates."""
    x = np.asarray(x, np.float64)
    shape = x.shape
    c = np.broadcast_to(np.asarray(couplings, np.float64), (len(shape), *shape))
    f = np.zeros(shape)
    for site in np.ndindex(shape):
        for mu in range(len(shape)):
            up = tuple((site[a] + (a == mu)) % shape[a] for a in range(len(shape)))
            down = tuple((site[a] - (a == mu)) % shape[a] for a in range(len(shape)))
            f[site] += c[mu][site] * x[up] + c[mu][down] * x[down]
    return f


def _numpy_couplings(seed, shape, disorder):
    rng = np.random.default_rng(seed)
    full = (len(shape), *shape)
    j = rng.standard_normal(full) if disorder == "gaussian" else rng.choice([-1.0, 1.0], size=full)
    return jnp.asarray(j, jnp.float32)


# A scalar and an array of couplings, with and without a field, in 2D and 3D; (2, 3, 4) has a side of length 2
# (a pair joined by two bonds) and an odd side, which local_field handles though the checkerboard kernels refuse it.
LOCAL_FIELD_MODELS = {
    "ising_2d": lambda: lattice.Ising((5, 6), J=1.3, h=0.4),
    "ea_pm1_2d": lambda: lattice.EdwardsAnderson((5, 6), _numpy_couplings(21, (5, 6), "pm1")),
    "ising_3d": lambda: lattice.Ising((2, 3, 4), J=-0.7),
    "ea_gaussian_3d": lambda: lattice.EdwardsAnderson((2, 3, 4), _numpy_couplings(22, (2, 3, 4), "gaussian"), h=0.5),
}


@pytest.mark.parametrize("model_name", LOCAL_FIELD_MODELS)
def test_local_field_matches_site_by_site_sum(model_name):
    """``lattice.local_field`` and ``model.local_field`` (= f + h) against a site-by-site sum, and the identity the
    kernels rely on: flipping s_i changes the (independently computed) energy by 2 s_i (f_i + h)."""
    model = LOCAL_FIELD_MODELS[model_name]()
    couplings, h = _model_couplings(model), float(model.h)
    spins = np.random.default_rng(5).choice(np.array([-1, 1], np.int8), size=model.shape)
    expected = _site_by_site_field(couplings, spins)
    # float32 sums of at most 6 terms of size ≤ 5: rounding ~1e-6
    got = jax.jit(lambda m, x: (lattice.local_field(m.couplings, x), m.local_field(x)))(model, jnp.asarray(spins))
    np.testing.assert_allclose(np.asarray(got[0]), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got[1]), expected + h, atol=1e-5)

    flips = np.repeat(spins.reshape(1, -1), spins.size, axis=0)
    flips[np.arange(spins.size), np.arange(spins.size)] *= -1
    delta = (_reference_energy(couplings, h, flips.reshape(-1, *spins.shape))
             - _reference_energy(couplings, h, spins[None]))
    np.testing.assert_allclose(delta, (2 * spins * (expected + h)).ravel(), atol=1e-9)


# --- compile-once sweeps, packing, energy tracking, high temperature, bad inputs --------------------------------
def test_temperature_sweep_traces_once():
    model = lattice.Ising((8, 8))
    traces = []

    def make(t):
        traces.append(1)
        return kernels.metropolis(model, t)

    @jax.jit
    def sweep(temps, key):
        def one(t, k):
            kern = make(t)
            s = kern.init(k, model.random_state(k))
            return run(kern, k, s, 5)[1]

        return jax.vmap(one)(temps, jax.random.split(key, temps.shape[0]))

    sweep(jnp.array([1.0, 2.0, 3.0]), jax.random.key(0))
    sweep(jnp.array([1.5, 2.5, 3.5]), jax.random.key(1))
    assert len(traces) == 1


def test_packed_checkerboard_round_trip_and_energy():
    from physics.kernels.lattice import pack_checkerboard, unpack_checkerboard

    x = lattice.random_spins(jax.random.key(4), (3, 6, 10))
    assert np.array_equal(unpack_checkerboard(*pack_checkerboard(x)), x)
    parity = np.indices((6, 10)).sum(0) % 2
    black, _ = pack_checkerboard(x)
    assert np.array_equal(np.sort(np.asarray(black[0]).ravel()), np.sort(np.asarray(x[0])[parity == 0]))
    for h in (0.0, 0.4):
        model = lattice.Ising((6, 10), J=1.3, h=h)
        kern = kernels.metropolis(model, 1.7)
        s = kern.init(jax.random.key(0), x[0])
        s, _ = run(kern, jax.random.key(1), s, 40)
        assert float(s.energy) == pytest.approx(float(model.energy(s.x)), abs=1e-3)


def test_energy_tracking_is_exact():
    model = lattice.EdwardsAnderson.random(jax.random.key(3), (6, 8), "gaussian", h=0.3)
    kern = kernels.heat_bath(model, 0.7)
    s = kern.init(jax.random.key(0), model.random_state(jax.random.key(0)))
    s, _ = run(kern, jax.random.key(1), s, 50)
    assert float(s.energy) == pytest.approx(float(model.energy(s.x)), abs=1e-3)


def test_3d_ising_energy_at_high_temperature():
    # High-temperature series, t = tanh K: Z = (2 cosh³K)^N Σ_closed graphs t^|edges|. The smallest closed graphs
    # have 4 edges: the 3N plaquettes and, on the L = 4 torus, the 3N/4 straight loops winding around it, so
    # ln Z/N = ln(2 cosh³K) + (3 + 3/4) t⁴ + O(t⁶) and u = -∂_K ln Z/N = -3t - 15 t³ (1 - t²) + O(t⁵).
    # At T = 20 (t = 0.04996) the t³ term is -1.87e-3; the O(t⁵) graphs (6 edges, a few tens per site) stay
    # below 1e-4, which is the stated allowance.
    model = lattice.Ising((4, 4, 4))
    kern = kernels.metropolis(model, 20.0)

    def replica(k):
        s = kern.init(k, model.random_state(k))
        _, e = run(kern, k, s, 400)
        return jnp.mean(e[50:]) / model.n

    means = np.asarray(jax.jit(jax.vmap(replica))(jax.random.split(jax.random.key(2), 64)))
    t = np.tanh(1 / 20.0)
    assert_within(means.mean(), -3 * t - 15 * t**3 * (1 - t**2), means.std(ddof=1) / 8, allowance=1e-4,
                  what="3D u(T=20)")


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        lattice.Ising((1, 4))
    with pytest.raises(ValueError, match="even"):
        kernels.metropolis(lattice.Ising((5, 4)), 1.0)
    with pytest.raises(ValueError, match="disorder"):
        lattice.EdwardsAnderson.random(jax.random.key(0), (4, 4), "cauchy")
    with pytest.raises(ValueError, match="ferromagnet"):
        kernels.wolff(lattice.EdwardsAnderson.random(jax.random.key(0), (4, 4)), 1.0)
