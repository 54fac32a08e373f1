"""Network → glass maps (``bridges.maps``): Choromanska's H-spin glass checked by Monte Carlo over Bernoulli path
activations; covariance matching recovers known p-spin mixtures (and rejects a wrong ξ and an anisotropic loss);
Hopfield recall below and above the AGS capacity; the regression landscape's ground state against independent
minimization."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bridges import maps
from nets import data, mlp
from physics import spherical, theory
from physics.pairwise import Pairwise

# --- Choromanska ------------------------------------------------------------------------------------------------

WIDTHS = (4, 3, 3, 1)  # H = 3: 36 paths, Λ = 12 + 9 + 3 = 24 weights


def _tiny():
    net = mlp.init(jax.random.key(0), WIDTHS)  # bias_std = 0: no biases, as the path expansion needs
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, WIDTHS[0]))
    y = np.where(rng.random(20) < 0.5, -1, 1)
    return net, x, y


def _paths(net):
    """Every input-to-output path of a (4, 3, 3, 1) net as (input, weight product), by explicit enumeration."""
    w = [np.asarray(layer.w, np.float64) for layer in net.layers]
    out = []
    for i, j, k in itertools.product(range(WIDTHS[0]), range(WIDTHS[1]), range(WIDTHS[2])):
        out.append((i, j, k, w[0][i, j] * w[1][j, k] * w[2][k, 0]))
    return out


def test_path_expansion_and_activation_rate_are_exact():
    """Y(x) = Σ_π x_i A_π(x) Π w (the premise of the map), and ρ̂ = mean fraction of active paths, both by numpy
    enumeration of the 36 paths with the true ReLU activation pattern."""
    net, x, _ = _tiny()
    w = [np.asarray(layer.w, np.float64) for layer in net.layers]
    h1 = x @ w[0]
    h2 = np.maximum(h1, 0) @ w[1]
    y_net = np.asarray(mlp.apply(net, jnp.asarray(x, jnp.float32)), np.float64)[:, 0]
    active_fraction = np.zeros(len(x))
    y_paths = np.zeros(len(x))
    for i, j, k, prod in _paths(net):
        a = (h1[:, j] > 0) & (h2[:, k] > 0)
        y_paths += x[:, i] * a * prod
        active_fraction += a / 36
    np.testing.assert_allclose(y_paths, y_net, rtol=1e-5, atol=1e-5)
    assert maps.activation_rate(net, x) == pytest.approx(active_fraction.mean(), abs=1e-12)


def test_mapped_glass_two_evaluations_and_exact_expectation():
    """The dense symmetric tensor (PSpin) and the matrix-product path energy agree at the network's spins and at a
    random point; ``expected_loss`` equals 1 − ρ Σ_π X_i Π w from the enumeration (exact, float32 rounding)."""
    net, x, y = _tiny()
    rec = maps.choromanska(net, (x, y), rho=0.4)
    assert rec.num_weights == 24 and rec.depth == 3 and rec.model is not None
    tensor = np.asarray(rec.model.tensors[0])
    assert np.allclose(tensor, tensor.transpose(1, 0, 2)) and np.allclose(tensor, tensor.transpose(2, 1, 0))
    assert float(jnp.sum(rec.spins**2)) == pytest.approx(24.0, rel=1e-5)
    s = spherical.random_state(jax.random.key(1), 24)
    for point in (rec.spins, s):
        assert float(rec.model.energy(point)) == pytest.approx(float(maps.path_energy(rec, point)), rel=1e-5)
    xbar = (y[:, None] * x).mean(axis=0)
    exact = 1.0 - 0.4 * sum(xbar[i] * prod for i, _, _, prod in _paths(net))
    assert float(maps.expected_loss(rec, rec.spins)) == pytest.approx(exact, abs=1e-5)
    # the digits: one logit of a 10-output net, two evaluations agree
    (xd, yd), _ = data.digits()
    big = mlp.init(jax.random.key(2), (64, 6, 10))
    rd = maps.choromanska(big, (xd[:300], yd[:300]), output=3)
    assert rd.num_weights == 64 * 6 + 6
    assert float(rd.model.energy(rd.spins)) == pytest.approx(float(maps.path_energy(rd, rd.spins)), rel=1e-4)


def _mean_square_tensor(n, p, c):
    """E Σ_{ordered} S² of PSpin.random(·, n, {p: c}): each sorted tuple has p!/Πm! orderings of S = cK Πm!/p!,
    K ~ N(0, p!/(Πm! 2n^{p−1})), so it contributes c²/(2n^{p−1}); there are C(n+p−1, p) sorted tuples."""
    return c * c * math.comb(n + p - 1, p) / (2.0 * n ** (p - 1))


def test_coupling_strength_is_the_random_models_norm():
    """``coupling_strength`` is the c of ``PSpin.random`` whose tensor has the mapped tensor's norm:
    E|S|² = c² C(n+p−1, p)/(2n^{p−1}), checked by sampling 400 PSpin.random models (n = 24, p = 3 and p = 2;
    mean within 4 stderr); negative control: the count of distinct-index tuples C(n, p) instead is > 10 stderr off.
    Then the maps' strengths reproduce their own tensors' norms through that formula (exact)."""
    def norm2(key, p):
        return jnp.sum(spherical.PSpin.random(key, 24, {p: 0.7}).tensors[0] ** 2)

    for p in (3, 2):
        keys = jax.random.split(jax.random.key(p), 400)
        norms = np.asarray(jax.jit(jax.vmap(norm2, in_axes=(0, None)), static_argnums=1)(keys, p), np.float64)
        mean, se = norms.mean(), norms.std(ddof=1) / math.sqrt(norms.size)
        assert abs(mean - _mean_square_tensor(24, p, 0.7)) < 4 * se, (p, mean, se)
        assert abs(mean - 0.49 * math.comb(24, p) / (2.0 * 24 ** (p - 1))) > 10 * se
    net, x, y = _tiny()
    rec = maps.choromanska(net, (x, y))
    mapped = float(np.sum(np.asarray(rec.model.tensors[0], np.float64) ** 2))
    assert _mean_square_tensor(24, 3, rec.coupling_strength) == pytest.approx(mapped, rel=1e-5)
    land = maps.regression_landscape(np.random.default_rng(1).standard_normal((50, 6)))
    mapped = float(np.sum(np.asarray(land.model.tensors[0], np.float64) ** 2))
    assert _mean_square_tensor(6, 2, land.model.weights[0]) == pytest.approx(mapped, rel=1e-5)


def _monte_carlo_loss(net, x, y, rho, samples, seed):
    """Mean over random activation patterns (every path of every example Bernoulli(ρ), A1p/A2p) of the linearized
    hinge loss (1/N) Σ_t (1 − y_t Σ_π x_{t,i} A_π Π w), and its standard error."""
    paths = _paths(net)
    inputs = np.array([p[0] for p in paths])
    prods = np.array([p[3] for p in paths])
    rng = np.random.default_rng(seed)
    a = rng.random((samples, len(x), len(paths))) < rho
    outputs = np.einsum("tp,stp->st", x[:, inputs] * prods, a)
    loss = (1.0 - y * outputs).mean(axis=1)
    return loss.mean(), loss.std(ddof=1) / math.sqrt(samples)


def test_expected_loss_by_monte_carlo_over_activations():
    """The mapped glass's energy at the network's normalized weights, ``loss_offset + loss_scale · H(s)``, equals the
    network's loss averaged over Bernoulli(ρ) activation patterns: 20,000 patterns, |Δ| < 3 stderr. Negative
    control: the map built with ρ = 0.2 (half the true 0.4) is off by > 10 stderr."""
    net, x, y = _tiny()
    mc, se = _monte_carlo_loss(net, x, y, 0.4, 20000, seed=0)  # over seeds 0..9: z from −1.9 to 2.7, mean −0.02
    rec = maps.choromanska(net, (x, y), rho=0.4)
    mapped = rec.loss_offset + rec.loss_scale * float(rec.model.energy(rec.spins))
    assert abs(mapped - mc) < 3 * se, (mapped, mc, se)
    wrong = maps.choromanska(net, (x, y), rho=0.2)
    mapped_wrong = wrong.loss_offset + wrong.loss_scale * float(wrong.model.energy(wrong.spins))
    assert abs(mapped_wrong - mc) > 10 * se, (mapped_wrong, mc, se)


def test_choromanska_validation():
    net, x, y = _tiny()
    with pytest.raises(ValueError, match="relu"):
        maps.choromanska(mlp.init(jax.random.key(0), WIDTHS, activation="tanh"), (x, y))
    biased = mlp.init(jax.random.key(0), WIDTHS, bias_std=0.1)
    with pytest.raises(ValueError, match="drop_biases"):
        maps.choromanska(biased, (x, y))
    assert maps.choromanska(biased, (x, y), drop_biases=True).bias_norm > 0
    with pytest.raises(ValueError, match="output"):
        maps.choromanska(mlp.init(jax.random.key(0), (4, 3, 2)), (x, y))
    with pytest.raises(ValueError, match="±1"):
        maps.choromanska(net, (x, np.abs(y) * 2))
    with pytest.raises(ValueError, match="rho"):
        maps.choromanska(net, (x, y), rho=1.5)


# --- covariance matching ---------------------------------------------------------------------------------------

N = 64


def _pooled(weights, seeds, num_pairs=1024):
    """Ĉ(q) of independent PSpin samples (one pair set each), averaged: the disorder average the fit targets."""
    ests = [maps.estimate_covariance(jax.random.key(100 + s), spherical.PSpin.random(jax.random.key(s), N,
                                                                                       weights).energy,
                                     N, num_pairs=num_pairs, batch_size=1024) for s in seeds]
    cov = np.mean([e.covariance for e in ests], axis=0)
    se = np.sqrt(np.sum([e.stderr**2 for e in ests], axis=0)) / len(ests)
    return ests[0]._replace(covariance=cov, stderr=se, num_pairs=num_pairs * len(ests))


@pytest.fixture(scope="module")
def pure3():
    est = _pooled(3, (10, 11, 12))
    return est, maps.fit_xi(est.overlaps, est.covariance, est.stderr, N, key=jax.random.key(7))


def _assert_coefficients(fit, truth):
    """Every a_p = c_p² within 3 bootstrap standard errors of the truth (+0.01 for the sample-to-sample
    fluctuation of a fixed sample's spatial covariance about n ξ(q): ~ the inverse square root of the number of
    independent couplings, ≲ 0.8% for the degree-1 part of a p = 3 sample at n = 64, pooled over samples)."""
    for p, a, se in zip(fit.degrees, fit.coefficients, fit.stderr, strict=True):
        assert abs(a - truth.get(p, 0.0)) <= 3 * se + 0.01, (p, a, se, truth)


def test_fit_recovers_pure_p3(pure3):
    """Three p = 3 samples at n = 64 (3 × 1024 pairs at 17 overlaps): a_3 ≈ 1, every other a_p ≈ 0; the weighted
    fit is acceptable (χ² p-value > 1e-3)."""
    _, fit = pure3
    _assert_coefficients(fit, {3: 1.0})
    assert fit.coefficients[fit.degrees.index(3)] > 0.8
    from scipy import stats

    assert stats.chi2.sf(fit.chi2, fit.dof) > 1e-3, (fit.chi2, fit.dof)


def test_fit_recovers_mixture():
    """{2: 0.5, 3: 1.0} (a_2 = 0.25, a_3 = 1): two samples at n = 64."""
    est = _pooled({2: 0.5, 3: 1.0}, (20, 21))
    fit = maps.fit_xi(est.overlaps, est.covariance, est.stderr, N, key=jax.random.key(8))
    _assert_coefficients(fit, {2: 0.25, 3: 1.0})
    assert fit.coefficients[fit.degrees.index(2)] > 0.1  # the p = 2 part is seen, not absorbed elsewhere


def test_p3_xi_rejects_p2_covariance(pure3):
    """Negative control: a p = 2 model's Ĉ(q) against the ξ fitted to p = 3 is rejected (p < 1e-10), while its own
    fit is acceptable (p > 1e-3) — the check can tell degrees apart."""
    _, fit3 = pure3
    est2 = _pooled(2, (30,))
    _, _, p_wrong = maps.xi_chi2(fit3, est2)
    assert p_wrong < 1e-10, p_wrong
    fit2 = maps.fit_xi(est2.overlaps, est2.covariance, est2.stderr, N, key=jax.random.key(9))
    from scipy import stats

    assert stats.chi2.sf(fit2.chi2, fit2.dof) > 1e-3, (fit2.chi2, fit2.dof)
    _assert_coefficients(fit2, {2: 1.0})


def test_match_covariance_end_to_end_and_isotropy():
    """One call on a p = 3 sample (512 pairs): the fitted weights make the PSpin model and the theory, whose
    threshold is within 3 bootstrap errors of −√(4/3); the isotropic glass passes the subspace test (p > 1e-3).
    Negative control: a ridge loss w·e (e a random unit vector), which depends on one direction, fails it
    (p < 1e-6; 8 coordinate subspaces of dimension 32 with 512 pairs per overlap each: the spread of |e_S|²
    between subspaces, ±17%, is ~2 standard errors per overlap)."""
    glass = spherical.PSpin.random(jax.random.key(40), N, 3)
    match = maps.match_covariance(glass.energy, N, jax.random.key(41), num_pairs=512, minima=[N * -1.5, N * -1.0],
                                  batch_size=1024)
    assert match.isotropy.pvalue > 1e-3, match.isotropy
    assert 3 in match.model.degrees and match.model.n == N
    assert match.threshold_energy == pytest.approx(theory.mixed_threshold_energy(match.fit.weights))
    # the fitted threshold (bootstrap error propagated from the NNLS fit) brackets the pure p = 3 value −√(4/3)
    assert abs(match.threshold_energy - theory.pspin_threshold_energy(3)) < 3 * match.threshold_stderr
    assert match.threshold_loss == pytest.approx(match.estimate.mean + N * match.threshold_energy)
    assert match.ground_state_energy < match.threshold_energy
    # losses of "minima" (μ ≈ 0): none expected below −1.5 per spin (under every ground-state bound of a ξ near
    # q³/2, −1.17), exponentially many below −1.0 (above the threshold ≈ −1.15 the cumulative count has peaked)
    assert match.minima_complexity[0] < 0 < match.minima_complexity[1]

    direction = spherical.random_state(jax.random.key(43), N) / math.sqrt(N)
    iso = maps.isotropy(jax.random.key(42), lambda w: jnp.dot(w, direction), N, num_pairs=512, num_subspaces=8)
    assert iso.pvalue < 1e-6, iso.pvalue


# --- Hopfield and the regression landscape ---------------------------------------------------------------------


def _patterns(p, n, seed):
    return np.where(np.random.default_rng(seed).random((p, n)) < 0.5, -1, 1).astype(np.int8)


def test_hopfield_couplings_and_overlaps():
    xi = _patterns(3, 10, 0)
    model = maps.hopfield(xi)
    assert isinstance(model, Pairwise)
    j = xi.T.astype(np.float64) @ xi / 10
    np.fill_diagonal(j, 0.0)
    np.testing.assert_allclose(np.asarray(model.couplings), j, atol=1e-7)
    s = xi[1]
    assert float(model.energy(jnp.asarray(s))) == pytest.approx(-0.5 * s @ j @ s, abs=1e-5)
    np.testing.assert_allclose(np.asarray(maps.pattern_overlaps(xi, s)), xi @ s / 10, atol=1e-7)
    with pytest.raises(ValueError, match="±1"):
        maps.hopfield(np.zeros((2, 5)))


def test_retrieval_below_and_above_capacity():
    """n = 200 at T = 0.05 (20 sweeps from each pattern): load α = 0.05 < α_c ≈ 0.138 recalls (AGS: m = 1 − O(e^{−10})
    at T = 0; mean m ≥ 0.99), α = 0.3 > α_c does not (no retrieval state; mean m + 3 stderr < 0.6, the final
    overlaps of the dynamics are spin-glass-like). Each load is the other's control: one criterion, opposite
    outcomes."""
    low = maps.retrieval(jax.random.key(0), _patterns(10, 200, 1), [0.05], 20)
    assert low.mean[0] >= 0.99, low
    high = maps.retrieval(jax.random.key(1), _patterns(60, 200, 2), [0.05], 20)
    assert high.mean[0] + 3 * high.stderr[0] < 0.6, high


def _projected_descent(coupling, field, d, starts, steps=3000, lr=0.05, seed=0):
    """Minimize −½ wᵀJw − b·w on |w|² = d by projected gradient steps from random starts (independent of eigh)."""
    rng = np.random.default_rng(seed)
    best = None
    scale = max(np.max(np.abs(np.linalg.eigvalsh(coupling))), 1e-12)
    for _ in range(starts):
        w = rng.standard_normal(d)
        w *= math.sqrt(d) / np.linalg.norm(w)
        for _ in range(steps):
            w = w + (lr / scale) * (coupling @ w + field)
            w *= math.sqrt(d) / np.linalg.norm(w)
        e = -0.5 * w @ coupling @ w - field @ w
        best = e if best is None else min(best, e)
    return best


def test_regression_landscape_gaussian_vs_digits():
    """The 2-spin of C = XᵀX/N: loss identity (exact), ground state = top eigenvector of J = −C (energy −½ d λ_max,
    matched by projected gradient descent for Gaussian inputs; for digits exactly 0, on the pixels that never
    light), Marchenko–Pastur edges for Gaussian inputs, zero modes and a dominant top eigenvalue for digits, and the
    minimum with a field against projected descent."""
    rng = np.random.default_rng(0)
    xg = rng.standard_normal((400, 20))
    yg = xg @ rng.standard_normal(20) + 0.5 * rng.standard_normal(400)
    (xd, _), _ = data.digits()
    for x, y in ((xg, yg), (xd, None)):
        land = maps.regression_landscape(x, y)
        d = x.shape[1]
        w = rng.standard_normal(d)
        direct = np.sum((x @ w - (0 if y is None else y)) ** 2) / (2 * len(x))
        via = land.offset + float(land.model.energy(jnp.asarray(w, jnp.float32))) - land.field @ w
        assert via == pytest.approx(direct, rel=1e-5)
        gs = land.ground_state
        assert gs @ gs == pytest.approx(d)
        assert float(land.model.energy(jnp.asarray(gs, jnp.float32))) == pytest.approx(land.ground_state_energy,
                                                                                        abs=1e-4)
        if y is not None:  # Gaussian inputs: C is well conditioned (eigenvalues in [0.5, 1.6]), descent converges
            descent = _projected_descent(land.couplings, np.zeros(d), d, starts=3)
            assert descent == pytest.approx(land.ground_state_energy, abs=1e-6 * d)
            assert descent >= land.ground_state_energy - 1e-9
    # spectra: Gaussian inputs fill [λ−, λ+] = (1 ± √(d/N))² up to edge fluctuations ~ N^(−2/3) ≈ 0.02 (use 0.1)
    cg = -maps.regression_landscape(xg).eigenvalues
    assert (1 - math.sqrt(20 / 400)) ** 2 - 0.1 < cg.min() and cg.max() < (1 + math.sqrt(20 / 400)) ** 2 + 0.1
    assert maps.regression_landscape(xg).degeneracy == 1
    dig = maps.regression_landscape(xd)
    dead = int(np.sum(np.all(xd == 0, axis=0)))
    assert dead >= 1 and dig.degeneracy == dead  # pixels that never light: a flat, degenerate ground space
    # weight only on those pixels costs nothing (C has zero rows there): the ground state energy is exactly 0
    assert dig.ground_state_energy == pytest.approx(0.0, abs=1e-9)
    on_dead = np.all(xd == 0, axis=0)
    assert np.sum(dig.ground_state[~on_dead] ** 2) == pytest.approx(0.0, abs=1e-9)  # it lives on the dead pixels
    c = -dig.eigenvalues
    assert c.max() > 10 * np.mean(np.diag(-dig.couplings)) * (1 + math.sqrt(64 / len(xd))) ** 2
    # with the field (y ≠ 0): the trust-region minimum equals the best projected descent
    land = maps.regression_landscape(xg, yg)
    w, loss = maps.regression_minimum(land)
    assert w @ w == pytest.approx(20.0)
    best = land.offset + _projected_descent(land.couplings, land.field, 20, starts=3)
    assert loss == pytest.approx(best, abs=1e-6) and loss <= best + 1e-9
