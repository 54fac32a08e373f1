"""bridges.chaos: mean-field length and correlation maps, the order-to-chaos line, finite networks against them.

References are computed independently of the module: closed forms (relu's arc-cosine kernel, the linear network),
``scipy.integrate.quad`` with the activation written in numpy, and Monte Carlo iteration of the maps.
"""
import math

import jax
import numpy as np
import pytest
from scipy import integrate, optimize, stats

from bridges import chaos
from nets import mlp
from tests.stats import assert_within


def _normal(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _quad(f, points=(0.0,)):
    # quad on [-14, 14] (normal mass outside 1.6e-44) with the kink/steep point as a breakpoint
    return integrate.quad(f, -14.0, 14.0, points=points, epsabs=1e-14, epsrel=1e-12, limit=400)[0]


def _tanh_length_map(q, sw, sb):
    return sw**2 * _quad(lambda z: np.tanh(math.sqrt(q) * z) ** 2 * _normal(z)) + sb**2


def _tanh_fixed_point(sw, sb):
    return optimize.brentq(lambda q: _tanh_length_map(q, sw, sb) - q, 1e-6, sw**2 + sb**2 + 1.0, xtol=1e-15)


def _tanh_chi1(sw, sb):
    q = _tanh_fixed_point(sw, sb)
    return sw**2 * _quad(lambda z: (1.0 - np.tanh(math.sqrt(q) * z) ** 2) ** 2 * _normal(z))


def _tanh_pair_mean(q, c, derivative=False):
    f = (lambda u: 1.0 - np.tanh(u) ** 2) if derivative else np.tanh
    s, r = math.sqrt(1.0 - c * c), math.sqrt(q)

    def inner(z1):
        return _quad(lambda z2: f(r * (c * z1 + s * z2)) * _normal(z2), points=(-c * z1 / s,))

    return _quad(lambda z1: f(r * z1) * _normal(z1) * inner(z1))


def _gelu(x):  # jax.nn.gelu's default (tanh) approximation, written out in numpy
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _arccos_kernel(c):  # E[relu(u1) relu(u2)] / q for unit-variance pairs of correlation c (Cho & Saul 2009)
    return (math.sqrt(1.0 - c * c) + (math.pi - math.acos(c)) * c) / (2.0 * math.pi)


def test_length_map_against_quad_and_closed_forms():
    # tanh over six decades of q (at q = 100 a 256-point Gauss–Hermite rule is off by 1e-2: the reason for the
    # graded rule); quad and the module's rule both reach ~1e-15, so 1e-12 is rounding plus margin.
    for q in (1e-4, 0.3, 1.0, 10.0, 100.0):
        assert abs(chaos.length_map(q, 1.3, 0.2) - _tanh_length_map(q, 1.3, 0.2)) < 1e-12
        ref = 1.3**2 * _quad(lambda z, q=q: _gelu(math.sqrt(q) * z) ** 2 * _normal(z)) + 0.04
        assert abs(chaos.length_map(q, 1.3, 0.2, "gelu") - ref) < 1e-12 * max(1.0, ref)
    q = np.array([0.5, 2.0, 7.0])
    np.testing.assert_allclose(chaos.length_map(q, 1.2, 0.3, "relu"), 1.44 * q / 2 + 0.09, rtol=1e-13)
    np.testing.assert_allclose(chaos.length_map(q, 0.8, 0.3, "linear"), 0.64 * q + 0.09, rtol=1e-13)


def test_fixed_point_against_quad_and_closed_forms():
    assert abs(chaos.fixed_point(1.5, 0.3) - _tanh_fixed_point(1.5, 0.3)) < 1e-11
    # relu: L(q) = σ_w² q/2 + σ_b², so q* = σ_b²/(1 - σ_w²/2) below σ_w = √2, ∞ above, 0 without bias
    assert abs(chaos.fixed_point(1.2, 0.1, "relu") - 0.01 / (1 - 0.72)) < 1e-14
    assert chaos.fixed_point(1.5, 0.1, "relu") == math.inf
    assert chaos.fixed_point(1.3, 0.0, "relu") == 0.0
    assert chaos.fixed_point(math.sqrt(2.0), 0.0, "relu", q0=3.0) == 3.0  # every q is fixed: the iteration stays
    assert chaos.fixed_point(1.0, 0.5, "linear") == math.inf  # q grows by σ_b² per layer
    # tanh without bias: 0 at and below σ_w = 1; above, q* = (1 - 1/σ_w²)/2 + O(q*²) from tanh² = x² - 2x⁴/3 + …
    assert chaos.fixed_point(0.9, 0.0) == 0.0 and chaos.fixed_point(1.0, 0.0) == 0.0
    sw = 1.0 + 1e-4
    small = (1.0 - sw**-2) / 2
    assert abs(chaos.fixed_point(sw, 0.0) - small) < 10 * small**2
    np.testing.assert_allclose(chaos.fixed_point(np.array([1.2, 1.5]), 0.3),
                               [_tanh_fixed_point(1.2, 0.3), _tanh_fixed_point(1.5, 0.3)], rtol=1e-11)


def test_fixed_point_matches_monte_carlo_iteration():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(10**6)
    sw, sb = 1.5, 0.3

    def mc_map(q, w=sw):
        return w**2 * np.mean(np.tanh(math.sqrt(q) * z) ** 2) + sb**2

    def mc_fixed_point(w):
        q = 1.0
        for _ in range(200):
            q, old = mc_map(q, w), q
            if abs(q - old) < 1e-14:
                break
        return q

    q_mc = mc_fixed_point(sw)
    # delta method: the frozen-sample map is off by ε = σ_w² · SE(mean tanh²) at q*, which moves the fixed point by
    # ε / (1 - L'(q*)); L' by a central difference of the same map.
    slope = (mc_map(q_mc + 1e-4) - mc_map(q_mc - 1e-4)) / 2e-4
    stderr = sw**2 * np.std(np.tanh(math.sqrt(q_mc) * z) ** 2) / math.sqrt(z.size) / (1.0 - slope)
    assert_within(q_mc, chaos.fixed_point(sw, sb), stderr, k=4.0, what="q* by Monte Carlo iteration")
    # negative control: the same check rejects the q* of a 3% larger σ_w
    wrong = chaos.fixed_point(1.03 * sw, sb)
    assert abs(q_mc - wrong) > 4.0 * stderr, (q_mc, wrong, stderr)


def test_chi1_and_depth_scales_against_quad():
    for sw, sb in ((1.2, 0.3), (2.0, 0.3), (0.9, 0.05)):
        assert abs(chaos.chi1(sw, sb) - _tanh_chi1(sw, sb)) < 1e-11
    # ξ_q = -1/ln L'(q*): L' from a central difference of the quad length map (truncation ~h² L''' ≈ 1e-10)
    sw, sb = 2.0, 0.3
    q = _tanh_fixed_point(sw, sb)
    slope = (_tanh_length_map(q + 1e-5, sw, sb) - _tanh_length_map(q - 1e-5, sw, sb)) / 2e-5
    xi_q, xi_c = chaos.depth_scales(sw, sb)
    assert abs(xi_q - (-1.0 / math.log(slope))) < 1e-7
    # chaotic phase: ξ_c from χ_c at c*, both by nested quad
    c_star = chaos.correlation_fixed_point(sw, sb)
    assert abs(xi_c - (-1.0 / math.log(sw**2 * _tanh_pair_mean(q, c_star, derivative=True)))) < 1e-8
    # ordered phase: c* = 1 and ξ_c = -1/ln χ_1
    assert chaos.correlation_fixed_point(0.9, 0.05) == 1.0
    assert abs(chaos.depth_scales(0.9, 0.05)[1] - (-1.0 / math.log(_tanh_chi1(0.9, 0.05)))) < 1e-9
    # relu: φ' is a step, so χ_1 = σ_w²/2 at any q*, including q* = ∞
    assert abs(chaos.chi1(1.2, 0.1, "relu") - 0.72) < 1e-14
    assert abs(chaos.chi1(1.8, 0.1, "relu") - 1.62) < 1e-14


def test_critical_line():
    # REFERENCES.md: tanh σ_w = 1 at σ_b = 0 (χ_1 = σ_w² φ'(0)² there) and ≈ 1.3956 at σ_b = 0.3
    assert abs(chaos.critical_weight_std(0.0) - 1.0) < 1e-6
    crit = chaos.critical_weight_std(0.3)
    assert abs(crit - 1.3956) < 1e-3
    # on the line χ_1 = 1, by the independent quad chain (brentq on the quad map, then the quad χ_1); 1e-9 allows
    # for the brentq tolerances of both chains
    assert abs(_tanh_chi1(crit, 0.3) - 1.0) < 1e-9
    assert chaos.chi1(0.99 * crit, 0.3) < 1.0 < chaos.chi1(1.01 * crit, 0.3)
    # relu: χ_1 = σ_w²/2 whatever σ_b, so the line is σ_w = √2; linear: χ_1 = σ_w²
    np.testing.assert_allclose(chaos.critical_weight_std(np.array([0.0, 0.5]), "relu"), math.sqrt(2.0), rtol=1e-12)
    assert abs(chaos.critical_weight_std(0.3, "linear") - 1.0) < 1e-12
    # on the critical line correlations persist to any depth
    assert chaos.depth_scales(crit, 0.3)[1] > 1e6
    with pytest.raises(ValueError, match="jumps"):  # gelu: χ_1 leaps over 1 where q* becomes infinite
        chaos.critical_weight_std(0.2, "gelu")


def test_correlation_map_against_closed_forms_and_quad():
    # relu at its finite q*: C(c) = (σ_w² q k(c) + σ_b²) / (σ_w² q/2 + σ_b²) with the arc-cosine kernel k, and
    # χ_c(c) = σ_w² (π - arccos c)/(2π); linear: C(c) = (σ_w² q c + σ_b²)/(σ_w² q + σ_b²). The graded rule puts the
    # kink on panel edges, so the error is rounding (measured ≤ 2e-14).
    sw, sb = 1.2, 0.1
    q = 0.01 / (1 - 0.72)
    for c in (-0.7, 0.0, 0.5, 0.95, 0.999999):
        expected = (sw**2 * q * _arccos_kernel(c) + sb**2) / (sw**2 * q / 2 + sb**2)
        assert abs(chaos.correlation_map(c, sw, sb, "relu") - expected) < 1e-12
        assert abs(chaos.chi_c(c, sw, sb, "relu") - sw**2 * (math.pi - math.acos(c)) / (2 * math.pi)) < 1e-12
        lin = (0.64 * 2.0 * c + 0.09) / (0.64 * 2.0 + 0.09)
        assert abs(chaos.correlation_map(c, 0.8, 0.3, "linear", q=2.0) - lin) < 1e-12
    # tanh against nested quad at q*
    sw, sb = 2.0, 0.3
    q = _tanh_fixed_point(sw, sb)
    for c in (0.2, 0.9):
        expected = (sw**2 * _tanh_pair_mean(q, c) + sb**2) / q
        assert abs(chaos.correlation_map(c, sw, sb) - expected) < 1e-11
    assert chaos.correlation_map(1.0, sw, sb) == pytest.approx(1.0, abs=1e-14)
    assert abs(chaos.chi_c(1.0, sw, sb) - chaos.chi1(sw, sb)) < 1e-13
    # Price's theorem: dE[φ(u1)φ(u2)]/dc = q E[φ'(u1)φ'(u2)], so C'(c) = χ_c(c) at q*; central difference with
    # h = 1e-4 has truncation error ~ h² C''' / 6 ≈ 1e-9
    c, h = 0.6, 1e-4
    slope = (chaos.correlation_map(c + h, sw, sb) - chaos.correlation_map(c - h, sw, sb)) / (2 * h)
    assert abs(slope - chaos.chi_c(c, sw, sb)) < 1e-8


def test_correlation_fixed_point():
    # σ_b = 0 and odd φ: C(0) = 0, so the chaotic fixed point is exactly 0
    assert chaos.correlation_fixed_point(2.0, 0.0) == 0.0
    # σ_b > 0: c* solves C(c*) = c* by the nested-quad map, and is stable (χ_c(c*) < 1)
    sw, sb = 2.0, 0.3
    c_star = chaos.correlation_fixed_point(sw, sb)
    q = _tanh_fixed_point(sw, sb)
    assert 0.0 < c_star < 1.0
    assert abs((sw**2 * _tanh_pair_mean(q, c_star) + sb**2) / q - c_star) < 1e-11
    assert chaos.chi_c(c_star, sw, sb) < 1.0
    # mean-field trajectory: repeated application of the map, approaching c* geometrically at the rate χ_c(c*)
    # (= e^{-1/ξ_c}); the ratio of successive distances is χ_c(c*) + C''(c*) Δ / (2 χ_c) with Δ = c^l - c* ≈ 4e-3
    # and C'' ≈ 0.14 here, so within 1e-3 of it
    traj = chaos.mean_field_correlations(sw, sb, "tanh", 0.9, 40)
    assert traj[0] == 0.9 and abs(traj[1] - chaos.correlation_map(0.9, sw, sb)) < 1e-15
    dist = traj - c_star
    assert np.all(np.diff(dist) < 0) and dist[-1] > 0
    assert abs(dist[-1] / dist[-2] - chaos.chi_c(c_star, sw, sb)) < 1e-3
    assert abs(dist[-1] / dist[-2] - math.exp(-1.0 / chaos.depth_scales(sw, sb)[1])) < 1e-3


def test_empirical_correlation_map_agrees_with_mean_field():
    sw, sb, c0, depth, n_nets = 2.5, 0.3, 0.9, 6, 100
    emp = chaos.empirical_correlation_map(jax.random.key(0), sw, sb, "tanh", width=1000, depth=depth, c0=c0,
                                          num_networks=n_nets)
    assert emp.correlation.shape == (n_nets, depth + 1) and emp.length.shape == (n_nets, depth + 1, 2)
    assert np.all(np.abs(emp.correlation[:, 0] - c0) < 1e-6)  # inputs built with exactly c0 (float32)
    mean = emp.correlation.mean(axis=0)[1:]
    stderr = emp.correlation.std(axis=0, ddof=1)[1:] / math.sqrt(n_nets)
    theory = chaos.mean_field_correlations(sw, sb, "tanh", c0, depth)[1:]
    # k = 4 per layer (two-sided 6e-5 each for a normal mean over 100 networks). The finite-width bias of c^l is
    # O(1/width): measured with 2000 networks it is ≤ 2.4e-3 at layer 6, under half of this test's stderr there.
    t = (mean - theory) / stderr
    assert np.all(np.abs(t) < 4.0), (mean, theory, stderr)
    q_star = chaos.fixed_point(sw, sb)
    lengths = emp.length.mean(axis=2)[:, 1:]
    q_t = (lengths.mean(axis=0) - q_star) / (lengths.std(axis=0, ddof=1) / math.sqrt(n_nets))
    assert np.all(np.abs(q_t) < 4.0), (lengths.mean(axis=0), q_star)
    # negative control: the mean-field trajectory of σ_w = 2.3 (8% smaller) is rejected by the same check
    wrong = chaos.mean_field_correlations(2.3, sb, "tanh", c0, depth)[1:]
    assert np.max(np.abs(mean - wrong) / stderr) > 4.0


def test_network_position_recovers_the_initialization():
    sw, sb = 1.3, 0.2
    widths = (64, 256, 256, 256, 10)
    net = mlp.init(jax.random.key(1), widths, activation="tanh", weight_std=sw, bias_std=sb)
    pos = chaos.network_position(net)
    assert pos.weight_std.shape == (4,)
    # exact law: fan_in · mean(W²) / σ_w² = χ²_n / n with n = fan_in · fan_out entries, and the same for b with
    # n = fan_out; two-sided p > 1e-4 for each of the 8 estimates (family-wise false alarm < 1e-3)
    def pvalue(estimate, true, n):
        cdf = stats.chi2.cdf(n * estimate**2 / true**2, df=n)
        return 2.0 * min(cdf, 1.0 - cdf)

    fans = list(zip(widths[:-1], widths[1:], strict=True))
    for i, (a, b) in enumerate(fans):
        assert pvalue(pos.weight_std[i], sw, a * b) > 1e-4, (i, pos.weight_std[i])
        assert pvalue(pos.bias_std[i], sb, b) > 1e-4, (i, pos.bias_std[i])
    # negative control: a claimed σ_w 5% off (σ_w² 10% off, ~10 stderr for 16k entries) is rejected
    assert pvalue(pos.weight_std[0], 1.05 * sw, 64 * 256) < 1e-6
    # χ_1 and the distance are those of the estimated (σ_w, σ_b)
    np.testing.assert_allclose(pos.chi1, chaos.chi1(pos.weight_std, pos.bias_std), rtol=1e-12)
    np.testing.assert_allclose(pos.distance, pos.weight_std - chaos.critical_weight_std(pos.bias_std), atol=1e-12)
    # the critical σ_w at σ_b = 0.2 is 1.304: σ_w = 1.3 sits just on the ordered side, within the estimates' noise
    assert np.all(np.abs(pos.distance[:3]) < 0.03)


def test_network_position_of_a_stack_and_of_fractal_blocks():
    # hand-built numpy weights (no jax compilation): a stack of 3 relu networks with a leading network axis
    rng = np.random.default_rng(2)
    shapes = ((8, 32), (32, 32), (32, 4))
    layers = tuple(mlp.Dense(w=rng.normal(0.0, 1.0 / math.sqrt(a), (3, a, b)), b=rng.normal(0.0, 0.1, (3, b)))
                   for a, b in shapes)
    pos = chaos.network_position(mlp.MLP(layers=layers, activation="relu"))
    assert pos.weight_std.shape == (3, 3)
    for i, layer in enumerate(layers):
        np.testing.assert_allclose(pos.weight_std[:, i], np.sqrt(np.sum(layer.w**2, axis=(1, 2)) / shapes[i][1]),
                                   rtol=1e-12)
        np.testing.assert_allclose(pos.bias_std[:, i], np.sqrt(np.mean(layer.b**2, axis=1)), rtol=1e-12)
    np.testing.assert_allclose(pos.critical_weight_std, math.sqrt(2.0), rtol=1e-12)
    np.testing.assert_allclose(pos.chi1, pos.weight_std**2 / 2, rtol=1e-12)  # relu: χ_1 = σ_w²/2
    # a fractal block of 2 columns holds 3 dense layers (first, second, short)
    def dense(a, b):
        return mlp.Dense(w=rng.normal(0.0, 1.0 / math.sqrt(a), (a, b)), b=np.zeros(b))

    block = mlp.Fractal(first=dense(16, 16), second=dense(16, 16), short=dense(16, 16))
    fractal = mlp.MLP(layers=(dense(8, 16), block, dense(16, 4)), activation="tanh", block="fractal")
    assert chaos.network_position(fractal).weight_std.shape == (5,)


def test_phase_diagram_and_bad_inputs():
    pd = chaos.phase_diagram([0.8, 2.0], [0.0, 0.3])
    assert pd.chi1.shape == (2, 2) and pd.critical_weight_std.shape == (2,)
    assert pd.chi1[1, 1] == chaos.chi1(2.0, 0.3) and pd.c_star[1, 1] == chaos.correlation_fixed_point(2.0, 0.3)
    assert pd.c_star[0, 0] == 1.0 and pd.q_star[0, 0] == 0.0  # ordered and bias-free: the signal dies
    for call, name in (
        (lambda: chaos.fixed_point(-1.0, 0.1), "weight_std"),
        (lambda: chaos.chi1(1.0, -0.1), "bias_std"),
        (lambda: chaos.chi1(1.0, 0.1, "sigmoid"), "activation"),
        (lambda: chaos.correlation_map(1.5, 1.0, 0.1), "c="),
        (lambda: chaos.fixed_point(1.0, 0.1, q0=0.0), "q0"),
        (lambda: chaos.empirical_correlation_map(jax.random.key(0), 0.9, 0.0, depth=2), "q\\* = 0"),
    ):
        with pytest.raises(ValueError, match=name):
            call()
