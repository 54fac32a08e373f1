"""physics.rem: energy statistics, the index convention, exact enumeration against brute force and theory,
and the funnel's native occupancy against the exact finite-n theory (independent disorder samples, mean ± 3 se)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from physics import rem
from physics import theory as th
from tests.stats import assert_within

LN2 = np.log(2.0)


def _brute(energies, temps):
    e = np.asarray(energies, np.float64)
    lz = np.array([np.logaddexp.reduce(-e / t) for t in temps])
    u = np.array([np.sum(e * np.exp(-e / t - l)) for t, l in zip(temps, lz)])
    return lz, u


def test_index_convention():
    model = rem.REM.random(jax.random.key(0), 10)
    x = rem.spins_from_index(jnp.uint32(5), jnp.uint32(0), 10)
    np.testing.assert_array_equal(np.asarray(x), [1, -1, 1, -1, -1, -1, -1, -1, -1, -1])  # bits 0 and 2 of 5
    table = np.asarray(model.all_energies())
    for k in (0, 5, 777, 1023):
        xk = rem.spins_from_index(jnp.uint32(k), jnp.uint32(0), 10)
        assert int(rem.index_words(xk)[0]) == k
        assert float(model.energy(xk)) == table[k]
    # n = 64 uses the high word: states that differ only in spin 50 have different energies.
    big = rem.REM.random(jax.random.key(1), 64)
    y = big.random_state(jax.random.key(2))
    assert float(big.energy(y)) != float(big.energy(y.at[50].multiply(-1)))
    with pytest.raises(ValueError, match="n=65"):
        rem.REM.random(jax.random.key(0), 65)


def test_rem_energy_statistics():
    """All 2^16 energies of one sample: mean 0, Var n/2, Gaussian, and neighbouring states uncorrelated."""
    n = 16
    e = np.asarray(rem.REM.random(jax.random.key(3), n).all_energies(), np.float64)
    count = e.size
    var = n / 2
    assert_within(e.mean(), 0.0, np.sqrt(var / count), what="mean")
    assert_within(e.var(), var, var * np.sqrt(2 / count), what="variance")
    assert stats.kstest(e / np.sqrt(var), "norm").pvalue > 1e-3
    k = np.arange(count)
    for i in (0, 7, 15):  # states differing in spin i (index k ^ 2^i), and a disjoint sample's state k
        r = np.corrcoef(e, e[k ^ (1 << i)])[0, 1]
        assert_within(r, 0.0, 1 / np.sqrt(count), what=f"corr(E(σ), E(σ with spin {i} flipped))")
    other = np.asarray(rem.REM.random(jax.random.key(4), n).all_energies(), np.float64)
    assert_within(np.corrcoef(e, other)[0, 1], 0.0, 1 / np.sqrt(count), what="corr across samples")
    # The deep tail is Gaussian too (48-bit radius): the 2^16 minima of independent samples ~ extreme-value law.
    assert e.min() > -6.5 * np.sqrt(var)


def _disorder_energies(make, states, count=10000):
    keys = jax.random.split(jax.random.key(11), count)
    return np.asarray(jax.vmap(lambda k: jax.vmap(make(k).energy)(states))(keys), np.float64)


@pytest.mark.parametrize("p,couplings", [(3, "dense"), (5, "hashed")])
def test_ising_pspin_covariance(p, couplings):
    """Cov(H(σ), H(τ)) over 10000 disorder samples against the exact finite-n covariance (→ n q^p/2)."""
    n = 12
    model = rem.IsingPSpin.random(jax.random.key(0), n, p, couplings=couplings)
    sigma = np.ones(n, np.int8)
    states = []
    for flips in (0, 2, 4, 6):  # q = 1, 2/3, 1/3, 0
        tau = sigma.copy()
        tau[:flips] = -1
        states.append(tau)
    states = jnp.asarray(np.stack(states))
    e = _disorder_energies(lambda k: rem.IsingPSpin.random(k, n, p, couplings=couplings), states)
    for j, q in enumerate((1.0, 2 / 3, 1 / 3, 0.0)):
        prod = e[:, 0] * e[:, j]
        assert_within(prod.mean(), model.covariance(q)[0], prod.std(ddof=1) / np.sqrt(len(prod)),
                      what=f"Cov at q={q:.3f}")
    assert_within(e[:, 0].mean(), 0.0, e[:, 0].std(ddof=1) / np.sqrt(len(e)), what="mean")
    # the exact covariance tends to n q^p/2; for p = 2, e_2 = ((nq)² − n)/2 gives n q²/2 · (1 − 1/(n q²))
    big = rem.IsingPSpin.random(jax.random.key(0), 400, 2)
    assert big.covariance(0.5)[0] == pytest.approx(400 * 0.25 / 2 * (1 - 1 / 100), rel=1e-6)


def test_grem_covariance_by_tree_distance():
    n, a1 = 12, 0.3
    levels = [(0.5, a1), (0.5, 1 - a1)]
    sigma = np.ones(n, np.int8)
    same_branch = sigma.copy()
    same_branch[8] = -1  # differs only in the second level
    other_branch = sigma.copy()
    other_branch[2] = -1  # differs in the first level
    states = jnp.asarray(np.stack([sigma, same_branch, other_branch]))
    e = _disorder_energies(lambda k: rem.GREM.random(k, n, levels), states)
    for j, expect in ((0, n / 2), (1, a1 * n / 2), (2, 0.0)):
        prod = e[:, 0] * e[:, j]
        assert_within(prod.mean(), expect, prod.std(ddof=1) / np.sqrt(len(prod)), what=f"GREM Cov, state {j}")
    with pytest.raises(ValueError, match="levels"):
        rem.GREM.random(jax.random.key(0), n, [(0.3, 0.5), (0.7, 0.5)])


@pytest.mark.parametrize("kind", ["rem", "grem", "pspin", "funnel"])
def test_exact_enumeration_matches_brute_force(kind):
    n = 11
    key = jax.random.key(5)
    base = rem.REM.random(key, n)
    model = {
        "rem": base,
        "grem": rem.GREM.random(key, n, [(5 / 11, 0.6), (6 / 11, 0.4)]),
        "pspin": rem.IsingPSpin.random(key, n, {2: 0.5, 3: 1.0}),
        "funnel": rem.Funnel(base, base.random_state(jax.random.key(6)), 0.6, 2.0, "power"),
    }[kind]
    temps = np.array([0.05, 0.3, 0.7, 1.5])
    e = np.asarray(model.all_energies(), np.float64)
    lz, u = _brute(e, temps)
    ex = rem.exact_thermodynamics(model, temps, chunk_bits=8)  # 8 chunks: exercises the streaming combination
    # float32 energies, float32 chunk sums of ≤ 2^8 terms, moment series truncated at (βh/2)^6/6! ≲ 2e-8
    np.testing.assert_allclose(ex.log_z, lz, rtol=2e-6)
    np.testing.assert_allclose(ex.energy, u, rtol=2e-5, atol=2e-5)
    assert ex.ground_energy == e.min()
    if kind == "funnel":
        x = np.asarray(rem.spins_from_index(jnp.arange(2**n, dtype=jnp.uint32), jnp.zeros(2**n, jnp.uint32), n))
        agree = (x == np.asarray(model.native)).sum(axis=1)
        q, f = rem.free_energy_profile(ex)
        for ti, t in enumerate(temps):
            ref = np.array([-t * np.logaddexp.reduce(-e[agree == m] / t) for m in range(n + 1)])
            np.testing.assert_allclose(f[ti], ref, rtol=2e-6, atol=1e-6)


def test_rem_enumeration_against_derrida_n20():
    """⟨ln Z⟩/n of 6 samples at n = 20 against Derrida's f(T), with the known finite-size corrections.

    Above √2·T_c the relative variance of Z is ``Var Z/(EZ)² = (e^{nβ²/2} − 1)/2^n`` and E ln Z = ln EZ − ½ Var/(EZ)²
    + …, so f_n − f ≤ T Var/(EZ)²/n (allowance). Below T_c, f_n ≈ E[min E]/n, whose extreme-value correction is
    ``(ln(4πn ln 2) − 2γ)/(4n√ln 2)`` (= +0.060 at n = 20), and the thermal part −T E ln Σ e^{−β(E−E_min)}/n lies
    in [−T·(ψ(1) − ψ(1 − T/T_c) + 1)/n, 0] (Poisson–Dirichlet entropy bound): allowance T·3/n.
    """
    n, temps = 20, np.array([0.3, 1.0, 1.5])
    vals = []
    for s in range(6):
        ex = rem.exact_thermodynamics(rem.REM.random(jax.random.key(100 + s), n), temps)
        vals.append(np.concatenate([-temps * ex.log_z / n, ex.entropy / n]))
    vals = np.array(vals)
    mean, se = vals.mean(0), vals.std(0, ddof=1) / np.sqrt(len(vals))
    for i, t in enumerate(temps):
        if t > np.sqrt(2) * th.rem_critical_temperature():
            rel_var = np.expm1(n / (2 * t**2)) / 2**n
            assert_within(mean[i], th.rem_free_energy(t), se[i], allowance=t * rel_var / n, what=f"f(T={t})")
            assert_within(mean[3 + i], th.rem_entropy(t), se[3 + i], allowance=2 * rel_var, what=f"s(T={t})")
        else:
            ev = (np.log(4 * np.pi * n * LN2) - 2 * np.euler_gamma) / (4 * n * np.sqrt(LN2))
            assert_within(mean[i], th.rem_free_energy(t) + ev, se[i], allowance=3 * t / n, what=f"f(T={t})")


def test_frozen_phase():
    """Below T_c the entropy is O(1), not extensive (s → 0), and two replicas share a state (Y = O(1))."""
    t_lo, t_hi = 0.3, 1.5
    for n in (12, 16):
        ent, y = [], []
        for s in range(8):
            ex = rem.exact_thermodynamics(rem.REM.random(jax.random.key(200 + s), n), [t_lo, t_hi])
            ent.append(ex.entropy)
            y.append(ex.participation)
        ent, y = np.array(ent), np.array(y)
        # Poisson–Dirichlet limit E S = ψ(1) − ψ(1 − T/T_c) = 1.38 at T = 0.3: S/n below 3/n, far below s(T_hi)
        assert ent[:, 0].mean() / n < 3.0 / n < th.rem_entropy(t_hi)
        assert_within(ent[:, 1].mean() / n, th.rem_entropy(t_hi), ent[:, 1].std(ddof=1) / np.sqrt(8) / n,
                      allowance=0.01, what=f"s(T={t_hi}), n={n}")
        # Y = Z(2β)/Z(β)²: E Y = 1 − T/T_c = 0.5 below T_c; above, Y ≈ e^{n(β²/2 − ln 2)} → 0
        assert y[:, 0].mean() > 0.3
        annealed = np.exp(n * (0.5 / t_hi**2 - LN2))
        assert y[:, 1].mean() < 3 * annealed


def test_funnel_native_occupancy_n16():
    """REM + native state at n = 16: enumerated native weight, averaged over 12 samples, vs the exact theory."""
    n, gap, count = 16, 0.9, 12
    temps = np.array([0.35, 0.6, 0.8, 1.0])
    occ = []
    for s in range(count):
        key_b, key_n = jax.random.split(jax.random.key(300 + s))
        base = rem.REM.random(key_b, n)
        funnel = rem.Funnel(base, base.random_state(key_n), gap)
        assert float(funnel.energy(funnel.native)) == pytest.approx(-n * gap)
        ex = rem.exact_thermodynamics(funnel, temps)
        occ.append(np.exp(-n * (-gap) / temps - ex.log_z))  # p_native = e^{−βE_N}/Z
        np.testing.assert_allclose(occ[-1], np.exp(ex.log_z_agree[:, n] - ex.log_z), rtol=1e-5)
    occ = np.array(occ)
    theory = th.rem_native_occupancy(temps, gap, n)
    for i, t in enumerate(temps):
        assert_within(occ[:, i].mean(), theory[i], occ[:, i].std(ddof=1) / np.sqrt(count), what=f"p_N(T={t})")


def test_folding_temperature_trend():
    """T_f from native occupancy = ½ (exact finite-n theory) rises with δE_s/ΔE and approaches the BW value."""
    from scipy.optimize import brentq

    n = 16
    tg, _ = th.bryngelson_wolynes(n * LN2, np.sqrt(n / 2), 1.0)
    ratios = []
    for gap in (1.0, 1.4):
        tf = brentq(lambda t: th.rem_native_occupancy(t, gap, n) - 0.5, 0.3, 3.0, xtol=2e-3)
        _, tf_bw = th.bryngelson_wolynes(n * LN2, np.sqrt(n / 2), n * gap)
        # finite n: ln(2^n − 1) vs n ln 2 and the Jensen gap E ln Z_mis < ln E Z_mis shift T_f by a few percent
        assert tf == pytest.approx(tf_bw, rel=0.1)
        ratios.append(tf / tg)
    assert ratios[1] > ratios[0] > 1


def test_folding_time_glassy_slowdown():
    """Folding (first passage to Q = 1) is fast near T_f and slows down in the glass: at T = 0.15 some starts stay
    trapped for 300 sweeps and the mean time exceeds that near T_f by more than 3 standard errors.

    Pooled over 4 disorder samples × 32 starts: the trapped fraction varies from sample to sample (6%–34% over
    keys 9–16), so one sample's 32 starts do not make a test that is robust to the realization."""
    n = 12
    times = {0.15: [], 1.0: []}
    for s in range(4):
        base = rem.REM.random(jax.random.key(9 + s), n)
        funnel = rem.Funnel(base, base.random_state(jax.random.key(10 + s)), 1.5, 1.0, "power")
        for t in times:
            tt, folded = rem.folding_time(jax.random.key(1 + s), funnel, t, num_starts=32, max_sweeps=300)
            times[t].append(np.asarray(tt, np.float64))
            if t == 1.0:
                assert bool(jnp.all(folded))
    cold, hot = np.concatenate(times[0.15]), np.concatenate(times[1.0])
    assert np.any(cold == 300)  # some starts trapped for the whole run
    diff = cold.mean() - hot.mean()
    se = np.hypot(cold.std(ddof=1) / np.sqrt(cold.size), hot.std(ddof=1) / np.sqrt(hot.size))
    assert diff > 3 * se, (diff, se)
