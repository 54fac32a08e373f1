"""Tests of physics.rg: exact 1D decimation, block spins, MCRG exponents of the 2D Ising model, RG flow."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import kernels, lattice, rg, run, theory
from tests.stats import assert_within


# --------------------------------------------------------------------------------------------- samplers
def ising_samples(key, L, K, replicas, num, every, *, kernel="wolff", therm=200, ordered_start=False):
    """Equilibrium L×L Ising samples ``(replicas, num, L, L)`` int8 from the engine (independent replicas)."""
    model = lattice.Ising((L, L))
    kern = getattr(kernels, kernel)(model, 1.0 / K)

    def one(k):
        k0, k1, k2 = jax.random.split(k, 3)
        x0 = jnp.ones((L, L), jnp.int8) if ordered_start else model.random_state(k0)
        state, _ = run(kern, k1, kern.init(k0, x0), therm, observe=lambda s, i: s.energy, every=therm)
        _, xs = run(kern, k2, state, num * every, observe=lambda s, i: s.x, every=every)
        return xs

    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(key, replicas)))


def open_chain_samples(rng, K, n, num):
    """Exact samples of an open 1D Ising chain: a Markov chain with P(s_{i+1} = s_i) = e^K / (2 cosh K)."""
    same = rng.random((num, n - 1)) < np.exp(K) / (2 * np.cosh(K))
    first = np.where(rng.random((num, 1)) < 0.5, 1, -1)
    return np.concatenate([first, first * np.cumprod(np.where(same, 1, -1), axis=1)], axis=1).astype(np.int8)


# --------------------------------------------------------------------------------------------- 1D decimation
@pytest.mark.parametrize("b", [2, 3, 4])
def test_decimate_1d_against_brute_force_trace(b):
    """Σ over the b-1 inner spins of Π e^{K s s'} = A e^{K' s_0 s_b}: K' and ln A by enumeration."""
    for K in (0.1, 0.5, 1.3):
        def z(s0, sb):
            tot = 0.0
            for inner in itertools.product((-1, 1), repeat=b - 1):
                s = (s0, *inner, sb)
                tot += np.exp(K * sum(s[i] * s[i + 1] for i in range(b)))
            return tot

        kp = 0.5 * np.log(z(1, 1) / z(1, -1))
        ln_a = 0.5 * np.log(z(1, 1) * z(1, -1))
        np.testing.assert_allclose(rg.decimate_1d(K, b), kp, rtol=1e-12)
        np.testing.assert_allclose(rg.decimate_1d_constant(K, b), ln_a, rtol=1e-12)
        np.testing.assert_allclose(np.tanh(rg.decimate_1d(K, b)), np.tanh(K) ** b, rtol=1e-12)
    K = np.linspace(0.05, 2.0, 7)
    if b == 2:
        np.testing.assert_allclose(rg.decimate_1d(K, 2), 0.5 * np.log(np.cosh(2 * K)), rtol=1e-12)


def test_decimation_correlation_length_and_free_energy_against_transfer_matrix():
    """ξ from the 2×2 transfer matrix equals -1/ln tanh K and shrinks by b per step; ln Z recursion on rings."""
    for K in (0.2, 0.7, 1.5):
        T = np.array([[np.exp(K), np.exp(-K)], [np.exp(-K), np.exp(K)]])
        lam = np.sort(np.linalg.eigvalsh(T))[::-1]
        xi = 1.0 / np.log(lam[0] / lam[1])
        np.testing.assert_allclose(rg.ising_1d_correlation_length(K), xi, rtol=1e-12)
        for b in (2, 3):
            np.testing.assert_allclose(rg.ising_1d_correlation_length(rg.decimate_1d(K, b)), xi / b, rtol=1e-10)
    # ring of n spins: ln Z by enumeration, and ln Z_n(K) = (n/b) ln A(K) + ln Z_{n/b}(K')
    n = 12
    configs = np.array(list(itertools.product((-1, 1), repeat=n)))
    bonds = np.sum(configs * np.roll(configs, -1, axis=1), axis=1)
    for K in (0.3, 0.9):
        lnz = np.log(np.sum(np.exp(K * bonds)))
        np.testing.assert_allclose(rg.ising_1d_log_partition(K, n), lnz, rtol=1e-12)
        for b in (2, 3):
            rhs = n / b * rg.decimate_1d_constant(K, b) + rg.ising_1d_log_partition(rg.decimate_1d(K, b), n // b)
            np.testing.assert_allclose(rhs, lnz, rtol=1e-12)


def test_decimating_sampled_chains_gives_decimated_coupling():
    """Keeping every b-th spin of exact open-chain samples at K: <s s'> of the kept chain = tanh K' (3σ)."""
    rng = np.random.default_rng(0)
    K = 0.8
    x = open_chain_samples(rng, K, 64, 4000)
    for b in (2, 4):
        kept = np.asarray(rg.block_spin(x, b, rule="decimation", ndim=1)).astype(np.float64)
        per_sample = np.mean(kept[:, :-1] * kept[:, 1:], axis=1)
        assert_within(per_sample.mean(), np.tanh(rg.decimate_1d(K, b)), per_sample.std(ddof=1) / np.sqrt(len(x)),
                      what=f"<s s'> after decimation b={b}")


def test_decimate_1d_validates():
    with pytest.raises(ValueError, match="b="):
        rg.decimate_1d(0.5, 1)


# --------------------------------------------------------------------------------------------- block spins
def test_majority_rule_on_hand_made_configurations():
    x = np.array([[1, 1, -1, -1, 1, -1],
                  [1, -1, -1, -1, 1, 1],
                  [-1, -1, 1, 1, 1, 1],
                  [-1, 1, 1, -1, -1, 1],
                  [1, 1, 1, 1, -1, -1],
                  [1, 1, 1, -1, -1, -1]], np.int8)
    # b = 3: no ties
    expected3 = np.array([[-1, 1], [1, -1]])
    np.testing.assert_array_equal(rg.block_spin(x, 3), expected3)
    # b = 2: block sums [[2,-4,2],[-2,2,2],[4,2,-4]] — no tie except the (1,0) block? -1-1-1+1 = -2: none are ties
    expected2 = np.array([[1, -1, 1], [-1, 1, 1], [1, 1, -1]])
    np.testing.assert_array_equal(rg.block_spin(x, 2, key=jax.random.key(0)), expected2)
    # decimation keeps the corner spins
    np.testing.assert_array_equal(rg.block_spin(x, 2, rule="decimation"), x[::2, ::2])
    assert rg.block_spin(x, 2, key=jax.random.key(0)).dtype == jnp.int8


def test_majority_ties_are_fair_coins():
    """A tied 2×2 block becomes ±1 at random: count of +1 over 2000 keys is binomial(2000, 1/2) within 4σ."""
    tie = jnp.array([[1, -1], [-1, 1]], jnp.int8)
    sign = jnp.array([[1, 1], [-1, 1]], jnp.int8)
    x = jnp.stack([tie, sign])  # batch of two configurations
    out = jax.vmap(lambda k: rg.block_spin(x, 2, key=k))(jax.random.split(jax.random.key(3), 2000))
    ups = int(jnp.sum(out[:, 0, 0, 0] == 1))
    assert abs(ups - 1000) <= 4 * np.sqrt(500), ups
    assert bool(jnp.all(out[:, 1] == 1))


def test_block_spin_batched_3d_and_jit():
    key = jax.random.key(1)
    x = jnp.where(jax.random.bernoulli(key, 0.5, (3, 5, 8, 8, 8)), 1, -1).astype(jnp.int8)
    out = rg.block_spin(x, 2, key=jax.random.key(2), ndim=3)
    assert out.shape == (3, 5, 4, 4, 4)
    jitted = jax.jit(lambda x, k: rg.block_spin(x, 2, key=k, ndim=3))(x, jax.random.key(2))
    np.testing.assert_array_equal(out, jitted)
    # non-tied blocks equal the sign of their sum regardless of the key
    sums = np.asarray(x, np.int32).reshape(3, 5, 4, 2, 4, 2, 4, 2).sum(axis=(3, 5, 7))
    np.testing.assert_array_equal(np.asarray(out)[sums != 0], np.sign(sums)[sums != 0])
    odd = rg.block_spin(x[..., :6, :6, :6], 3, ndim=3)
    assert odd.shape == (3, 5, 2, 2, 2)


def test_block_spin_validates():
    x = jnp.ones((6, 6), jnp.int8)
    with pytest.raises(ValueError, match="key=None"):
        rg.block_spin(x, 2)
    with pytest.raises(ValueError, match="multiple of b=4"):
        rg.block_spin(x, 4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="rule="):
        rg.block_spin(x, 3, rule="average")


def test_interaction_orbits():
    names = {i.name: i for i in rg.EVEN_2D + rg.ODD_2D}
    assert len(names["nn"].shapes) == 2 and len(names["nnn"].shapes) == 2
    assert len(names["plaquette"].shapes) == 1 and len(names["3-spin corner"].shapes) == 4
    assert len(names["(2,1)"].shapes) == 4
    assert len(rg.interaction("plaquette", ((0, 0), (1, 0), (0, 1), (1, 1)), ndim=3).shapes) == 3
    # nn sum of the all-up state is 2N, of the Néel state -2N
    up = jnp.ones((4, 4), jnp.int8)
    neel = jnp.asarray((-1) ** np.indices((4, 4)).sum(0), jnp.int8)
    s = rg.interaction_sums(jnp.stack([up, neel]), (names["nn"], names["m"]))
    np.testing.assert_array_equal(s, [[32, 16], [-32, 0]])


# --------------------------------------------------------------------------------------------- flows
def test_block_spins_flow_away_from_critical_point():
    """At K ≪ K_c blocked spins get less correlated, at K ≫ K_c more; K^(0) recovers the sampling K (3σ)."""
    key = jax.random.key(11)
    for K, direction in ((0.3, -1), (0.6, +1)):
        x = ising_samples(jax.random.fold_in(key, int(K * 10)), 32, K, 4, 100, 5, kernel="metropolis",
                          therm=300, ordered_start=True)
        flow = rg.rg_flow(x, 2, levels=2, key=jax.random.key(5))
        assert_within(flow.couplings[0], K, flow.couplings_err[0], what=f"matched K^(0) at K={K}")
        # one blocking moves K away from K_c by more than 3σ; the block correlations keep moving the same way
        step = flow.couplings[1] - flow.couplings[0]
        assert direction * step > 3 * np.hypot(*flow.couplings_err[:2]), (K, flow.couplings, flow.couplings_err)
        dc = np.diff(flow.correlations)
        assert np.all(direction * dc > 3 * np.hypot(flow.correlations_err[1:], flow.correlations_err[:-1])), flow
        m0 = np.abs(x.mean(axis=(2, 3))).mean()
        xb = np.asarray(rg.block_spin(x, 2, key=jax.random.key(6)), np.float64)
        m1 = np.abs(xb.mean(axis=(2, 3))).mean()
        if direction > 0:
            assert m1 > m0 > 0.9
        else:
            assert m0 < 0.15 and m1 < 0.15


# --------------------------------------------------------------------------------------------- MCRG
def test_mcrg_2d_ising_exponents_at_kc():
    """MCRG at K_c, L = 32, b = 2, two levels: y_t within 0.1 of 1 and y_h within 0.08 of 15/8 (level 2)."""
    kc = theory.ising_critical_coupling()
    x = ising_samples(jax.random.key(21), 32, kc, 8, 500, 4)
    res = rg.mcrg(x, 2, levels=2, key=jax.random.key(22), even=4, odd=3)
    exact = theory.ISING_2D_EXPONENTS
    assert res.y_t_err[-1] < 0.05 and res.y_h_err[-1] < 0.03, res
    assert abs(res.y_t[-1] - exact["y_t"]) <= 0.1, (res.y_t, res.y_t_err)
    assert abs(res.y_h[-1] - exact["y_h"]) <= 0.08, (res.y_h, res.y_h_err)
    assert res.y_even.shape == (2, 4) and res.y_h_by_couplings.shape == (2, 3)


@pytest.mark.slow
def test_mcrg_2d_ising_exponents_at_kc_large():
    """L = 64, three levels, all default couplings: y_t and y_h within 0.05 of the exact values (level 3)."""
    kc = theory.ising_critical_coupling()
    x = ising_samples(jax.random.key(31), 64, kc, 8, 1000, 4)
    res = rg.mcrg(x, 2, levels=3, key=jax.random.key(32))
    exact = theory.ISING_2D_EXPONENTS
    assert res.y_t_err[-1] < 0.03 and res.y_h_err[-1] < 0.02, res
    assert abs(res.y_t[-1] - exact["y_t"]) <= 0.05, (res.y_t, res.y_t_err)
    assert abs(res.y_h[-1] - exact["y_h"]) <= 0.05, (res.y_h, res.y_h_err)


def test_mcrg_validates():
    x = np.ones((2, 4, 8, 8), np.int8)
    with pytest.raises(ValueError, match="levels"):
        rg.mcrg(x, 2, levels=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="replicas"):
        rg.mcrg(x[:1], 2, levels=1, key=jax.random.key(0))
