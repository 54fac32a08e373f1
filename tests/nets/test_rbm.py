"""Tests of nets.rbm: exact partition function, PCD training, the 1D decimation RBM, stacks and RG measurements."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nets import rbm
from physics import rg
from tests.stats import assert_within


def chain_samples(rng, K, n, num):
    """Exact samples of an open 1D Ising chain at coupling K (a Markov chain), float32 ±1."""
    same = rng.random((num, n - 1)) < np.exp(K) / (2 * np.cosh(K))
    first = np.where(rng.random((num, 1)) < 0.5, 1, -1)
    return np.concatenate([first, first * np.cumprod(np.where(same, 1, -1), axis=1)], axis=1).astype(np.float32)


def _brute_force(params):
    W, a, c = (np.asarray(p, np.float64) for p in params)
    vs = np.array(list(itertools.product((-1, 1), repeat=W.shape[0])), np.float64)
    hs = np.array(list(itertools.product((-1, 1), repeat=W.shape[1])), np.float64)
    minus_e = vs @ W @ hs.T + (vs @ a)[:, None] + (hs @ c)[None, :]
    return vs, minus_e


def test_log_partition_and_free_energy_against_enumeration():
    for n_v, n_h in ((5, 3), (3, 6)):
        k1, k2, k3 = jax.random.split(jax.random.key(n_v), 3)
        params = rbm.RBM(0.5 * jax.random.normal(k1, (n_v, n_h)), 0.3 * jax.random.normal(k2, (n_v,)),
                         0.3 * jax.random.normal(k3, (n_h,)))
        vs, minus_e = _brute_force(params)
        lnz = np.log(np.exp(minus_e).sum())
        np.testing.assert_allclose(float(rbm.log_partition(params)), lnz, rtol=1e-5)
        np.testing.assert_allclose(-np.asarray(rbm.free_energy(params, vs)), np.log(np.exp(minus_e).sum(1)),
                                   rtol=1e-5)
        # E[h|v] from the exact joint
        h_all = np.array(list(itertools.product((-1, 1), repeat=n_h)), np.float64)
        p_h = np.exp(minus_e[0] - minus_e[0].max())
        np.testing.assert_allclose(rbm.hidden_mean(params, vs[0]), (p_h / p_h.sum()) @ h_all, atol=1e-5)


def test_pcd_training_increases_exact_log_likelihood():
    """Exact LL (enumeration) rises under training and stays below the data's empirical-entropy bound."""
    rng = np.random.default_rng(1)
    data = chain_samples(rng, 0.7, 6, 2000)
    params0 = rbm.init(jax.random.key(0), 6, 4, scale=0.01)
    res = rbm.train(jax.random.key(1), data, 4, steps=800, batch_size=100, learning_rate=0.03, num_chains=100,
                    params=params0)
    ll0 = float(rbm.log_likelihood(params0, data))
    ll1 = float(rbm.log_likelihood(res.params, data))
    _, counts = np.unique(data, axis=0, return_counts=True)
    p = counts / counts.sum()
    bound = float(np.sum(p * np.log(p)))
    assert ll1 > ll0 + 0.5, (ll0, ll1, bound)
    assert ll1 <= bound + 1e-4, (ll1, bound)


def test_one_layer_rbm_reproduces_decimation_coupling():
    """Mehta–Schwab's exact example: visible = every other spin of a chain at K (a chain at K' = decimate_1d(K)),
    one hidden unit per visible bond. The hidden units play the decimated spins: the RBM's effective visible coupling
    ``K_j = ¼ ln[cosh(c+w₁+w₂) cosh(c-w₁-w₂) / (cosh(c+w₁-w₂) cosh(c-w₁+w₂))]`` equals K' (3σ over 6 replicas)."""
    K, n, R = 0.8, 8, 6
    rng = np.random.default_rng(2)
    data = jnp.asarray(np.stack([chain_samples(rng, K, 2 * n - 1, 4000)[:, ::2] for _ in range(R)]))
    mask = np.zeros((n, n - 1), np.float32)
    mask[np.arange(n - 1), np.arange(n - 1)] = 1
    mask[np.arange(1, n), np.arange(n - 1)] = 1

    def one(key, d):
        k1, k2, k3 = jax.random.split(key, 3)
        p = rbm.init(k1, n, n - 1, scale=0.1)
        chains = d[jax.random.randint(k2, (100,), 0, d.shape[0])]
        return rbm.fit(k3, p, chains, d, jnp.asarray(mask), jnp.float32(0.0), steps=1500, batch_size=100, k=1,
                       optimizer="adam", learning_rate=0.03, decay=True)

    res = jax.vmap(one)(jax.random.split(jax.random.key(3), R), data)
    W = np.asarray(res.params.W, np.float64)
    c = np.asarray(res.params.c, np.float64)
    w1, w2 = W[:, np.arange(n - 1), np.arange(n - 1)], W[:, np.arange(1, n), np.arange(n - 1)]
    lc = lambda x: np.log(np.cosh(x))  # noqa: E731
    k_eff = (0.25 * (lc(c + w1 + w2) + lc(c - w1 - w2) - lc(c + w1 - w2) - lc(c - w1 + w2))).mean(axis=1)
    assert_within(k_eff.mean(), rg.decimate_1d(K), k_eff.std(ddof=1) / np.sqrt(R), what="RBM effective K'")


def test_stack_shapes_receptive_fields_and_block_correlation():
    rng = np.random.default_rng(4)
    L = 8
    # ordered-ish 2D configurations: a few domains (the measurements only need shapes and sanity here)
    data = np.where(rng.random((400, L * L)) < 0.9, 1.0, -1.0).astype(np.float32)
    data *= np.where(rng.random((400, 1)) < 0.5, 1.0, -1.0).astype(np.float32)
    stack = rbm.train_stack(jax.random.key(5), data, (16, 4), steps=50, batch_size=50, learning_rate=0.01, l1=1e-3)
    assert [r.params.W.shape for r in stack] == [(64, 16), (16, 4)]
    fields = rbm.receptive_fields([r.params for r in stack])
    assert fields[1].shape == (64, 4)
    np.testing.assert_allclose(fields[1].sum(axis=0), 1.0, rtol=1e-9)
    # a uniform 3×3 patch (wrapping the boundary) has rms radius √(2·2/3); a delta field has 0
    patch = np.zeros((L, L))
    patch[np.ix_([7, 0, 1], [3, 4, 5])] = 1
    np.testing.assert_allclose(rbm.receptive_field_size(patch.reshape(64, 1), (L, L)), np.sqrt(4 / 3), rtol=1e-9)
    delta = np.zeros((64, 1))
    delta[9] = 1
    np.testing.assert_allclose(rbm.receptive_field_size(delta, (L, L)), 0.0, atol=1e-9)
    # the same patch on a uniform floor: the median floor is removed (raw: pulled toward the uniform √(2·63/12))
    floored = patch.reshape(64, 1) + 0.2
    np.testing.assert_allclose(rbm.receptive_field_size(floored, (L, L)), np.sqrt(4 / 3), rtol=1e-9)
    raw = rbm.receptive_field_size(floored, (L, L), background=None)
    assert np.sqrt(4 / 3) + 0.5 < raw[0] < np.sqrt(2 * 63 / 12)
    with pytest.raises(ValueError, match="background"):
        rbm.receptive_field_size(patch.reshape(64, 1), (L, L), background="mean")
    acts = rbm.propagate([r.params for r in stack], data)
    corr, b = rbm.block_correlation(acts[0], data, (L, L), key=jax.random.key(6))
    assert corr.shape == (16, 16) and b == 2 and np.all(np.abs(corr) <= 1 + 1e-9)
    k_eff, c = rbm.effective_coupling(acts[0], corr)
    assert np.isfinite(k_eff) and -1 <= c <= 1


def _torus_nn_correlation(K, side):
    """Exact ``½<s_x s_{x+e₁} + s_x s_{x+e₂}>`` of the side×side periodic Ising model at coupling K, by enumeration."""
    s = np.array(list(itertools.product((-1.0, 1.0), repeat=side * side))).reshape(-1, side, side)
    bonds = 0.5 * (s * np.roll(s, -1, 1) + s * np.roll(s, -1, 2)).mean(axis=(1, 2))
    w = np.exp(K * 2 * side * side * (bonds - bonds.max()))  # Σ_bonds s s = 2·side²·bonds
    return float(np.sum(w * bonds) / np.sum(w))


def _greedy_effective_nn_correlation(hidden, corr):
    """The former rule, kept as the control: each block takes its own most correlated unit (argmax per column),
    so one unit may serve several blocks."""
    side = int(round(np.sqrt(corr.shape[1])))
    best = np.argmax(np.abs(corr), axis=0)
    coarse = np.sign(hidden[:, best] * np.sign(corr[best, np.arange(corr.shape[1])])).reshape(-1, side, side)
    return float(0.5 * np.mean(coarse * np.roll(coarse, -1, 1) + coarse * np.roll(coarse, -1, 2))), best


def test_effective_coupling_assigns_one_unit_per_block():
    """A layer built so the per-block argmax gives blocks 0 and 1 the same unit (unit 0 correlates 0.95 with block 1,
    unit 1 only 0.9): the one-to-one assignment is the identity (total |corr| 9·0.9 against 0.95 + 0.1 + 7·0.9),
    the coarse lattice then holds the hidden configurations exactly, and K_eff is the coupling whose exact 3×3
    torus nn correlation equals theirs. The configurations are all 2⁹ states once plus all-up and all-down 256
    times each: c = (512·0 + 512·1)/1024 = ½ exactly (every bond averages to 0 over all states). The greedy rule
    (the control) copies unit 0 onto site 1, whose bond to site 0 then reads 1 in every sample:
    c = ½ + (1 - ½)/18 (one of the 18 bonds) — biased upward."""
    side = 3
    states = np.array(list(itertools.product((-1.0, 1.0), repeat=side * side)))
    ordered = np.repeat(np.stack([np.ones(side * side), -np.ones(side * side)]), 256, axis=0)
    configs = np.concatenate([states, ordered])
    flip = np.ones(side * side)
    flip[5] = -1.0  # unit 5 anticorrelated with its block: read back flipped
    hidden = configs * flip
    corr = 0.9 * np.diag(flip)
    corr[0, 1], corr[1, 0] = 0.95, 0.1
    units, signs = rbm.block_assignment(corr)
    np.testing.assert_array_equal(units, np.arange(side * side))
    np.testing.assert_array_equal(signs, flip)
    k_eff, c = rbm.effective_coupling(hidden, corr)
    np.testing.assert_allclose(c, 0.5, rtol=1e-12)
    # K_eff against an independent root of the enumerated 3×3 torus correlation (not Kaufman's formula)
    from scipy.optimize import brentq

    k_exact = brentq(lambda K: _torus_nn_correlation(K, side) - 0.5, 1e-3, 3.0, xtol=1e-12)
    np.testing.assert_allclose(k_eff, k_exact, rtol=1e-6)
    c_greedy, best = _greedy_effective_nn_correlation(hidden, corr)
    assert best[0] == best[1] == 0  # the trap is set: the control does share a unit
    np.testing.assert_allclose(c_greedy, 0.5 + 0.5 / 18, rtol=1e-12)
    assert float(rg.match_coupling_2d(c_greedy, side)) > k_eff + 0.01
    # and a rectangular layer (more units than blocks) still gets a one-to-one map; fewer units is refused
    wide = np.concatenate([corr, 0.05 * np.ones((3, side * side))])
    units, _ = rbm.block_assignment(wide)
    assert len(set(units.tolist())) == side * side
    with pytest.raises(ValueError, match=r"\(1024, 8\).*\(8, 9\)"):
        rbm.effective_coupling(hidden[:, :8], corr[:8])
