"""bridges.information: entropy and mutual-information estimators, I(d) of Markov chains and grammars, fits, pixels.

Exact references: hand-computed estimator values (Grassberger's G by its recursion, not by digamma), the χ² law of
the plug-in estimator under independence, the exact I(d) of a symmetric 2-state Markov chain and of a symmetric
binary-tree grammar (from the lowest common ancestor of every leaf pair), and images with a known pixel law.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bridges import information as info
from nets import data
from tests.stats import assert_within

LN2 = math.log(2.0)


def _binary_mi(rho):
    """I in nats of two fair bits with correlation ρ: P(equal) = (1 + ρ)/2."""
    p = 0.5 * (1.0 + rho)
    return LN2 + sum(v * math.log(v) for v in (p, 1.0 - p) if v > 0)


def _grassberger_g_by_recursion(n_max):
    # Grassberger 2003, below eq. 35: G(1) = -γ - ln 2, G(2) = 2 - γ - ln 2, G(2n+1) = G(2n), G(2n+2) = G(2n) + 2/(2n+1)
    g = {1: -np.euler_gamma - LN2, 2: 2.0 - np.euler_gamma - LN2}
    for n in range(2, n_max, 2):
        g[n + 1] = g[n]
        g[n + 2] = g[n] + 2.0 / (n + 1)
    return g


def test_entropy_estimators_against_hand_computation():
    counts = [1, 2, 3, 4, 5]
    x = np.repeat(np.arange(5), counts)
    n = x.size
    p = np.array(counts) / n
    plug_in = -np.sum(p * np.log(p))
    assert abs(info.entropy(x, 5, correction=None, base=math.e) - plug_in) < 1e-14
    assert abs(info.entropy(x, 5, correction="miller_madow", base=math.e) - (plug_in + 4 / (2 * n))) < 1e-14
    g = _grassberger_g_by_recursion(6)
    grass = math.log(n) - sum(c * g[c] for c in counts) / n
    assert abs(info.entropy(x, 5, correction="grassberger", base=math.e) - grass) < 1e-13
    # empty bins change nothing; base 2 is bits; Miller–Madow is the default
    assert abs(info.entropy(x, 9, correction="grassberger", base=2.0) - grass / LN2) < 1e-13
    assert info.entropy(x, 5) == info.entropy(x, 5, correction="miller_madow")


def test_independent_symbols_have_zero_mutual_information():
    # R replicates of N independent uniform 4-symbol pairs, I in nats. Plug-in: 2N·I → χ²_{(q-1)²}, mean (q-1)²/(2N).
    # Miller–Madow subtracts exactly that (m = 4, 4, 16 bins, all filled): mean 0. Grassberger: with all counts
    # large, G(n) ≈ ln n - 1/(2n) on average over parities, so each entropy is plug-in + m/(2N) and I keeps +1/(2N).
    # What is left beyond these is O(m²/(12 N²)) ≈ 5e-6, under 0.25 of the stderr of the means (2.4e-5 to 3.6e-5;
    # Grassberger's is the largest: its estimate jitters with the parity of the counts).
    rng = np.random.default_rng(0)
    q, n, reps = 4, 2000, 2000
    est = {c: [] for c in info.CORRECTIONS}
    for _ in range(reps):
        x, y = rng.integers(0, q, n), rng.integers(0, q, n)
        for c in info.CORRECTIONS:
            est[c].append(info.mutual_information(x, y, q, correction=c, base=math.e))
    expected = {"miller_madow": 0.0, "grassberger": 1.0 / (2 * n), None: (q - 1) ** 2 / (2 * n)}
    for c, v in est.items():
        v = np.array(v)
        se = v.std(ddof=1) / math.sqrt(reps)
        assert_within(v.mean(), expected[c], se, k=4.0, what=f"I ({c}) of independent symbols")
        if c is not None and c != "miller_madow":
            # Grassberger's leftover 1/(2N) is resolved (≈ 7 stderr from 0)
            assert v.mean() > 4.0 * se
        if c is None:
            assert v.mean() > 4.0 * se  # negative control: the plug-in is rejected as unbiased (≈ 60 stderr)


def test_identical_symbols_give_the_entropy():
    rng = np.random.default_rng(1)
    probs = np.array([0.5, 0.25, 0.125, 0.125])  # H = 1.75 bits
    x = rng.choice(4, size=20000, p=probs)
    for c in info.CORRECTIONS:
        # the joint table of (x, x) is the marginal table, so I(X;X) is the estimated H(X), exactly
        assert abs(info.mutual_information(x, x, 4, correction=c) - info.entropy(x, 4, correction=c)) < 1e-12
    # the estimate fluctuates as the mean of -log2 p(x_i) (delta method); bias after correction is O(1/N²)
    se = np.std(-np.log2(probs[x])) / math.sqrt(x.size)
    assert_within(info.mutual_information(x, x, 4), 1.75, se, k=4.0, what="I(X;X)")
    # negative control: the entropy of a different law (1.846 bits) is rejected
    other = -sum(p * math.log2(p) for p in (0.4, 0.3, 0.2, 0.1))
    assert abs(info.mutual_information(x, x, 4) - other) > 4.0 * se


def _markov_sequences(lam, num_sequences, length, seed):
    flip = 0.5 * (1.0 - lam)  # P = [[1-f, f], [f, 1-f]] has λ_2 = 1 - 2f and stationary law (1/2, 1/2)
    p = jnp.array([[1.0 - flip, flip], [flip, 1.0 - flip]], jnp.float32)
    return np.asarray(data.markov_chain(jax.random.key(seed), p, length, num_sequences=num_sequences))


def _exact_markov_mi(transition, d):
    """I(s_t; s_{t+d}) in nats of a stationary chain, from the joint law π_x (P^d)_{xy} (dense numpy)."""
    evals, evecs = np.linalg.eig(transition.T)
    pi = np.real(evecs[:, np.argmin(np.abs(evals - 1.0))])
    pi = pi / pi.sum()
    joint = pi[:, None] * np.linalg.matrix_power(transition, d)
    return float(np.sum(joint * np.log(joint / (pi[:, None] * pi[None, :]))))


@pytest.fixture(scope="module")
def markov():
    return _markov_sequences(0.5, 1000, 1000, seed=0)


def test_markov_chain_mi_matches_the_exact_value(markov):
    transition = np.array([[0.75, 0.25], [0.25, 0.75]])
    dists = np.array([1, 2, 3, 5])
    est = info.mutual_information_decay(markov, dists, 2, base=math.e)
    for d, mi, se in zip(dists, est.mi, est.stderr, strict=True):
        # k = 4 on the jackknife stderr (over blocks of whole sequences; measured against 20 independent replicates
        # it is 0.81–1.03 of their spread at these d)
        assert_within(mi, _exact_markov_mi(transition, int(d)), se, k=4.0, what=f"I(d={d})")
        assert abs(_exact_markov_mi(transition, int(d)) - _binary_mi(0.5**d)) < 1e-12  # two exact routes agree
    # negative control: the exact I(1) of λ_2 = 0.45 is rejected
    wrong = np.array([[0.725, 0.275], [0.275, 0.725]])
    assert abs(est.mi[0] - _exact_markov_mi(wrong, 1)) > 4.0 * est.stderr[0]


def test_markov_chain_decay_is_exponential_with_half_the_correlation_length(markov):
    # I(d) = ε²/2 + ε⁴/12 + … nats with ε = λ_2^d, so I ∝ λ_2^{2d}: ξ_I = -1/(2 ln λ_2) = 0.7213 for λ_2 = 0.5.
    # Ten independent replicates of 100 sequences give the error bar of the fitted ξ (the fit's own stderr ignores
    # the correlation between the I(d) of one data set and is ~1.8× too small here).
    lam, dists = 0.5, np.arange(2, 9)
    xi_theory = -1.0 / (2.0 * math.log(lam))
    fits = []
    for rep in range(10):
        est = info.mutual_information_decay(markov[100 * rep:100 * (rep + 1)], dists, 2, base=math.e)
        fits.append(info.fit_decay(est.distance, est.mi, est.stderr))
    assert all(f.winner == "exponential" for f in fits), [f.delta_aic for f in fits]
    assert min(f.delta_aic for f in fits) > 10.0
    xi = np.array([f.exponential.length for f in fits])
    se = xi.std(ddof=1) / math.sqrt(xi.size)
    # allowance: the ε⁴ term makes the exact curve itself fit to a slightly shorter ξ over d = 2..8 (computed here
    # from the closed form with equal relative weights; ≈ 7e-4)
    exact = np.array([_binary_mi(lam**d) for d in dists])
    bias = abs(info.fit_decay(dists, exact, 0.01 * exact).exponential.length - xi_theory)
    # Student t with 9 d.o.f.: P(|t| > 4.8) = 1e-3
    assert_within(xi.mean(), xi_theory, se, k=4.8, allowance=bias, what="ξ of I(d)")
    # negative control: the correlation length -1/ln λ_2 itself (twice ξ_I) is rejected
    assert abs(xi.mean() + 1.0 / math.log(lam)) > 4.8 * se + bias


def _pcfg_exact_mi(lam, depth, d):
    """Pooled I(d) in nats of the symmetric binary-flip grammar: leaves t and t+d meet at height h = bit length of
    t XOR (t+d), are λ^{2h}-correlated fair bits, and the pooled pairs are fair bits with the mean correlation."""
    t = np.arange(2**depth - d)
    heights = np.array([(int(a) ^ int(a + d)).bit_length() for a in t])
    return _binary_mi(float(np.mean(lam ** (2.0 * heights))))


def test_pcfg_mi_is_exact_and_decays_as_a_power_law():
    lam, depth = 0.9, 8
    flip = 0.5 * (1.0 - lam)
    channel = [[1.0 - flip, flip], [flip, 1.0 - flip]]
    rules = jnp.array([channel, channel], jnp.float32)  # both children copy the parent up to a flip
    pcfg = jax.jit(data.pcfg, static_argnames=("depth", "num_sequences"))
    strings = np.asarray(pcfg(jax.random.key(3), rules, depth, num_sequences=400))
    dists = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32])
    est = info.mutual_information_decay(strings, dists, 2, base=math.e)
    for d, mi, se in zip(dists, est.mi, est.stderr, strict=True):
        assert_within(mi, _pcfg_exact_mi(lam, depth, int(d)), se, k=4.0, what=f"pcfg I(d={d})")
    fit = info.fit_decay(est.distance, est.mi, est.stderr)
    assert fit.winner == "power_law" and fit.delta_aic > 100.0, fit
    # the Markov test above is this test's negative control and vice versa: the same fit picks the other model there


def test_fit_decay_recovers_exact_and_noisy_parameters():
    d = np.arange(1.0, 41.0)
    power = 0.3 * d**-0.7
    fit = info.fit_decay(d, power, 0.01 * power)
    assert fit.winner == "power_law"
    assert abs(fit.power_law.amplitude - 0.3) < 1e-9 and abs(fit.power_law.exponent - 0.7) < 1e-9
    assert fit.power_law.chi2 < 1e-12
    expo = 0.5 * np.exp(-d / 3.0)
    fit = info.fit_decay(d, expo, 0.01 * expo)
    assert fit.winner == "exponential"
    assert abs(fit.exponential.amplitude - 0.5) < 1e-9 and abs(fit.exponential.length - 3.0) < 1e-9
    # Gaussian noise of known σ: parameters within 4 stderr, χ² within 5 sd of its mean (dof = 38)
    rng = np.random.default_rng(4)
    sigma = 0.002 + 0.02 * expo
    fit = info.fit_decay(d, expo + sigma * rng.standard_normal(d.size), sigma)
    e = fit.exponential
    assert_within(e.amplitude, 0.5, e.amplitude_stderr, k=4.0, what="A")
    assert_within(e.length, 3.0, e.length_stderr, k=4.0, what="ξ")
    assert abs(e.chi2 - 38.0) < 5.0 * math.sqrt(2 * 38.0)
    # negative control: a wrong ξ (10% off) is rejected by the same check
    assert abs(e.length - 3.3) > 4.0 * e.length_stderr


def test_pixel_mi_of_row_striped_images_is_exact():
    # each image row is one fair bit, rows independent: same-row pixels share 1 bit, others 0
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 2, (4000, 8))
    images = np.repeat(rows[:, :, None], 8, axis=2)
    res = info.pixel_mutual_information(images, metric="manhattan")
    pairs = [((i1, j1), (i2, j2)) for i1 in range(8) for j1 in range(8) for i2 in range(8) for j2 in range(8)
             if (i1, j1) < (i2, j2)]
    for r, mi, se, count in zip(res.distance, res.mi, res.stderr, res.num_pairs, strict=True):
        at = [(a, b) for a, b in pairs if abs(a[0] - b[0]) + abs(a[1] - b[1]) == r]
        same_row = sum(a[0] == b[0] for a, b in at)
        assert count == len(at)
        # Miller–Madow leaves O(1/N²) ≈ 6e-8 bias, far below the jackknife stderr (≈ 1e-4 here)
        assert_within(mi, same_row / len(at), se, k=4.0, what=f"stripes I(r={r})")
        if 0 < same_row:
            # negative control: "every pair shares a bit" is rejected wherever some pairs do not
            assert same_row == len(at) or abs(mi - 1.0) > 4.0 * se
    assert res.distance.tolist() == list(range(1, 15))


def test_pixel_mi_of_digits_matches_direct_counts_and_decays():
    (x, _), _ = data.digits()
    binary = (x > 0.5).astype(np.int8)
    res = info.pixel_mutual_information(binary, [1.0, math.sqrt(2.0), 4.0], correction=None, base=math.e)
    # every entry of the pair matrix against the plug-in I from explicit 2×2 counts, for a few pixel pairs
    for i, j in ((27, 28), (20, 36), (10, 53), (35, 44)):
        table = np.array([[np.sum((binary[:, i] == a) & (binary[:, j] == b)) for b in (0, 1)] for a in (0, 1)])
        p = table / table.sum()
        px, py = p.sum(axis=1), p.sum(axis=0)
        nz = p > 0
        direct = float(np.sum(p[nz] * np.log(p[nz] / np.outer(px, py)[nz])))
        assert abs(res.matrix[i, j] - direct) < 1e-12 and abs(res.matrix[j, i] - direct) < 1e-12
    # neighbouring pixels share far more information than pixels 4 apart
    assert res.mi[0] - res.mi[2] > 10.0 * math.hypot(res.stderr[0], res.stderr[2]), res
    # negative control: shuffling each pixel independently across images leaves no information at any distance
    rng = np.random.default_rng(6)
    shuffled = np.stack([rng.permutation(col) for col in binary.T], axis=1)
    null = info.pixel_mutual_information(shuffled, [1.0, 4.0])
    for mi, se in zip(null.mi, null.stderr, strict=True):
        assert_within(mi, 0.0, se, k=4.0, what="I of shuffled pixels")


def test_bad_inputs_raise():
    x = np.array([0, 1, 1, 0])
    for call, name in (
        (lambda: info.mutual_information(x, x, 2, correction="jackknife"), "correction"),
        (lambda: info.mutual_information(x, x[:3], 2), "shape"),
        (lambda: info.mutual_information(x, x + 1, 2), "num_symbols"),
        (lambda: info.mutual_information(x.astype(float), x, 2), "dtype"),
        (lambda: info.entropy(x, 2, base=1.0), "base"),
        (lambda: info.mutual_information_decay(x, [4], 2), "distances"),
        (lambda: info.mutual_information_decay(x, [1], 2, num_blocks=1), "num_blocks"),
        (lambda: info.fit_decay([1, 2], [0.1, 0.05], [0.01, 0.01]), "at least 3"),
        (lambda: info.fit_decay([1, 2, 3], [0.1, 0.05, 0.02], [0.01, 0.0, 0.01]), "stderr"),
        (lambda: info.pixel_mutual_information(np.full((5, 4, 4), 2), None), "0 or 1"),
        (lambda: info.pixel_mutual_information(np.zeros((5, 16)), None, metric="chebyshev"), "metric"),
        (lambda: info.pixel_mutual_information(np.eye(16)[:, :15], None), "square"),
    ):
        with pytest.raises(ValueError, match=name):
            call()
