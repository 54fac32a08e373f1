"""Pairwise Ising models (``physics.pairwise``): energies against dense numpy, the SK variance, and the cached
local-field kernels (χ² of sampled states against exact Boltzmann weights at n = 8, NetKet's sampler test, with a
negative control; field and energy tracking; one compiled program per temperature sweep)."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import kernels, run
from physics.pairwise import Pairwise
from tests.stats import boltzmann, chi2_pvalue, combined_pvalue

N = 8


def _model(key=0):
    """SK couplings plus a field (all numbers of order one), so every state has a distinct weight."""
    j = np.asarray(Pairwise.random(jax.random.key(key), N).couplings, np.float64) * 2.0
    h = np.asarray(jax.random.normal(jax.random.key(key + 100), (N,)), np.float64) * 0.3
    return Pairwise.from_couplings(j, h), j, h


def _all_states(n):
    """Configuration k ↔ σ_i = +1 where bit i of k is 1 (the physics.rem indexing), in numpy."""
    k = np.arange(2**n)[:, None]
    return np.where((k >> np.arange(n)) & 1, 1.0, -1.0)


def test_energy_matches_dense_numpy():
    model, j, h = _model()
    states = _all_states(N)
    expected = np.array([-sum(j[a, b] * s[a] * s[b] for a, b in itertools.combinations(range(N), 2)) - h @ s
                         for s in states])
    np.testing.assert_allclose(np.asarray(model.all_energies(), np.float64), expected, rtol=1e-5, atol=1e-5)
    x = jnp.asarray(states[37], jnp.int8)
    assert float(model.energy(x)) == pytest.approx(expected[37], abs=1e-5)
    np.testing.assert_allclose(np.asarray(model.local_field(x)), j @ states[37] + h, atol=1e-5)


def test_from_couplings_validation():
    with pytest.raises(ValueError, match="symmetric"):
        Pairwise.from_couplings(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="diagonal"):
        Pairwise.from_couplings(np.eye(3))
    with pytest.raises(ValueError, match="field"):
        Pairwise.from_couplings(np.zeros((3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="n="):
        Pairwise.random(jax.random.key(0), 1)


def test_sk_energy_variance_is_cs():
    """Var H(σ) = Σ_{i<j} Var J_ij = (n − 1)/2 over the disorder (CS variance of the Ising 2-spin). 20,000
    samples at n = 8: stderr of a sample variance 3.5·√(2/M) ≈ 0.035; |Δ| < 4 stderr. Negative control: the
    variance n/2 = 4 (what a diagonal term would add) is 14 stderr away and is rejected."""
    x = jnp.asarray(_all_states(N)[123], jnp.int8)
    e = np.asarray(jax.jit(jax.vmap(lambda k: Pairwise.random(k, N).energy(x)))(
        jax.random.split(jax.random.key(3), 20000)), np.float64)
    var, se = np.var(e, ddof=1), (N - 1) / 2 * np.sqrt(2 / (e.size - 1))
    assert abs(var - (N - 1) / 2) < 4 * se, (var, se)
    assert abs(var - N / 2) > 4 * se


def _sample_indices(kernel, model, key, chains, burn, every, samples):
    k_x, k_i, k_r = jax.random.split(key, 3)
    xs = jax.vmap(model.random_state)(jax.random.split(k_x, chains))
    bits = jnp.asarray(1 << np.arange(N), jnp.int32)

    def one(ki, kr, x):
        state = kernel.init(ki, x)
        state, _ = run(kernel, kr, state, burn, every=burn)
        _, idx = run(kernel, jax.random.fold_in(kr, 1), state, samples * every, every=every,
                     observe=lambda s, i: jnp.sum(jnp.where(s.x > 0, bits, 0)))
        return idx

    out = jax.jit(jax.vmap(one))(jax.random.split(k_i, chains), jax.random.split(k_r, chains), xs)
    return np.asarray(out).ravel()


def test_chi2_against_exact_enumeration_and_negative_control():
    """Both registered rules sample e^{−βH}: χ² of 3,072 states (512 chains × 6 samples, 10 sweeps apart after 50)
    against the 256 exact Boltzmann weights, p > 1e-3 (Fisher-combined); the same histograms against the weights at
    1.3 T must be rejected (p < 1e-6)."""
    model, _, _ = _model(1)
    energies = model.all_energies()
    pvals, wrong = [], []
    for name, t in (("metropolis", 1.0), ("heat_bath", 0.7)):
        kernel = getattr(kernels, name)(model, t)
        idx = _sample_indices(kernel, model, jax.random.key(11), chains=512, burn=50, every=10, samples=6)
        counts = np.bincount(idx, minlength=2**N)
        pvals.append(chi2_pvalue(counts, boltzmann(energies, t)))
        wrong.append(chi2_pvalue(counts, boltzmann(energies, 1.3 * t)))
    assert combined_pvalue(pvals) > 1e-3, pvals
    assert max(wrong) < 1e-6, wrong


def test_fields_and_energy_tracked_and_one_compile_per_sweep():
    """After 200 sweeps the cached energy and local fields equal the model's; a temperature sweep traces once."""
    model, _, _ = _model(2)
    temps = jnp.asarray([0.3, 0.8, 2.0], jnp.float32)
    traces = []

    def sweep(t, key):
        traces.append(None)
        kernel = kernels.metropolis(model, t)
        state = kernel.init(key, model.random_state(key))
        state, acceptance = run(kernel, key, state, 200, every=1, observe=lambda s, i: i.acceptance)
        return state, jnp.mean(acceptance)

    states, acc = jax.jit(jax.vmap(sweep))(temps, jax.random.split(jax.random.key(5), 3))
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(states.energy), np.asarray(jax.vmap(model.energy)(states.x)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(states.local_field), np.asarray(jax.vmap(model.local_field)(states.x)),
                               atol=1e-5)
    acc = np.asarray(acc)
    assert acc[0] < acc[1] < acc[2]  # hotter chains accept more flips (means over 200 sweeps)
