"""Dynamics on the sphere: equilibrium energies, detailed balance, gradient descent to minima, tempering."""
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

import physics
from physics import kernels, spherical, theory
from physics.observables import mean_stderr
from tests.stats import assert_within, chi2_pvalue, combined_pvalue

# --- the paramagnet's equilibrium energy: one harness for Metropolis and Langevin, with negative controls --------
#
# Finite-size band at n = 32, T = 1 > T_d. The covariance is exactly n ξ(q), so the annealed energy is exactly
# -ξ(1)/T at every n; the quenched one differs by -∂_β(E ln Z - ln E Z)/n. From the second moment,
# E Z²/(E Z)² - 1 ≈ n²β⁴E[q⁶]/8 = 15β⁴/(8n) (overlap q of two uniform points, E q⁶ ≈ 15/n³), so
# E ln Z - ln E Z ≈ -15β⁴/(16n) and the energy per spin rises by c = 15β³/(4n²) = 0.0037. The next orders are
# smaller than c at n = 32: the full second moment over the exact overlap law (density ∝ (1-q²)^((n-3)/2), by
# quadrature) gives 0.0051, and long Metropolis runs (256 replicas × 8000 and 12000 steps, two seeds) measured
# 0.0057 ± 0.0012 (at n = 16: 0.0124 ± 0.0032 against 15/(4n²) = 0.0146). The band is -β/2 + [0, 2c]: its centre
# is -β/2 + c and its half-width (the allowance) c.
N_EQ, T_EQ = 32, 1.0
T_WRONG = 1.05 * T_EQ  # the negative controls: samples 5% too hot must fall outside the band (Δe = 0.024 ≫ c)
K = 3.0


@partial(jax.jit, static_argnames=("kind", "n", "replicas", "steps", "every"))
def _quenched_chains(key, temperature, step_size, *, kind, n, replicas, steps, every):
    """Each replica: its own disorder sample and random start; energies per spin, shape (replicas, time).

    Temperature and step size are traced, so a positive test and its negative control share one compiled program.
    """
    k_dis, k_x, k_run = jax.random.split(key, 3)

    def one(kd, kx, kr):
        model = spherical.PSpin.random(kd, n, 3)
        kernel = getattr(kernels, kind)(model, temperature, step_size)
        state = kernel.init(kx, model.random_state(kx))
        _, trace = physics.run(kernel, kr, state, steps, every=every)
        return trace / n

    keys = [jax.random.split(k, replicas) for k in (k_dis, k_x, k_run)]
    return jax.vmap(one)(*keys)


def _time_average(trace, burn_fraction=0.25):
    trace = np.asarray(trace, np.float64)
    return trace[:, int(burn_fraction * trace.shape[1]):].mean(axis=1)


def _energy_excess(estimate, stderr):
    """The harness: how many standard errors an estimate of e(T_EQ) lies outside the band (≤ K accepts)."""
    shift = 15 / (4 * N_EQ**2 * T_EQ**3)
    expected = theory.pspin_paramagnetic_energy(T_EQ, 3) + shift
    excess = (abs(estimate - expected) - shift) / stderr
    return excess, (f"e = {estimate:.5f} ± {stderr:.5f} vs {expected:.5f} ± {shift:.4f} (T = {T_EQ}, n = {N_EQ}): "
                    f"{excess:.2f} standard errors outside the band")


def _metropolis_energy(temperature):
    # h = 0.3: acceptance 1/3 and the shortest energy autocorrelation time (≈ 110 steps) among h = 0.15 … 0.4
    trace = _quenched_chains(jax.random.key(11), jnp.float32(temperature), jnp.float32(0.3), kind="metropolis",
                             n=N_EQ, replicas=128, steps=8000, every=20)
    return mean_stderr(_time_average(trace))


def _langevin_energy(temperature):
    """Euler–Maruyama is weakly first order: e(η) = e(0) + a η + b η². Step sizes η and η/4 over the same physical
    time give the extrapolation (4 e(η/4) - e(η))/3 = e(0) - b η²/4, its error bar combining both runs (more
    replicas at η/4, whose weight is 4/3: that allocation minimizes the cost of a given error)."""
    # The remainder b η²/4: e(η) at η = 0.08, 0.04, 0.02, 0.01 (256 replicas) gives b ≲ 2.5, so ≤ 0.001 at
    # η = 0.04 — inside the allowance c = 0.0037.
    time_units = 40
    results = []
    for eta, replicas in ((0.04, 128), (0.01, 256)):
        steps = round(time_units / eta)
        trace = _quenched_chains(jax.random.key(round(1 / eta)), jnp.float32(temperature), jnp.float32(eta),
                                 kind="langevin", n=N_EQ, replicas=replicas, steps=steps, every=steps // 200)
        results.append(mean_stderr(_time_average(trace)))
    (e1, s1), (e4, s4) = results
    return (4 * e4 - e1) / 3, math.sqrt(16 * s4**2 + s1**2) / 3


def test_metropolis_equilibrium_energy_at_T1():
    excess, message = _energy_excess(*_metropolis_energy(T_EQ))
    assert excess <= K, message


def test_metropolis_energy_harness_rejects_samples_5_percent_too_hot():
    excess, message = _energy_excess(*_metropolis_energy(T_WRONG))
    assert excess > K, message


def test_langevin_equilibrium_energy_at_T1():
    excess, message = _energy_excess(*_langevin_energy(T_EQ))
    assert excess <= K, message


def test_langevin_energy_harness_rejects_samples_5_percent_too_hot():
    excess, message = _energy_excess(*_langevin_energy(T_WRONG))
    assert excess > K, message


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


@partial(jax.jit, static_argnames=("chains", "steps"))
def _final_energies(model, temperature, key, *, chains, steps):
    """Energies of independent Metropolis chains after ``steps`` steps from uniform random starts."""
    kernel = kernels.metropolis(model, temperature, 0.8)

    def final(k):
        k0, k1 = jax.random.split(k)
        st, _ = physics.run(kernel, k1, kernel.init(k0, model.random_state(k0)), steps, every=steps)
        return st.energy

    return jax.vmap(final)(jax.random.split(key, chains))


BOLTZMANN_T = 0.5


def _boltzmann_law_pvalue(sample_temperature):
    """The harness: χ² of Metropolis energies sampled at ``sample_temperature`` against the exact Boltzmann law at
    BOLTZMANN_T on the n = 3 sphere, combined over two disorder samples (Fisher)."""
    # 10000 chains in 10 equiprobable bins: with 4000 chains in 20 bins a 5% error in T went undetected (p = 0.04);
    # the histogram's power is in the mean shift Var(E) Δβ, which fewer, fuller bins resolve better.
    pvalues = []
    for d in range(2):
        model = spherical.PSpin.random(jax.random.key(300 + d), 3, 3)
        e = np.asarray(_final_energies(model, jnp.float32(sample_temperature), jax.random.key(400 + d),
                                       chains=10000, steps=300), np.float64)
        bins = np.quantile(e, np.linspace(0, 1, 11))
        bins[0], bins[-1] = -10.0, 10.0
        counts, _ = np.histogram(e, bins=bins)
        pvalues.append(chi2_pvalue(counts, _sphere_quadrature(model, BOLTZMANN_T, bins)))
    return combined_pvalue(pvalues), pvalues


def test_metropolis_samples_the_boltzmann_law_on_the_n3_sphere():
    # Detailed balance ⇒ the Boltzmann law is stationary: the energy histogram of independent chains (one sample
    # per chain, after a long run) against exact quadrature over the sphere.
    p, pvalues = _boltzmann_law_pvalue(BOLTZMANN_T)
    assert p > 1e-3, pvalues


def test_boltzmann_law_harness_rejects_samples_5_percent_too_hot():
    p, pvalues = _boltzmann_law_pvalue(1.05 * BOLTZMANN_T)
    assert p < 1e-6, pvalues


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


# Parallel tempering on a paramagnetic ladder (all T > T_d). The acceptance of a swap between β_c > β_h is exactly
# 2 P(E_c > E_h) for any density of states (detailed balance of the pair), and with Gaussian energies of mean μ(β)
# and variance v(β) that is 2Φ((μ_c - μ_h)/√(v_c + v_h)). Annealed: μ = -nβ/2, v = n/2, so 2Φ(-σ/2) = erfc(σ/(2√2))
# with σ = √n Δβ. Quenched to O(1/n) (E ln Z = nβ²/4 - 15β⁴/(16n), as for the energy band above):
# μ = -nβ/2 + 15β³/(4n) and v = n/2 - 45β²/(4n), which moves the acceptances by 0.0005 … 0.0037 at n = 32. The
# allowance is that O(1/n) shift again, for the next order (the energy check above puts it below the first).
PT_N = 32
# σ = 1.70, 1.41, 1.13: acceptances 0.40 … 0.57, near σ = 2 where a 5% change of the temperatures moves them most
# (dA/d ln σ = -σ φ(σ/2)); the former ladder 1 … 2.2 (σ ≈ 0.6 … 1.1) moved them half as much or less.
PT_BETAS = np.array([1.0, 0.7, 0.45, 0.25])


def _swap_acceptance_theory(betas, n):
    mu = -n * betas / 2 + 15 * betas**3 / (4 * n)
    var = n / 2 - 45 * betas**2 / (4 * n)
    quenched = 2 * stats.norm.cdf((mu[:-1] - mu[1:]) / np.sqrt(var[:-1] + var[1:]))
    annealed = 2 * stats.norm.sf(math.sqrt(n) * (betas[:-1] - betas[1:]) / 2)
    return quenched, np.abs(quenched - annealed)


@partial(jax.jit, static_argnames=("ensembles", "steps", "burn"))
def _tempering_run(temperatures, key, *, ensembles, steps, burn):
    """Per ensemble (own disorder, own starts): swap acceptance of each pair after ``burn`` steps, round trips."""

    def one(kd, kr):
        model = spherical.PSpin.random(kd, PT_N, 3)
        pt = kernels.parallel_tempering(lambda t: kernels.metropolis(model, t, 0.3), temperatures)
        xs = jax.vmap(model.random_state)(jax.random.split(kr, temperatures.shape[0]))
        state, (att, acc) = physics.run(pt, kr, pt.init(kr, xs), steps,
                                        observe=lambda s, i: (i.swap_attempted, i.swap_accepted))
        rate = acc[burn:].sum(0) / jnp.maximum(att[burn:].sum(0), 1)
        return rate, state.round_trips

    keys = jax.random.split(key, 2 * ensembles).reshape(2, ensembles)
    return jax.vmap(one)(keys[0], keys[1])


def _swap_acceptance_excess(temperature_factor):
    """The harness: PT run at ``temperature_factor`` × the ladder 1/PT_BETAS; per pair, how many standard errors
    the mean acceptance over 64 ensembles lies beyond the theory's allowance for the nominal ladder (≤ K accepts).
    Returns the excesses and the fewest round trips of any ensemble."""
    temps = jnp.asarray(temperature_factor / PT_BETAS, jnp.float32)
    rates, trips = _tempering_run(temps, jax.random.key(51), ensembles=64, steps=4000, burn=1000)
    mean, err = mean_stderr(np.asarray(rates, np.float64))
    expected, allowance = _swap_acceptance_theory(PT_BETAS, PT_N)
    return (np.abs(mean - expected) - allowance) / err, int(np.min(trips))


def test_parallel_tempering_swaps_and_round_trips():
    excess, fewest_trips = _swap_acceptance_excess(1.0)
    assert np.all(excess <= K), excess
    assert fewest_trips >= 1


def test_swap_acceptance_harness_rejects_a_ladder_5_percent_too_hot():
    excess, _ = _swap_acceptance_excess(1.05)
    assert np.max(excess) > K, excess


def test_batched_is_a_loop_of_single_chains_with_split_keys():
    # kernels.batched(kernel, size): chain i gets split(key, size)[i] at init and at every step
    size, steps = 3, 4
    model = spherical.PSpin.random(jax.random.key(61), 8, 3)
    kernel = kernels.metropolis(model, 0.7, 0.5)
    xs = jax.vmap(model.random_state)(jax.random.split(jax.random.key(62), size))
    batch = kernels.batched(kernel, size)
    batch_step, single_step = jax.jit(batch.step), jax.jit(kernel.step)
    key = jax.random.key(63)
    state = batch.init(key, xs)
    step_keys = [jax.random.fold_in(key, t) for t in range(steps)]
    accepted = []
    for k in step_keys:
        state, info = batch_step(k, state)
        accepted.append(np.asarray(info.accepted))
    for i in range(size):
        single = kernel.init(jax.random.split(key, size)[i], xs[i])
        for t, k in enumerate(step_keys):
            single, info = single_step(jax.random.split(k, size)[i], single)
            assert float(info.accepted) == accepted[t][i]
        np.testing.assert_allclose(np.asarray(state.x[i]), np.asarray(single.x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(float(state.energy[i]), float(single.energy), rtol=1e-6, atol=1e-6)
    # the chains are independent: distinct keys, distinct moves
    assert len({tuple(np.round(np.asarray(x), 5)) for x in state.x}) == size
    assert 0 < np.mean(accepted) < 1  # both branches of the accept step were exercised
