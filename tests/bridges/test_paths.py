"""bridges.paths: linear paths, filter-normalized planes, Bézier mode connectivity, alignment, overlaps and P(q).

Reference values are independent of the code under test: closed forms (a quadratic loss along a line, the optimal
Bézier curve of a ring-shaped valley), dense NumPy evaluations, and brute force over all permutations.
"""
import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bridges import paths
from nets import mlp
from tests.stats import assert_within

# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------


def _toy_data(n_in=8, n_out=3, count=32):
    rng = np.random.default_rng(100)
    return (jnp.asarray(rng.normal(size=(count, n_in)), jnp.float32),
            jnp.asarray(rng.integers(0, n_out, count), jnp.int32))


def _cross_entropy(x, y):
    def loss(params):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(mlp.apply(params, x), y))

    return loss


def _accuracy(x, y):
    def acc(params):
        return jnp.mean((jnp.argmax(mlp.apply(params, x), axis=-1) == y).astype(jnp.float32))

    return acc


def _np_layers(net):
    return [(np.asarray(layer.w, np.float64), np.asarray(layer.b, np.float64)) for layer in net.layers]


def _np_permute(layers, perms):
    """Hidden-unit permutation written independently in NumPy: unit j of layer h becomes old unit perms[h][j]."""
    out = []
    for h, (w, b) in enumerate(layers):
        if h > 0:
            w = w[perms[h - 1], :]
        if h < len(perms):
            w, b = w[:, perms[h]], b[perms[h]]
        out.append((w, b))
    return out


def _np_flat(layers):
    return np.concatenate([np.concatenate([w.ravel(), b]) for w, b in layers])


def _cos(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def _net(seed, widths, *, bias_std=0.0, activation="relu"):
    """A plain MLP drawn in NumPy (W ~ N(0, 2/fan_in), b ~ N(0, bias_std²)): no JAX compilation per shape."""
    rng = np.random.default_rng(seed)
    layers = tuple(mlp.Dense(w=jnp.asarray(rng.normal(0.0, math.sqrt(2.0 / m), (m, n)), jnp.float32),
                             b=jnp.asarray(rng.normal(0.0, bias_std, n) if bias_std else np.zeros(n), jnp.float32))
                   for m, n in zip(widths[:-1], widths[1:], strict=True))
    return mlp.MLP(layers=layers, activation=activation, block="plain")


def _fractal_net(seed, *, bias_std=0.0):
    """(5, 6, 6, 3) with a 2-column FractalNet block in the middle (as nets.mlp.init(..., block="fractal",
    columns=2) builds it), drawn in NumPy."""
    dense = _net(seed, (5, 6, 6, 6, 6, 3), bias_std=bias_std).layers
    block = mlp.Fractal(first=dense[1], second=dense[2], short=dense[3])
    return mlp.MLP(layers=(dense[0], block, dense[4]), activation="relu", block="fractal")


def _from_np(layers, like):
    return mlp.MLP(layers=tuple(mlp.Dense(w=jnp.asarray(w, jnp.float32), b=jnp.asarray(b, jnp.float32))
                                for w, b in layers), activation=like.activation, block=like.block)


def _stack(nets):
    return jax.tree_util.tree_map(lambda *v: np.stack([np.asarray(u) for u in v]), *nets)


def _random_permuted_copy(net, seed):
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(layer.w.shape[1]) for layer in net.layers[:-1]]
    return _from_np(_np_permute(_np_layers(net), perms), net)


# ----------------------------------------------------------------------------------------------------------------
# linear interpolation
# ----------------------------------------------------------------------------------------------------------------


def test_interpolate_endpoints_equal_the_loss_and_accuracy_of_each_network():
    x, y = _toy_data()
    a = _net(0, (8, 16, 3), bias_std=0.1)
    b = _net(1, (8, 16, 3), bias_std=0.1)
    loss, acc = jax.jit(_cross_entropy(x, y)), jax.jit(_accuracy(x, y))
    path = paths.interpolate(loss, a, b, 41, metrics={"accuracy": acc})
    assert path.alpha.shape == path.loss.shape == path.metrics["accuracy"].shape == (41,)
    # The default grid runs from -0.5 to 1.5 and hits 0 and 1 exactly at indices 10 and 30 (num - 1 = 40).
    assert path.alpha[0] == -0.5 and path.alpha[-1] == 1.5
    assert path.alpha[10] == 0.0 and path.alpha[30] == 1.0
    # θ(0) = a and θ(1) = b exactly; the vmapped evaluation may sum in another order than the single one: a few
    # float32 ulps of a loss of order 1 (rtol 1e-6 ≈ 8 ulps).
    np.testing.assert_allclose(path.loss[10], float(loss(a)), rtol=1e-6)
    np.testing.assert_allclose(path.loss[30], float(loss(b)), rtol=1e-6)
    assert path.metrics["accuracy"][10] == float(acc(a))
    assert path.metrics["accuracy"][30] == float(acc(b))
    # chunked evaluation gives the same path
    chunked = paths.interpolate(loss, a, b, 41, batch_size=7)
    np.testing.assert_allclose(chunked.loss, path.loss, rtol=1e-6)


def test_quadratic_loss_gives_the_exact_parabola_along_the_line():
    # L(θ) = ½ (θ - m)ᵀ H (θ - m) on a two-leaf pytree. Along θ(α) = a + α d, d = b - a:
    # L(α) = L(a) + α (H(a - m))·d + ½ α² dᵀHd, evaluated in float64 NumPy.
    rng = np.random.default_rng(0)
    size = 4 * 3 + 3
    root = rng.normal(size=(size, size))
    hess = root @ root.T / size
    centre = rng.normal(size=size)
    a_vec, b_vec = rng.normal(size=size), rng.normal(size=size)
    alphas = np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 1.7, 3.0])
    d = b_vec - a_vec
    g = hess @ (a_vec - centre)
    expected = 0.5 * (a_vec - centre) @ g + alphas * (g @ d) + 0.5 * alphas**2 * (d @ hess @ d)

    with jax.enable_x64(True):
        def tree(v):
            return {"w": jnp.asarray(v[:12].reshape(4, 3)), "b": jnp.asarray(v[12:])}

        h, m = jnp.asarray(hess), jnp.asarray(centre)

        def loss(params):
            v = jnp.concatenate([params["w"].ravel(), params["b"]]) - m
            return 0.5 * v @ h @ v

        path = paths.interpolate(loss, tree(a_vec), tree(b_vec), alphas=alphas)
    # float64 throughout: agreement to rounding (values are O(10); 1e-12 relative is ~5000 ulps of slack).
    np.testing.assert_allclose(path.loss, expected, rtol=1e-12)
    np.testing.assert_array_equal(path.alpha, alphas)


def test_interpolate_rejects_bad_input():
    a = {"w": jnp.ones((2, 2), jnp.float32)}
    loss = lambda p: jnp.sum(p["w"])  # noqa: E731
    with pytest.raises(ValueError, match="params_b"):
        paths.interpolate(loss, a, {"w": jnp.ones((2, 3), jnp.float32)})
    with pytest.raises(ValueError, match="num=3"):
        paths.interpolate(loss, a, a, 3, alphas=[0.0, 1.0])
    with pytest.raises(ValueError, match="num=1"):
        paths.interpolate(loss, a, a, 1)
    with pytest.raises(ValueError, match="scalar"):
        paths.interpolate(lambda p: p["w"], a, a)
    with pytest.raises(ValueError, match="metrics"):
        paths.interpolate(loss, a, a, metrics={"accuracy": 3})


# ----------------------------------------------------------------------------------------------------------------
# filter-normalized directions and the plane
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", ["plain", "fractal"])
def test_filter_normalized_direction_matches_every_weight_column_norm_and_zeroes_biases(block):
    net = _fractal_net(0, bias_std=0.5) if block == "fractal" else _net(0, (5, 6, 6, 3), bias_std=0.5)
    direction = paths.filter_normalized_direction(jax.random.key(1), net)
    assert jax.tree_util.tree_structure(direction) == jax.tree_util.tree_structure(net)
    pairs = list(zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(direction), strict=True))
    weights = [(w, d) for w, d in pairs if w.ndim == 2]
    assert len(weights) == (5 if block == "fractal" else 3)  # a 2-column fractal block holds 3 dense layers
    for w, d in weights:
        w, d = np.asarray(w, np.float64), np.asarray(d, np.float64)
        # float32 direction: column norms agree to a few ulps (rtol 1e-5 ≈ 80 ulps over sums of ≤ 6 squares).
        np.testing.assert_allclose(np.linalg.norm(d, axis=0), np.linalg.norm(w, axis=0), rtol=1e-5)
        # a random direction, not the weights themselves
        assert abs(_cos(d.ravel(), w.ravel())) < 0.9
    for w, d in pairs:
        if w.ndim == 1:
            np.testing.assert_array_equal(np.asarray(d), 0.0)


def test_raw_gaussian_direction_fails_the_column_norm_check():
    # Negative control for the test above: an un-normalized Gaussian direction of the same shapes does not match
    # the column norms (entries ~ N(0, 1) against weights ~ N(0, 2/fan_in)).
    net = _net(0, (5, 6, 3))
    w = np.asarray(net.layers[0].w, np.float64)
    d = np.asarray(jax.random.normal(jax.random.key(1), w.shape, jnp.float32), np.float64)
    assert not np.allclose(np.linalg.norm(d, axis=0), np.linalg.norm(w, axis=0), rtol=1e-5)


def test_filter_is_the_last_axis_of_a_higher_rank_weight():
    w = (np.random.default_rng(0).normal(size=(3, 4, 5)) * np.arange(1, 6)).astype(np.float32)
    params = {"kernel": jnp.asarray(w), "scale": jnp.ones((), jnp.float32)}
    d = paths.filter_normalized_direction(jax.random.key(1), params)
    norms = lambda v: np.sqrt(np.sum(np.square(np.asarray(v, np.float64)), axis=(0, 1)))  # noqa: E731
    np.testing.assert_allclose(norms(d["kernel"]), norms(w), rtol=1e-5)
    assert float(d["scale"]) == 0.0


def test_plane_centre_is_the_loss_at_params_and_the_grid_is_the_closed_form():
    x, y = _toy_data()
    net = _net(0, (8, 16, 3), bias_std=0.1)
    loss = jax.jit(_cross_entropy(x, y))
    surf = paths.plane(loss, net, key=jax.random.key(3), num=5, span=0.5)
    assert surf.loss.shape == (5, 5)
    np.testing.assert_array_equal(surf.x, np.array([-0.5, -0.25, 0.0, 0.25, 0.5], np.float32))
    # θ + 0·δ + 0·η = θ exactly; batched vs single evaluation: float32 ulps (see interpolate test).
    np.testing.assert_allclose(surf.loss[2, 2], float(loss(net)), rtol=1e-6)
    # the same key draws the same directions
    np.testing.assert_array_equal(paths.plane(loss, net, key=jax.random.key(3), num=5, span=0.5).loss, surf.loss)

    # Layout and values against the closed form of L(θ) = ½‖θ‖²: L(θ + xδ + yη) is a quadratic in (x, y) with
    # coefficients from dot products, computed in float64. δ ≠ η, so a transposed grid would fail.
    d1 = paths.filter_normalized_direction(jax.random.key(4), net)
    d2 = jax.tree_util.tree_map(lambda v: np.float32(3.0) * np.asarray(v),
                                paths.filter_normalized_direction(jax.random.key(5), net))
    half_sq = lambda p: 0.5 * sum(jnp.sum(jnp.square(v)) for v in jax.tree_util.tree_leaves(p))  # noqa: E731
    surf = paths.plane(half_sq, net, num=5, span=1.0, directions=(d1, d2))
    t, u, v = (np.asarray(mlp.flatten(p)[0], np.float64) for p in (net, d1, d2))
    gx, gy = np.meshgrid(surf.x.astype(np.float64), surf.y.astype(np.float64))
    expected = 0.5 * (t @ t + gx**2 * (u @ u) + gy**2 * (v @ v)) + gx * (t @ u) + gy * (t @ v) + gx * gy * (u @ v)
    assert not np.allclose(expected, expected.T, rtol=1e-3)
    # float32 parameters: sums of ~200 squares of O(1) numbers, rtol 1e-5 ≈ 80 ulps.
    np.testing.assert_allclose(surf.loss, expected, rtol=1e-5)


def test_plane_rejects_bad_input():
    net = _net(0, (3, 4, 2))
    loss = lambda p: jnp.sum(p.layers[0].w)  # noqa: E731
    with pytest.raises(ValueError, match="key=None"):
        paths.plane(loss, net)
    with pytest.raises(ValueError, match="span"):
        paths.plane(loss, net, key=jax.random.key(0), span=0.0)
    with pytest.raises(ValueError, match="directions"):
        paths.plane(loss, net, directions=(net,))


# ----------------------------------------------------------------------------------------------------------------
# Bézier curves and barriers
# ----------------------------------------------------------------------------------------------------------------


def _ring(theta):
    # A ring-shaped valley of minima |θ| = 1 with a peak L = 1 at the origin.
    return jnp.square(jnp.sum(jnp.square(theta)) - 1)


_A = jnp.array([1.0, 0.0], jnp.float32)
_B = jnp.array([-1.0, 0.0], jnp.float32)
# Closed form for the ring. With θ_c = (0, y), s = t(1 - t): φ(t) = (1 - 2t, 2sy), |φ|² - 1 = 4s(sy² - 1), and
# E_t L = 16 (y⁴ E s⁴ - 2y² E s³ + E s²) with E s^k = (k!)²/(2k+1)! (a Beta integral): E s² = 1/30, E s³ = 1/140,
# E s⁴ = 1/630. Minimum at y² = E s³ / E s⁴ = 9/2, value 16 (1/30 - 9/280) = 2/105. Along that curve
# L = 16 s² (9s/2 - 1)² on s ∈ [0, 1/4] peaks at s = 1/9 (t ≈ 0.127): barrier 4/81. (x = 0 by the symmetry
# x → -x, t → 1 - t.) The straight line passes through the origin: barrier exactly 1.
_Y_STAR, _E_STAR, _BARRIER_STAR = math.sqrt(4.5), 2.0 / 105.0, 4.0 / 81.0


def _expected_ring_loss(control):
    """E_{t~U(0,1)} L(φ(t)) by 40-point Gauss–Legendre quadrature (exact: the integrand is a polynomial of degree 8)."""
    nodes, weights = np.polynomial.legendre.leggauss(40)
    t = 0.5 * (nodes + 1.0)
    a, b, c = np.array([1.0, 0.0]), np.array([-1.0, 0.0]), np.asarray(control, np.float64)
    phi = (1 - t)[:, None] ** 2 * a + (2 * t * (1 - t))[:, None] * c + t[:, None] ** 2 * b
    return float(0.5 * weights @ (np.sum(phi**2, axis=1) - 1) ** 2)


def test_bezier_point_gives_the_ends_and_a_midpoint_control_gives_the_segment():
    a, b = {"w": jnp.array([1.0, 2.0], jnp.float32)}, {"w": jnp.array([-3.0, 0.5], jnp.float32)}
    mid = {"w": 0.5 * a["w"] + 0.5 * b["w"]}
    np.testing.assert_array_equal(paths.bezier_point(a, mid, b, 0.0)["w"], a["w"])
    np.testing.assert_array_equal(paths.bezier_point(a, mid, b, 1.0)["w"], b["w"])
    for t in (0.1, 0.5, 0.77):
        line = (1 - t) * np.array([1.0, 2.0]) + t * np.array([-3.0, 0.5])
        np.testing.assert_allclose(paths.bezier_point(a, mid, b, t)["w"], line, rtol=1e-6, atol=1e-6)


def test_trained_bezier_curve_goes_round_the_ring_far_below_the_straight_line():
    schedule = optax.cosine_decay_schedule(0.05, 1000)
    curve = paths.bezier_curve(_ring, _A, _B, key=jax.random.key(0), num_steps=1000, learning_rate=schedule,
                               samples_per_step=8, init_noise=0.01)
    assert curve.t.shape == curve.loss.shape == curve.line_loss.shape == (65,)
    assert curve.train_loss.shape == (1000,)
    assert curve.line_barrier == 1.0  # L(0) = 1 exactly, endpoints 0 exactly
    assert curve.barrier < 0.1 * curve.line_barrier
    # Against the closed form. Tolerances rest on the spread measured with these settings over seeds 0–7: |x| ≤ 0.018,
    # ||y| - √4.5| ≤ 0.0063, |barrier - 4/81| ≤ 0.0027, excess E_t L ≤ 3e-5 (Adam's iterate keeps a jitter of a few
    # final step sizes); the bounds are about 3× that spread.
    cx, cy = np.asarray(curve.control, np.float64)
    assert abs(cx) < 0.05, cx
    assert abs(abs(cy) - _Y_STAR) < 0.02, cy
    assert abs(curve.barrier - _BARRIER_STAR) < 0.01, curve.barrier
    # The expected loss is quadratic about its minimum with curvature ≈ 0.9 along y (d²/dy² of the polynomial above
    # at y² = 9/2), so |δc| ≲ 0.05 allows an excess ≲ ½·0.9·0.05² ≈ 1e-3 (≈ 5 % of 2/105).
    assert_within(_expected_ring_loss((cx, cy)), _E_STAR, 0.0, allowance=1e-3, what="E_t L(φ(t))")
    # the quadrature itself is right at the optimum
    assert _expected_ring_loss((0.0, _Y_STAR)) == pytest.approx(_E_STAR, rel=1e-12)


def test_untrained_midpoint_curve_has_the_straight_line_barrier():
    # Negative control: no training (θ_c at the midpoint) is the straight segment, through the peak at the origin,
    # and fails the "far below the line" check above.
    curve = paths.bezier_curve(_ring, _A, _B, key=jax.random.key(0), num_steps=0, learning_rate=0.05)
    np.testing.assert_array_equal(np.asarray(curve.control), [0.0, 0.0])
    assert curve.barrier == curve.line_barrier == 1.0
    assert not curve.barrier < 0.1 * curve.line_barrier
    # and the closed-form check: E_t L at the midpoint is 16 E s² = 8/15, far outside the allowance about 2/105
    assert _expected_ring_loss((0.0, 0.0)) == pytest.approx(16 * (1.0 / 30.0), rel=1e-12)
    with pytest.raises(AssertionError, match="E_t L"):
        assert_within(_expected_ring_loss((0.0, 0.0)), _E_STAR, 0.0, allowance=1e-3, what="E_t L(φ(t))")


def test_barrier_is_the_peak_above_the_higher_end():
    assert paths.barrier([0.2, 1.0, 0.5]) == pytest.approx(0.5)
    assert paths.barrier([1.0, 0.5, 0.2]) == 0.0
    assert paths.barrier(np.array([0.3, 0.3])) == 0.0
    with pytest.raises(ValueError, match="losses_along_path"):
        paths.barrier([1.0])


def test_bezier_curve_rejects_bad_input():
    with pytest.raises(ValueError, match="optimizer"):
        paths.bezier_curve(_ring, _A, _B, key=jax.random.key(0), num_steps=1, learning_rate=0.1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="learning_rate"):
        paths.bezier_curve(_ring, _A, _B, key=jax.random.key(0), num_steps=1, learning_rate=-1.0)
    with pytest.raises(ValueError, match="num_steps"):
        paths.bezier_curve(_ring, _A, _B, key=jax.random.key(0), num_steps=-1, learning_rate=0.1)


# ----------------------------------------------------------------------------------------------------------------
# alignment and overlaps
# ----------------------------------------------------------------------------------------------------------------


def test_align_recovers_a_permuted_copy_exactly():
    a = _net(0, (6, 10, 8, 3), bias_std=0.2)
    b = _random_permuted_copy(a, 1)
    raw = _cos(_np_flat(_np_layers(a)), _np_flat(_np_layers(b)))
    # A random permutation leaves ~1 unit per layer in place: the cosine is ~1/width, far from 1.
    assert raw < 0.5, raw
    aligned = paths.align(a, b)
    for la, lb in zip(a.layers, aligned.layers, strict=True):
        np.testing.assert_array_equal(lb.w, la.w)
        np.testing.assert_array_equal(lb.b, la.b)
    stack = _stack([a, b])
    result = paths.overlaps(stack)
    np.testing.assert_allclose(result.raw[0, 1], raw, rtol=1e-12)
    assert result.aligned[0, 1] == pytest.approx(1.0, abs=1e-12)


def test_aligned_network_computes_the_same_function():
    x, _ = _toy_data(n_in=6)
    a = _net(0, (6, 10, 8, 3), bias_std=0.2, activation="tanh")
    b = _net(1, (6, 10, 8, 3), bias_std=0.2, activation="tanh")
    aligned = paths.align(a, b)
    assert any(not np.array_equal(u, v) for u, v in zip(jax.tree_util.tree_leaves(aligned),
                                                         jax.tree_util.tree_leaves(b), strict=True))
    out_b, out_aligned = np.asarray(mlp.apply(b, x)), np.asarray(mlp.apply(aligned, x))
    # Same function; only the order of the float32 sums over hidden units changes: a few ulps of O(1) logits.
    np.testing.assert_allclose(out_aligned, out_b, rtol=1e-5, atol=1e-6)
    # and the same parameters as a set: a permutation preserves the norm exactly
    assert float(mlp.weight_norm(aligned)) == pytest.approx(float(mlp.weight_norm(b)), rel=1e-6)


def test_one_hidden_layer_alignment_is_the_brute_force_maximum():
    # One hidden layer: the matching is a single linear assignment, so align must reach the maximum over all
    # 6! = 720 permutations, enumerated here in NumPy.
    for seed in range(4):
        a = _net(2 * seed, (4, 6, 3), bias_std=0.3)
        b = _net(2 * seed + 1, (4, 6, 3), bias_std=0.3)
        va, lb = _np_flat(_np_layers(a)), _np_layers(b)
        best = max(_cos(va, _np_flat(_np_permute(lb, [np.array(p)]))) for p in itertools.permutations(range(6)))
        got = _cos(va, _np_flat(_np_layers(paths.align(a, b))))
        assert got == pytest.approx(best, abs=1e-12), (seed, got, best)


def test_two_hidden_layer_alignment_lies_between_identity_and_brute_force():
    # Two hidden layers: coordinate ascent over layers is a local search (it reached the global maximum in 13 of
    # 20 seeds at these widths), never below the unaligned overlap and never above the maximum over all
    # 4! × 4! = 576 permutation pairs.
    for seed in range(3):
        a = _net(2 * seed, (3, 4, 4, 2), bias_std=0.3)
        b = _net(2 * seed + 1, (3, 4, 4, 2), bias_std=0.3)
        va, lb = _np_flat(_np_layers(a)), _np_layers(b)
        best = max(_cos(va, _np_flat(_np_permute(lb, [np.array(p), np.array(r)])))
                   for p in itertools.permutations(range(4)) for r in itertools.permutations(range(4)))
        got = _cos(va, _np_flat(_np_layers(paths.align(a, b))))
        assert _cos(va, _np_flat(lb)) - 1e-12 <= got <= best + 1e-12, (seed, got, best)


_WIDTHS = (16, 32, 4)


def _independent_overlap_bounds():
    """Theory for independent networks of ``_WIDTHS`` (zero biases, W^l ~ N(0, 2/fan_in)).

    Unaligned: q = ⟨θ_a, θ_b⟩/(‖θ_a‖‖θ_b‖) has mean 0 and standard deviation √(Σ_i v_i²)/Σ_i v_i (v_i the entry
    variances). Aligned: ⟨θ_a, πθ_b⟩ = Σ_j S_{j,σ(j)} with S_jk = ⟨W¹_a[:, j], W¹_b[:, k]⟩ + ⟨W²_a[j], W²_b[k]⟩,
    Gaussian in b with variance ≈ n_0 v_1² + n_2 v_2²; the Gaussian maximal inequality E max_k S_jk ≤ σ √(2 ln n_1)
    gives q_aligned ≲ √(2 ln n_1) √(n_0 v_1² + n_2 v_2²) / (n_0 v_1 + n_2 v_2) ≈ 0.603.
    """
    n0, n1, n2 = _WIDTHS
    v1, v2 = 2.0 / n0, 2.0 / n1
    sum_v, sum_v2 = n0 * n1 * v1 + n1 * n2 * v2, n0 * n1 * v1**2 + n1 * n2 * v2**2
    raw_std = math.sqrt(sum_v2) / sum_v
    aligned_bound = math.sqrt(2 * math.log(n1)) * math.sqrt(n0 * v1**2 + n2 * v2**2) / (n0 * v1 + n2 * v2)
    return raw_std, aligned_bound


def _row_max_bound(a, b):
    """Deterministic upper bound on max_π ⟨θ_a, πθ_b⟩/(‖θ_a‖‖θ_b‖) for one hidden layer: Σ_j max_k S_jk."""
    (w1a, b1a), (w2a, b2a) = _np_layers(a)
    (w1b, b1b), (w2b, b2b) = _np_layers(b)
    s = w1a.T @ w1b + np.outer(b1a, b1b) + w2a @ w2b.T
    norm = np.linalg.norm(_np_flat(_np_layers(a))) * np.linalg.norm(_np_flat(_np_layers(b)))
    return float((np.sum(s.max(axis=1)) + b2a @ b2b) / norm)


def _check_unaligned(q, raw_std):
    """Statistical check of unaligned pair overlaps of independent networks (shared with the negative control)."""
    # Pair overlaps of independent networks are uncorrelated (E⟨a,b⟩⟨a,c⟩ = 0): stderr of the mean raw_std/√P.
    assert_within(np.mean(q), 0.0, raw_std / math.sqrt(np.size(q)), what="mean unaligned q")


def _check_aligned(q, aligned_bound):
    """Aligned pair overlaps of independent networks stay below the Gaussian-maximum bound."""
    assert np.all(np.asarray(q) < aligned_bound), f"aligned q {q} not all below {aligned_bound:.4f}"


def test_independent_networks_have_small_overlaps_and_alignment_only_raises_them():
    nets = [_net(70 + i, _WIDTHS) for i in range(5)]
    # device arrays with a leading axis, as nets.train.fit_many returns them
    stack = jax.tree_util.tree_map(jnp.asarray, _stack(nets))
    result = paths.overlaps(stack)
    raw_std, aligned_bound = _independent_overlap_bounds()
    assert aligned_bound == pytest.approx(0.6031, abs=1e-4)
    pairs = np.triu_indices(5, k=1)
    np.testing.assert_allclose(result.raw, result.raw.T)
    np.testing.assert_allclose(result.aligned, result.aligned.T)
    np.testing.assert_allclose(np.diag(result.raw), 1.0, rtol=1e-12)
    _check_unaligned(result.raw[pairs], raw_std)
    _check_aligned(result.aligned[pairs], aligned_bound)
    for i, j in zip(*pairs, strict=True):
        # a maximum over permutations (the identity among them), below the deterministic row-maximum bound
        assert result.raw[i, j] - 1e-12 <= result.aligned[i, j] <= _row_max_bound(nets[i], nets[j]) + 1e-12
        np.testing.assert_allclose(result.raw[i, j], _cos(_np_flat(_np_layers(nets[i])),
                                                          _np_flat(_np_layers(nets[j]))), rtol=1e-12)
    # Alignment raises the overlap of independent networks well above 0: the finite-width "overlap floor"
    # (measured ≈ 0.40 at these widths; unaligned ≈ 0 ± 0.04).
    assert result.aligned[pairs].min() > 0.3
    # aligning everything onto network 0 reproduces row 0 of the pairwise result (the same matchings)
    onto_first = paths.overlaps(stack, reference=0)
    np.testing.assert_allclose(onto_first.aligned[0], result.aligned[0], rtol=1e-12)
    assert paths.overlaps(stack, align=False).aligned is None


def _noisy_copies(a, *, permute: bool, count: int = 4):
    """``a`` and noisy copies of it (filter-normalized noise of relative size 0.3), hidden units permuted or not."""
    copies = [a]
    for i in range(count - 1):
        c = _random_permuted_copy(a, 10 + i) if permute else a
        noise = paths.filter_normalized_direction(jax.random.key(20 + i), c)
        copies.append(jax.tree_util.tree_map(lambda u, v: np.asarray(u) + np.float32(0.3) * np.asarray(v), c, noise))
    return _stack(copies)


def test_overlap_checks_reject_related_networks():
    # Negative controls: networks that are noisy copies of one another fail the independent-network checks.
    raw_std, aligned_bound = _independent_overlap_bounds()
    pairs = np.triu_indices(4, k=1)
    a = _net(0, _WIDTHS)
    permuted = paths.overlaps(_noisy_copies(a, permute=True))
    assert permuted.aligned[pairs].min() > 0.9
    with pytest.raises(AssertionError, match="not all below"):
        _check_aligned(permuted.aligned[pairs], aligned_bound)
    unpermuted = paths.overlaps(_noisy_copies(a, permute=False), align=False)
    with pytest.raises(AssertionError, match="mean unaligned q"):
        _check_unaligned(unpermuted.raw[pairs], raw_std)


def test_align_refuses_residual_fractal_and_mismatched_networks():
    plain = _net(0, (5, 6, 6, 3))
    for block in ("residual", "fractal"):
        other = _fractal_net(1) if block == "fractal" else dataclasses.replace(_net(1, (5, 6, 6, 3)), block=block)
        with pytest.raises(ValueError, match="only plain MLPs"):
            paths.align(other, other)
        stack = _stack([other, other])
        with pytest.raises(ValueError, match="only plain MLPs"):
            paths.overlaps(stack)
        assert paths.overlaps(stack, align=False).raw.shape == (2, 2)
    with pytest.raises(ValueError, match="widths"):
        paths.align(plain, _net(1, (5, 7, 6, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        paths.overlaps(_stack([plain]))
    with pytest.raises(ValueError, match="reference"):
        paths.overlaps(_stack([plain, plain]), reference=2)


# ----------------------------------------------------------------------------------------------------------------
# P(q)
# ----------------------------------------------------------------------------------------------------------------


def test_overlap_distribution_counts_pairs_in_the_glass_bins():
    q = np.array([-1.0, -0.01, 0.01, 0.02, 0.5, 1.0 + 1e-9])
    dist = paths.overlap_distribution(q)
    # The glass's bins (runs/jobs/pspin.py): 41 equal bins on [-1, 1], width 2/41; centres -1 + (k + ½)·2/41.
    width = 2.0 / 41.0
    np.testing.assert_allclose(dist.q_bin, -1.0 + (np.arange(41) + 0.5) * width, atol=1e-15)
    # By hand: bin k holds [-1 + k w, -1 + (k+1) w); the last bin is closed; 1 + 1e-9 is rounding of a cosine.
    counts = np.zeros(41)
    for k in (0, 20, 20, 20, 30, 40):
        counts[k] += 1
    np.testing.assert_allclose(dist.density, counts / (q.size * width), rtol=1e-12)
    assert np.sum(dist.density) * width == pytest.approx(1.0)
    # a square matrix contributes its pairs a < b
    matrix = np.array([[1.0, 0.5, -0.5], [0.5, 1.0, 0.0], [-0.5, 0.0, 1.0]])
    np.testing.assert_array_equal(paths.overlap_distribution(matrix, bins=4).density,
                                  paths.overlap_distribution([0.5, -0.5, 0.0], bins=4).density)
    with pytest.raises(ValueError, match="q_values"):
        paths.overlap_distribution([0.2, 1.5])
    with pytest.raises(ValueError, match="bins"):
        paths.overlap_distribution([0.2], bins=[0.5, 0.1])


def test_pq_dataset_has_the_glass_schema():
    q = np.array([0.1, 0.4, 0.35])
    ds = paths.pq_dataset(q)
    assert set(ds) == {"q_bin", "overlap_distribution", "pair", "overlap"}
    for name, (dims, values) in ds.items():
        assert isinstance(dims, tuple) and len(dims) == np.ndim(values), name
    assert ds["overlap_distribution"][0] == ("q_bin",) and ds["q_bin"][0] == ("q_bin",)
    assert ds["overlap"][0] == ("pair",) and ds["pair"][0] == ("pair",)
    edges = np.linspace(-1.0, 1.0, 42)  # the glass's P(q) edges, as runs/jobs/pspin.py builds them
    np.testing.assert_allclose(ds["q_bin"][1], 0.5 * (edges[1:] + edges[:-1]), atol=1e-15)
    np.testing.assert_array_equal(ds["overlap"][1], q)
    np.testing.assert_array_equal(ds["pair"][1], [0, 1, 2])
