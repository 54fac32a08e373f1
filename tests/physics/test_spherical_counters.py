"""Hashed p-spin coupling counters: the standard counter kept bitwise, the extended one past n = 46,340.

The reference formulas are written out here in NumPy (uint64 arithmetic masked to 32 bits), independently of
``physics.spherical``: the standard counter (key of the lead ``a_1 n^{p-3} + … + a_{p-2}``, counter
``2(a_{p-1} n + a_p)``) and the extended one (keys chained over ``a_1 … a_{p-1}``, counter ``2 a_p``).
"""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import spherical
from tests.stats import assert_within

KEY = jax.random.key(13_2)
MASK = np.uint64(0xFFFFFFFF)
N_BIG = 1 << 16  # the aim of the Scale-out issue: n = 65,536 at p = 3


# --- the reference formulas ------------------------------------------------------------------------------------


def _mix(x):
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x21F0AAAD)) & MASK
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(0x735A2D97)) & MASK
    return x ^ (x >> np.uint64(15))


def _hash(y, k0, k1):
    return _mix(_mix((y & MASK) ^ k0) ^ k1)


def _step(k0, k1, x):
    return _hash(2 * x, k0, k1), _hash(2 * x + 1, k0, k1)


def _standard_words(seed, tuples, n):
    """The counter every model with n ≤ 46,340 has always used; at larger n its counter wraps mod 2^32."""
    tuples = np.asarray(tuples, np.uint64)
    lead = np.zeros(len(tuples), np.uint64)
    for a in tuples.T[:-2]:
        lead = lead * np.uint64(n) + a
    k0, k1 = _step(np.uint64(seed[0]), np.uint64(seed[1]), lead)
    c = (2 * (tuples[:, -2] * np.uint64(n) + tuples[:, -1])) & MASK
    return _hash(c, k0, k1), _hash(c + 1, k0, k1), (lead, c)


def _extended_words(seed, tuples):
    tuples = np.asarray(tuples, np.uint64)
    k0 = np.full(len(tuples), seed[0], np.uint64)
    k1 = np.full(len(tuples), seed[1], np.uint64)
    for a in tuples.T[:-1]:
        k0, k1 = _step(k0, k1, a)
    c = 2 * tuples[:, -1]
    return _hash(c, k0, k1), _hash(c + 1, k0, k1), (k0, k1, c)


def _box_muller(w1, w2):
    u1 = 1.0 - (w1 >> np.uint64(8)).astype(np.float64) * 2.0**-24
    u2 = (w2 >> np.uint64(8)).astype(np.float64) * 2.0**-24
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)


def _multiplicities(tuples):
    """``Π_a m_a!`` of sorted tuples."""
    tuples = np.asarray(tuples)
    prod = np.ones(len(tuples))
    run = np.ones(len(tuples))
    for x, y in zip(tuples.T[:-1], tuples.T[1:]):
        run = np.where(x == y, run + 1, 1)
        prod = prod * run
    return prod


def _reference_couplings(seed, tuples, n, p, weight, extended):
    """``c_p K`` of sorted tuples: ``c_p √(p!/(Π m! 2 n^{p-1})) z`` (the CS normalization, module doc)."""
    w1, w2, _ = _extended_words(seed, tuples) if extended else _standard_words(seed, tuples, n)
    var = math.factorial(p) / (2.0 * float(n) ** (p - 1))
    return weight * np.sqrt(var / _multiplicities(tuples)) * _box_muller(w1, w2)


def _sorted_tuples(rng, n, p, count):
    return np.sort(rng.integers(0, n, (count, p)), axis=1)


def _model_words(seed, tuples, n):
    idx = [jnp.asarray(col, jnp.uint32) for col in np.asarray(tuples, np.int64).T]
    return [np.asarray(w, np.uint64) for w in jax.jit(spherical._tuple_words, static_argnums=2)(seed, idx, n)]


def _block_tuples_of(starts, b, p):
    """All index tuples of one block, in the block's C order."""
    grids = np.meshgrid(*[np.arange(b) + s for s in starts], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


# --- the standard counter is kept bitwise ----------------------------------------------------------------------


@pytest.mark.parametrize("n, p", [(46340, 2), (46340, 3), (46340, 4), (1290, 5), (13, 3)])
def test_standard_counter_is_bitwise_unchanged(n, p):
    # random tuples plus the corners where the tail counter 2(a_{p-1} n + a_p) is largest (2(n² - 1) < 2^32)
    model = spherical.PSpin.random(KEY, n, p, couplings="hashed")
    tuples = np.concatenate([_sorted_tuples(np.random.default_rng(p), n, p, 4000),
                             np.full((1, p), n - 1), np.zeros((1, p), np.int64),
                             np.array([[0] * (p - 2) + [n - 1, n - 1]])])
    seed = np.asarray(model.seeds[0], np.uint64)
    w1, w2 = _model_words(model.seeds[0], tuples, n)
    r1, r2, _ = _standard_words(seed, tuples, n)
    np.testing.assert_array_equal(w1, r1)
    np.testing.assert_array_equal(w2, r2)


def test_standard_counter_energies_at_n13_and_a_block_at_n46340():
    # dense energy of a mixed model = -Σ_{sorted} c_p K s…s with K from the written-out formula (n = 13: all tuples)
    n, mixture = 13, {2: 0.6, 3: 1.0, 4: 0.5}
    model = spherical.PSpin.random(KEY, n, mixture)
    s = spherical.random_state(jax.random.key(1), n)
    s64 = np.asarray(s, np.float64)
    expected = 0.0
    for a, (p, w) in enumerate(zip(model.degrees, model.weights)):
        tuples = np.array(list(itertools.combinations_with_replacement(range(n), p)))
        c = _reference_couplings(np.asarray(model.seeds[a], np.uint64), tuples, n, p, w, extended=False)
        expected -= np.sum(c * np.prod(s64[tuples], axis=1))
    assert float(model.energy(s)) == pytest.approx(expected, rel=1e-5, abs=1e-5)

    # n = 46340 (the largest standard size), one hashed block whose tail counters reach 2(n² - 1)
    n, b = 46340, 32
    model = spherical.PSpin.random(KEY, n, 3, couplings="hashed", block=b)
    last = (n - 1) // b
    block = np.array([3, last - 1, last])
    s = spherical.random_state(jax.random.key(2), n)
    grad = jax.jit(lambda m, s, t: m._hashed_grad(s, 0, 3, 1.0, t))(model, s, jnp.asarray(block[None], jnp.int32))
    tuples = _block_tuples_of(block * b, b, 3)
    tuples = tuples[tuples[:, -1] < n]
    c = _reference_couplings(np.asarray(model.seeds[0], np.uint64), tuples, n, 3, 1.0, extended=False)
    s64 = np.asarray(s, np.float64)
    energy = -np.sum(c * np.prod(s64[tuples], axis=1))
    assert float(jnp.dot(s, grad)) / 3 == pytest.approx(energy, rel=1e-4)  # Euler: s·∇H_block = 3 H_block


# --- the extended counter --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, p", [(N_BIG, 2), (N_BIG, 3), (N_BIG, 4), (46341, 3), (1291, 5), (spherical.MAX_N, 3)])
def test_extended_counter_words_match_the_formula(n, p):
    # 1291^3 ≥ 2^31: p = 5 was refused there before; the extended counter covers it. 2^30 is the new limit.
    assert not spherical._standard_counter(n, p)
    model = spherical.PSpin.random(KEY, n, p, couplings="hashed", block=2)
    tuples = np.concatenate([_sorted_tuples(np.random.default_rng(p), n, p, 4000), np.full((1, p), n - 1)])
    seed = np.asarray(model.seeds[0], np.uint64)
    w1, w2 = _model_words(model.seeds[0], tuples, n)
    r1, r2, _ = _extended_words(seed, tuples)
    np.testing.assert_array_equal(w1, r1)
    np.testing.assert_array_equal(w2, r2)


@pytest.mark.parametrize("p, b, block", [(3, 64, (0, 512, 700)), (4, 16, (7, 2048, 2500, 4095)), (2, 256, (100, 255))])
def test_a_block_of_the_n65536_model_matches_the_scalar_formula(p, b, block):
    # blocks where the standard counter would wrap (a_{p-1} n + a_p ≥ 2^31); p = 3: a_2 ≥ 32768, a_3 ∈ [44800, 44864)
    model = spherical.PSpin.random(KEY, N_BIG, p, couplings="hashed", block=b)
    starts = np.array(block) * b
    tuples = _block_tuples_of(starts, b, p)
    expected = _reference_couplings(np.asarray(model.seeds[0], np.uint64), tuples, N_BIG, p, 1.0, extended=True)
    got = jax.jit(spherical._coupling_block, static_argnums=(3, 4, 5, 6))(
        model.seeds[0], jnp.asarray(starts, jnp.int32), jnp.bool_(True), N_BIG, p, 1.0, b)
    scale = math.sqrt(math.factorial(p) / (2.0 * N_BIG ** (p - 1)))
    # float32 Box–Muller (polynomial cosine, |error| < 1e-7) against float64: |z| < 5.8, whose float32 ulp is
    # 4.8e-7; measured max |Δz| 9e-7 for the three blocks, so 4e-6 is about 8 ulps
    np.testing.assert_allclose(np.asarray(got, np.float64).ravel(), expected, rtol=0, atol=4e-6 * scale)
    # and the gradient path: the energy of that one block through _hashed_grad (Euler: s·∇H_block = p H_block)
    s = spherical.random_state(jax.random.key(3), N_BIG)
    grad = jax.jit(lambda m, s, t: m._hashed_grad(s, 0, p, 1.0, t))(model, s, jnp.asarray(np.array(block)[None],
                                                                                          jnp.int32))
    s64 = np.asarray(s, np.float64)
    energy = -np.sum(expected * np.prod(s64[tuples], axis=1))
    # float32 block sums of up to 2^18 terms against float64: 1e-4 relative is ~50 float32 ulps of the sum
    assert float(jnp.dot(s, grad)) / p == pytest.approx(energy, rel=1e-4)


def test_extended_counter_is_injective_where_the_standard_one_wraps():
    # n = 2^16, p = 3: the standard tail counter 2(a_2 n + a_3) mod 2^32 is the same for a_2 and a_2 - 32768 (same
    # a_1, a_3). Exhaustively, for a_1 < 3, a_2 in [0, 4) ∪ [32766, 32772) (both sides of the wrap) and every a_3:
    n = N_BIG
    a1, a2, a3 = np.meshgrid(np.arange(3), np.r_[0:4, 32766:32772], np.arange(n), indexing="ij")
    tuples = np.stack([a1.ravel(), a2.ravel(), a3.ravel()], axis=1)
    tuples = tuples[(tuples[:, 0] <= tuples[:, 1]) & (tuples[:, 1] <= tuples[:, 2])]
    seed = np.asarray(spherical.PSpin.random(KEY, n, 3, couplings="hashed").seeds[0], np.uint64)

    # negative control: the standard (lead, counter) pairs repeat exactly for the partners (a_1, a_2 - 32768, a_3)
    # that are themselves in the slice and sorted: a_2 ∈ [32768, 32772), a_1 ≤ a_2 - 32768, a_3 ≥ a_2
    w1, w2, (lead, c) = _standard_words(seed, tuples, n)
    pairs = np.unique(np.stack([lead, c], axis=1), axis=0)
    wrapped = sum(n - a2 for a1 in range(3) for a2 in range(32768, 32772) if a1 <= a2 - 32768)
    assert len(tuples) - len(pairs) == wrapped > 0
    assert len(tuples) - len(np.unique(np.stack([w1, w2], axis=1), axis=0)) == wrapped  # equal couplings

    # the extended (k0, k1, counter) triples are all distinct, and so are the word pairs of the couplings
    w1, w2, (k0, k1, c) = _extended_words(seed, tuples)
    assert len(np.unique(np.stack([k0, k1, c], axis=1), axis=0)) == len(tuples)
    assert len(np.unique(np.stack([w1, w2], axis=1), axis=0)) == len(tuples)


@pytest.mark.parametrize("p", [3, {2: 0.6, 4: 1.0}])
def test_dense_equals_hashed_with_the_extended_counter_forced(p, monkeypatch):
    # the standard counter's bound lowered to 8 puts n = 13 on the extended counter (block 4: padded and diagonal
    # blocks); the dense energy is checked against the written-out extended formula
    monkeypatch.setattr(spherical, "_MAX_N_COUNTER", 8)
    n = 13
    s = jax.vmap(spherical.random_state, (0, None))(jax.random.split(jax.random.key(4), 5), n)
    dense = spherical.PSpin.random(KEY, n, p)
    hashed = spherical.PSpin.random(KEY, n, p, couplings="hashed", block=4)
    (e_d, g_d), (e_h, g_h) = jax.jit(lambda d, h, s: (jax.vmap(d.energy_and_grad)(s), jax.vmap(h.energy_and_grad)(s)))(
        dense, hashed, s)
    scale = float(jnp.max(jnp.abs(g_d)))
    np.testing.assert_allclose(g_h, g_d, atol=1e-5 * scale)
    np.testing.assert_allclose(e_h, e_d, atol=1e-5 * n * scale)
    s64 = np.asarray(s[0], np.float64)
    expected = 0.0
    for a, (deg, w) in enumerate(zip(dense.degrees, dense.weights)):
        tuples = np.array(list(itertools.combinations_with_replacement(range(n), deg)))
        c = _reference_couplings(np.asarray(dense.seeds[a], np.uint64), tuples, n, deg, w, extended=True)
        expected -= np.sum(c * np.prod(s64[tuples], axis=1))
    assert float(e_d[0]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    monkeypatch.undo()  # the standard counter at the same n gives other couplings: the switch took effect
    standard = spherical.PSpin.random(KEY, n, p)
    assert float(jnp.max(jnp.abs(jax.vmap(standard.grad)(s) - g_d))) > 0.1 * scale


# --- marginal statistics at n = 65,536 -------------------------------------------------------------------------

# p = 3, b = 64: blocks whose tails t = a_2 n + a_3 are ≥ 2^31, and their wrap partners (a_1, a_2 - 32768, a_3),
# which the standard counter maps to the same (lead, counter) pairs
_STAT_BLOCKS = [(0, 512, 700), (1, 600, 900), (0, 520, 1023), (2, 700, 701)]
_STAT_B = 64


def _coupling_z_scores(z, z_partner):
    """z-scores of normalized couplings ``z = K/√Var_CS(K)`` against N(0, 1): the mean, the variance 1, the fourth
    moment 3, and the correlation with the wrap partners ``z_partner`` (0 for independent couplings)."""
    count = len(z)
    out = {"mean": z.mean() / (z.std(ddof=1) / math.sqrt(count)),
           "variance": (z.var(ddof=1) - 1.0) / math.sqrt(2.0 / (count - 1)),  # Var of s² for a normal: 2σ⁴/(N-1)
           "fourth moment": (np.mean(z**4) - 3.0) / math.sqrt(96.0 / count)}  # Var z⁴ = E z⁸ - 9 = 105 - 9
    corr = np.mean(z_partner[0] * z_partner[1])
    out["partner correlation"] = corr / math.sqrt(1.0 / len(z_partner[0]))  # Var of a product of independent N(0,1)
    return out


def _stat_samples(couplings_of):
    """Normalized couplings of the stat blocks and of the (sorted) partner pairs, from ``couplings_of(tuples)``."""
    scale = math.sqrt(math.factorial(3) / (2.0 * N_BIG**2))
    z, left, right = [], [], []
    for block in _STAT_BLOCKS:
        tuples = _block_tuples_of(np.array(block) * _STAT_B, _STAT_B, 3)
        tuples = tuples[(tuples[:, 0] <= tuples[:, 1]) & (tuples[:, 1] <= tuples[:, 2])]
        here = couplings_of(tuples) * np.sqrt(_multiplicities(tuples)) / scale
        z.append(here)
        partners = tuples - np.array([0, 32768, 0])
        ok = (partners[:, 0] <= partners[:, 1]) & (tuples[:, 1] >= 32768)
        left.append(here[ok])
        right.append(couplings_of(partners[ok]) * np.sqrt(_multiplicities(partners[ok])) / scale)
    return np.concatenate(z), (np.concatenate(left), np.concatenate(right))


def _model_couplings(model):
    generate = jax.jit(spherical._tuple_normal, static_argnums=2)
    scale = math.sqrt(math.factorial(3) / (2.0 * N_BIG**2))

    def couplings_of(tuples):
        idx = [jnp.asarray(col, jnp.uint32) for col in tuples.T]
        return np.asarray(generate(model.seeds[0], idx, N_BIG), np.float64) * scale / np.sqrt(_multiplicities(tuples))

    return couplings_of


# |z| ≤ 4 for each of the four statistics: a two-sided 6e-5 per statistic, 3e-4 for the four together
_K = 4.0


def test_marginal_statistics_at_n65536_match_the_cs_normalization():
    model = spherical.PSpin.random(KEY, N_BIG, 3, couplings="hashed")
    z, partners = _stat_samples(_model_couplings(model))
    assert len(z) > 900_000 and len(partners[0]) > 300_000
    for what, score in _coupling_z_scores(z, partners).items():
        assert_within(score, 0.0, 1.0, k=_K, what=f"{what} (z-score)")


def test_marginal_statistics_reject_the_wrapping_counter_and_a_wrong_variance():
    # negative controls through the same harness: (1) the standard counter's formula at n = 2^16, which wraps, makes
    # each partner pair equal (correlation 1); (2) the model's couplings with a 4% larger variance.
    model = spherical.PSpin.random(KEY, N_BIG, 3, couplings="hashed")
    seed = np.asarray(model.seeds[0], np.uint64)
    wrapping = _stat_samples(lambda t: _reference_couplings(seed, t, N_BIG, 3, 1.0, extended=False))
    scores = _coupling_z_scores(*wrapping)
    assert scores["partner correlation"] > 100 * _K, scores
    z, partners = _stat_samples(_model_couplings(model))
    inflated = math.sqrt(1.04)
    scores = _coupling_z_scores(inflated * z, (inflated * partners[0], inflated * partners[1]))
    assert abs(scores["variance"]) > _K, scores


# --- construction and limits -----------------------------------------------------------------------------------


def test_models_beyond_46340_build_and_the_limit_is_enforced():
    for p in (2, 3, 4, {2: 0.5, 3: 1.0, 4: 0.3}):
        model = spherical.PSpin.random(KEY, N_BIG, p, couplings="hashed")
        assert model.n == N_BIG and model.tensors == ()
    assert spherical.PSpin.random(KEY, spherical.MAX_N, 3, couplings="hashed").n == 2**30
    assert spherical.PSpin.random(KEY, 2000, 5, couplings="hashed").n == 2000  # n^3 ≥ 2^31: refused before
    with pytest.raises(ValueError, match=r"n=1073741825, p=3: must be ≤ 1,073,741,824"):
        spherical.PSpin.random(KEY, spherical.MAX_N + 1, 3, couplings="hashed")
    with pytest.raises(ValueError, match=r"n=65536, p=3.*hashed"):  # dense: n³ floats, refused for memory
        spherical.PSpin.random(KEY, N_BIG, 3)
