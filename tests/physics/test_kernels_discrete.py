"""Single-spin-flip kernels for the REM family: χ² of sampled states against exact Boltzmann weights at n = 12
(Metropolis, heat bath, parallel tempering), NetKet's sampler test. Samples: many independent chains, a few
well-separated samples each."""
import jax
import jax.numpy as jnp
import numpy as np

from physics import kernels, rem, run
from tests.stats import boltzmann, chi2_pvalue, combined_pvalue

N = 12


def _sample_indices(kernel, model, key, chains, burn, every, samples):
    """State indices of ``samples`` configurations per chain, ``every`` sweeps apart, after ``burn`` sweeps."""
    k_x, k_i, k_r = jax.random.split(key, 3)
    xs = jax.vmap(model.random_state)(jax.random.split(k_x, chains))

    def one(ki, kr, x):
        state = kernel.init(ki, x)
        state, _ = run(kernel, kr, state, burn, every=burn)
        _, idx = run(kernel, jax.random.fold_in(kr, 1), state, samples * every, every=every,
                     observe=lambda s, i: rem.index_words(s.x)[0])
        return idx

    out = jax.jit(jax.vmap(one))(jax.random.split(k_i, chains), jax.random.split(k_r, chains), xs)
    return np.asarray(out).ravel()


def _pvalue(idx, probs):
    return chi2_pvalue(np.bincount(idx, minlength=probs.size), probs)


def _energy_pvalue(idx, energies, probs, bins=24):
    """χ² of the sampled energies in ``bins`` cells of equal exact probability (energy quantiles of the Boltzmann
    law). State-resolved cells spread 3·10^3–10^4 samples over 4,096 states and cannot see a few-percent
    temperature error; the energy is what such an error moves."""
    e = np.asarray(energies, np.float64)
    order = np.argsort(e)
    cdf = np.cumsum(probs[order])
    edges = e[order][np.searchsorted(cdf, np.linspace(0, 1, bins + 1)[1:-1])]
    cell = np.searchsorted(np.unique(edges), e, side="right")
    expected = np.bincount(cell, weights=probs)
    return chi2_pvalue(np.bincount(cell[idx], minlength=expected.size), expected)


def test_metropolis_and_heat_bath_chi2_rem():
    """Single flips in a REM are a trap model: leaving a local minimum of depth ΔE takes ~e^{βΔE} sweeps, so a
    single-chain χ² test is run well above T_c (T = 1.5, 2); the frozen phase is tested with PT below.

    Each kernel's 12,288 samples pass against the Boltzmann law at its temperature and — the negative control that
    shows the harness can fail — are rejected (p < 1e-3) against the law at 1.05·T."""
    model = rem.REM.random(jax.random.key(0), N)
    energies = np.asarray(model.all_energies())
    for name, t in (("metropolis", 2.0), ("heat_bath", 1.5)):
        kernel = getattr(kernels, name)(model, t)
        assert isinstance(kernel, kernels.Kernel)
        idx = _sample_indices(kernel, model, jax.random.key(1), chains=2048, burn=200, every=20, samples=6)
        p_states = _pvalue(idx, boltzmann(energies, t))
        p_energy = _energy_pvalue(idx, energies, boltzmann(energies, t))
        p_wrong = _energy_pvalue(idx, energies, boltzmann(energies, 1.05 * t))
        assert p_states > 1e-3 and p_energy > 1e-3, f"{name} at T={t}: p = {p_states:.2g} (states), {p_energy:.2g}"
        assert p_wrong < 1e-3, f"{name}: samples at T={t} not rejected against 1.05·T (p = {p_wrong:.2g})"


def test_metropolis_chi2_funnel_and_grem():
    """6,144 samples per model pass against the Boltzmann law (state-resolved cells, and energy-quantile cells); the
    negative control: the energy-binned harness rejects the same samples (p < 1e-3) against the law at 1.05·T
    (measured p = 3.5e-4 for the GREM, 2.7e-5 for the funnel)."""
    key = jax.random.key(2)
    base = rem.GREM.random(key, N, [(0.5, 0.7), (0.5, 0.3)])
    funnel = rem.Funnel(base, base.random_state(jax.random.key(3)), 0.7, 1.0, "power")
    pvals = []
    for model, t in ((base, 1.0), (funnel, 0.9)):
        energies = np.asarray(model.all_energies())
        idx = _sample_indices(kernels.metropolis(model, t), model, jax.random.key(4), 1024, 60, 10, 6)
        pvals.append(_pvalue(idx, boltzmann(energies, t)))
        p_energy = _energy_pvalue(idx, energies, boltzmann(energies, t))
        p_wrong = _energy_pvalue(idx, energies, boltzmann(energies, 1.05 * t))
        assert p_energy > 1e-3, f"{type(model).__name__} at T={t}: energy χ² p = {p_energy:.2g}"
        assert p_wrong < 1e-3, f"{type(model).__name__}: samples at T={t} not rejected against 1.05·T ({p_wrong:.2g})"
    assert combined_pvalue(pvals) > 1e-3, pvals


def test_parallel_tempering_chi2_below_tc():
    """PT over 6 temperatures down to T = 0.45 < T_c = 0.6 (frozen REM): every rung against its Boltzmann law.

    128 independent PT runs, 400 sweeps of burn-in, then 8 samples 40 sweeps apart (walkers cross the ladder
    several times between samples; with 60/10 the low rungs are still visibly correlated)."""
    model = rem.REM.random(jax.random.key(5), N)
    energies = model.all_energies()
    temps = jnp.asarray([0.45, 0.6, 0.8, 1.1, 1.5, 2.0], jnp.float32)
    pt = kernels.parallel_tempering(lambda t: kernels.metropolis(model, t), temps)
    chains, burn, every, samples = 128, 400, 40, 8

    def one(key):
        k_x, k_i, k_r = jax.random.split(key, 3)
        xs = jax.vmap(model.random_state)(jax.random.split(k_x, temps.shape[0]))
        state = pt.init(k_i, xs)
        state, _ = run(pt, k_r, state, burn, every=burn)
        _, idx = run(pt, jax.random.fold_in(k_r, 1), state, samples * every, every=every,
                     observe=lambda s, i: jax.vmap(lambda x: rem.index_words(x)[0])(s.x))
        return idx  # (samples, temperatures)

    idx = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(6), chains)))
    pvals = [_pvalue(idx[:, :, j].ravel(), boltzmann(energies, float(t))) for j, t in enumerate(temps)]
    assert combined_pvalue(pvals) > 1e-3, pvals
    assert min(pvals) > 1e-4, pvals


def test_energy_tracking_and_vmap_over_temperatures():
    """The cached energy equals the model's energy after many sweeps; one program serves a temperature sweep."""
    model = rem.IsingPSpin.random(jax.random.key(7), N, 3)
    temps = jnp.asarray([0.3, 0.7, 1.5], jnp.float32)
    traces = []

    def sweep(t, key):
        traces.append(None)  # counts traces: vmap over t must trace once
        kernel = kernels.heat_bath(model, t)
        state = kernel.init(key, model.random_state(key))
        state, _ = run(kernel, key, state, 20, every=20)
        return state.x, state.energy

    xs, es = jax.jit(jax.vmap(sweep))(temps, jax.random.split(jax.random.key(8), 3))
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(es), np.asarray(jax.vmap(model.energy)(xs)), rtol=1e-5, atol=1e-5)
