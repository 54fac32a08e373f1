"""Dynamics on the sphere: equilibrium energies, detailed balance, gradient descent to minima, tempering."""
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

import physics
from physics import kernels, spherical, theory
from physics.observables import mean_stderr
from tests.stats import assert_within, chi2_pvalue, combined_pvalue


def _quenched_chains(make_kernel, n, replicas, steps, every, key):
    """Each replica: its own disorder sample and random start; returns energies per spin, shape (replicas, time)."""
    k_dis, k_x, k_run = jax.random.split(key, 3)

    def one(kd, kx, kr):
        model = spherical.PSpin.random(kd, n, 3)
        kernel = make_kernel(model)
        state = kernel.init(kx, model.random_state(kx))
        _, trace = physics.run(kernel, kr, state, steps, every=every)
        return trace / n

    keys = [jax.random.split(k, replicas) for k in (k_dis, k_x, k_run)]
    return np.asarray(jax.jit(jax.vmap(one))(*keys), np.float64)


def _time_average(trace, burn_fraction=0.25):
    return trace[:, int(burn_fraction * trace.shape[1]):].mean(axis=1)


# Finite-size allowance at T = 1 > T_d, n = 64. The covariance is exactly n ξ(q), so the annealed energy is
# exactly -ξ(1)/T at every n; the quenched one differs by -∂_β(E ln Z - ln E Z)/n. From the second moment,
# E Z²/(E Z)² - 1 ≈ n²β⁴E[q⁶]/8 = 15β⁴/(8n) (overlap q of two uniform points, E q⁶ = 15/n³), so
# E ln Z - ln E Z ≈ -15β⁴/(16n) and the energy per spin moves by 15β³/(4n²) ≈ 0.001 at n = 64. We allow twice that.
N_EQ, T_EQ = 64, 1.0
ALLOWANCE = 2 * 15 / (4 * N_EQ**2 * T_EQ**3)


def test_langevin_equilibrium_energy_at_T1():
    # Euler–Maruyama is weakly first order: e(η) = e(0) + a η + O(η²). Two step sizes with the same physical time
    # give the Richardson extrapolation 2 e(η/2) - e(η), whose error bar combines both runs.
    replicas, time_units = 32, 40
    results = []
    for eta in (0.02, 0.01):
        steps = int(time_units / eta)
        trace = _quenched_chains(lambda m, eta=eta: kernels.langevin(m, T_EQ, eta), N_EQ, replicas, steps,
                                 steps // 200, jax.random.key(int(1 / eta)))
        results.append(mean_stderr(_time_average(trace)))
    (e1, s1), (e2, s2) = results
    extrapolated, err = 2 * e2 - e1, math.sqrt(4 * s2**2 + s1**2)
    expected = theory.pspin_paramagnetic_energy(T_EQ, 3)
    assert_within(extrapolated, expected, err, allowance=ALLOWANCE, what="Langevin e(T=1), η → 0")


def test_metropolis_equilibrium_energy_at_T1():
    replicas, steps = 32, 4000
    trace = _quenched_chains(lambda m: kernels.metropolis(m, T_EQ, 0.12), N_EQ, replicas, steps, 20,
                             jax.random.key(11))
    e, err = mean_stderr(_time_average(trace))
    assert_within(e, theory.pspin_paramagnetic_energy(T_EQ, 3), err, allowance=ALLOWANCE, what="Metropolis e(T=1)")


def test_metropolis_proposal_is_symmetric():
    # The proposal density depends only on the angle between s and s' and its law is the same at every s: the
    # angle's distribution from two different points agrees (KS), and the move direction is isotropic in the
    # tangent plane (its mean vanishes). Together: q(s→s') = f(angle) = q(s'→s).
    n, count, h = 6, 20000, 0.4
    model = spherical.PSpin.random(jax.random.key(0), n, 3)
    kernel = kernels.metropolis(model, 1e9, h)  # T → ∞: every proposal accepted, so steps show the proposal

    def proposals(s, key):
        st = kernel.init(key, s)
        return jax.vmap(lambda k: kernel.step(k, st)[0].x)(jax.random.split(key, count))

    angles, directions = [], []
    for i in range(2):
        s = spherical.random_state(jax.random.key(100 + i), n)
        x = np.asarray(proposals(s, jax.random.key(200 + i)), np.float64)
        s = np.asarray(s, np.float64)
        cos = np.clip(x @ s / n, -1, 1)
        angles.append(np.arccos(cos))
        tangent = x - np.outer(cos, s)
        directions.append(tangent / np.linalg.norm(tangent, axis=1, keepdims=True))
    assert stats.ks_2samp(angles[0], angles[1]).pvalue > 1e-3
    for d in directions:
        mean = d.mean(axis=0)
        assert np.all(np.abs(mean) < 4 * d.std(axis=0) / math.sqrt(count))


def _sphere_quadrature(model, temperature, bins, n_theta=600, n_phi=1200):
    """Boltzmann probabilities of energy bins on the n = 3 sphere of radius √3, by quadrature in (θ, φ)."""
    theta = (np.arange(n_theta) + 0.5) * np.pi / n_theta
    phi = (np.arange(n_phi) + 0.5) * 2 * np.pi / n_phi
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    pts = math.sqrt(3) * np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    e = np.asarray(jax.vmap(model.energy)(jnp.asarray(pts, jnp.float32)), np.float64)
    w = np.sin(th).reshape(-1) * np.exp(-(e - e.min()) / temperature)
    hist, _ = np.histogram(e, bins=bins, weights=w)
    return hist / hist.sum()


def test_metropolis_samples_the_boltzmann_law_on_the_n3_sphere():
    # Detailed balance ⇒ the Boltzmann law is stationary: the energy histogram of independent chains (one sample
    # per chain, after a long run) against exact quadrature over the sphere, χ² over two disorder samples.
    n, temperature, chains, steps = 3, 0.5, 4000, 300
    pvalues = []
    for d in range(2):
        model = spherical.PSpin.random(jax.random.key(300 + d), n, 3)
        kernel = kernels.metropolis(model, temperature, 0.8)

        def final(key):
            k0, k1 = jax.random.split(key)
            st, _ = physics.run(kernel, k1, kernel.init(k0, model.random_state(k0)), steps, every=steps)
            return st.energy

        e = np.asarray(jax.jit(jax.vmap(final))(jax.random.split(jax.random.key(400 + d), chains)))
        bins = np.quantile(e, np.linspace(0, 1, 21))
        bins[0], bins[-1] = -10.0, 10.0
        counts, _ = np.histogram(e, bins=bins)
        pvalues.append(chi2_pvalue(counts, _sphere_quadrature(model, temperature, bins)))
    assert combined_pvalue(pvalues) > 1e-3, pvalues


def test_gradient_descent_ends_in_minima_between_ground_state_and_threshold():
    n, starts, p = 128, 12, 3
    model = spherical.PSpin.random(jax.random.key(21), n, p)
    kernel = kernels.gradient_descent(model, 0.1, 1e-4)

    def descend(key):
        st = kernel.init(key, model.random_state(key))
        st, _ = physics.run(kernel, key, st, 4000, every=4000)
        return st, spherical.tangent_eigenvalues(model, st.x)

    st, ev = jax.jit(jax.vmap(descend))(jax.random.split(jax.random.key(22), starts))
    e, ev = np.asarray(st.energy, np.float64) / n, np.asarray(ev, np.float64)
    assert np.all(st.converged) and np.all(st.grad_norm < 1e-4)
    # minima: no negative direction beyond the convergence tolerance
    assert np.all(ev[:, 0] > -1e-3), ev[:, 0]
    # energies between E_0 and the threshold. Allowances: the finite-n ground state fluctuates on the scale
    # n^{-2/3} (0.04 at n = 128); a minimum's spectrum edge -p e - √(2p(p-1)) may sit above 0 by Tracy–Widom
    # fluctuations of about r n^{-2/3}, i.e. e may exceed E_th by ~ 3 r n^{-2/3} / p.
    e0, eth = theory.pspin_ground_state_energy(p), theory.pspin_threshold_energy(p)
    centre_th, radius = theory.pspin_hessian_semicircle(eth, p)
    assert np.all(e > e0 - n ** (-2 / 3)), e
    assert np.all(e < eth + 3 * radius * n ** (-2 / 3) / p), e
    # Hessian spectrum: centre -p e up to the O(1/n) radial and trace terms, variance r²/4 (semicircle)
    # tangent-space mean = -p e - p(p-1) e/(n-1) + tr∇²H/(n-1), tr∇²H = O(1) (std ≈ p(p-1)/√6 at random points)
    centre = -p * e - p * (p - 1) * e / (n - 1)
    trace_scale = p * (p - 1) / math.sqrt(6) / (n - 1)
    np.testing.assert_array_less(np.abs(ev.mean(axis=1) - centre), 4 * trace_scale)
    var, var_err = mean_stderr(ev.var(axis=1))
    assert_within(var, radius**2 / 4 * (n - 2) / n, var_err, allowance=radius**2 / 4 * 2 / n,
                  what="Hessian eigenvalue variance")


def test_langevin_at_zero_temperature_is_gradient_flow():
    n = 32
    model = spherical.PSpin.random(jax.random.key(31), n, 3)
    x = model.random_state(jax.random.key(32))
    lan, gd = kernels.langevin(model, 0.0, 0.05), kernels.gradient_descent(model, 0.05, 0.0)
    s1, _ = physics.run(lan, jax.random.key(1), lan.init(None, x), 50)
    s2, _ = physics.run(gd, jax.random.key(2), gd.init(None, x), 50)
    np.testing.assert_allclose(s1.x, s2.x, rtol=1e-4, atol=1e-4)
    assert float(s1.energy) < float(model.energy(x))


def test_temperature_sweep_compiles_once():
    n = 16
    model = spherical.PSpin.random(jax.random.key(41), n, 3)
    x = model.random_state(jax.random.key(42))
    traces = []

    @jax.jit
    def run(temperature, step):
        traces.append(1)
        k = kernels.langevin(model, temperature, step)
        return physics.run(k, jax.random.key(0), k.init(None, x), 10)[0].energy

    for t in (0.5, 1.0, 2.0):
        run(jnp.float32(t), jnp.float32(0.01))
    assert len(traces) == 1


def test_parallel_tempering_swaps_and_round_trips():
    # Paramagnetic ladder (all T > T_d): energies are Gaussian with mean -nβ/2 and variance n/2, so the swap
    # acceptance of a pair is E[min(1, e^x)], x ~ N(-σ²/2, σ²), σ = √n Δβ: exactly erfc(σ / (2√2)).
    n, ensembles, steps = 32, 16, 1500
    temps = jnp.array([1.0, 1.25, 1.5, 1.8, 2.2], jnp.float32)

    def one(kd, kr):
        model = spherical.PSpin.random(kd, n, 3)
        pt = kernels.parallel_tempering(lambda t: kernels.metropolis(model, t, 0.15), temps)
        xs = jax.vmap(model.random_state)(jax.random.split(kr, temps.shape[0]))
        state = pt.init(kr, xs)
        state, (att, acc) = physics.run(pt, kr, state, steps,
                                        observe=lambda s, i: (i.swap_attempted, i.swap_accepted))
        burn = steps // 5
        rate = acc[burn:].sum(0) / jnp.maximum(att[burn:].sum(0), 1)
        return rate, state.round_trips

    keys = jax.random.split(jax.random.key(51), 2 * ensembles).reshape(2, ensembles)
    rates, trips = jax.jit(jax.vmap(one))(keys[0], keys[1])
    rates = np.asarray(rates, np.float64)
    betas = 1 / np.asarray(temps, np.float64)
    sigma = math.sqrt(n) * (betas[:-1] - betas[1:])
    expected = 2 * stats.norm.sf(sigma / 2)  # = erfc(σ/(2√2))
    mean, err = mean_stderr(rates)
    for i in range(len(expected)):
        # O(1/n) allowance: the energy distribution's variance n/2 and mean -nβ/2 hold up to O(1) corrections
        assert_within(mean[i], expected[i], err[i], allowance=0.03, what=f"swap acceptance of pair {i}")
    assert np.all(np.asarray(trips) >= 1), trips
