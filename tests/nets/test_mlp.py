"""nets.mlp: initialization statistics, the mean-field variance map, blocks, flatten/unflatten, validation."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nets import mlp
from tests.stats import assert_within


def test_init_weight_variance_matches_sigma_w_squared_over_fan_in():
    sw, sb, n = 1.7, 0.4, 400
    net = mlp.init(jax.random.key(0), (n, n, 3), activation="tanh", weight_std=sw, bias_std=sb)
    w = np.asarray(net.layers[0].w, np.float64).ravel()
    b = np.asarray(net.layers[0].b, np.float64)
    # Var of a sample variance of N(0, v) is 2v²/N.
    v = sw**2 / n
    assert_within(w.var(), v, v * math.sqrt(2 / w.size), what="Var W")
    assert_within(w.mean(), 0.0, math.sqrt(v / w.size), what="mean W")
    assert_within(b.var(), sb**2, sb**2 * math.sqrt(2 / b.size), what="Var b")


def test_relu_second_moment_follows_the_mean_field_map():
    # Poole et al. 2016 eq. 3 for ReLU: E[z²] = σ_w² E[φ(z_prev)²] + σ_b², E[relu(z)²] = q/2 for z ~ N(0, q),
    # exact in expectation over the weights at any width. Independent networks are the replicas.
    sw, sb, n, reps = 1.3, 0.3, 256, 24
    x = jax.random.normal(jax.random.key(1), (8, n), jnp.float32)
    q0 = float(jnp.mean(jnp.sum(jnp.square(x), axis=1) / n))
    q1 = sw**2 * q0 + sb**2
    q2 = sw**2 * q1 / 2 + sb**2
    keys = jax.random.split(jax.random.key(2), reps)

    def moments(k):
        net = mlp.init(k, (n, n, n, 2), activation="relu", weight_std=sw, bias_std=sb)
        h1, h2 = mlp.hidden_activations(net, x)
        return jnp.mean(jnp.square(h1)), jnp.mean(jnp.square(h2))

    m1, m2 = (np.asarray(m, np.float64) for m in jax.vmap(moments)(keys))
    assert_within(m1.mean(), q1 / 2, m1.std(ddof=1) / math.sqrt(reps), what="E h1²")
    assert_within(m2.mean(), q2 / 2, m2.std(ddof=1) / math.sqrt(reps), what="E h2²")


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "linear"])
def test_apply_one_example_equals_batch_row(activation):
    net = mlp.init(jax.random.key(0), (5, 7, 3), activation=activation, bias_std=0.1)
    x = jax.random.normal(jax.random.key(1), (4, 5), jnp.float32)
    batch = mlp.apply(net, x)
    assert batch.shape == (4, 3)
    np.testing.assert_allclose(mlp.apply(net, x[2]), batch[2], rtol=1e-6, atol=1e-6)


def test_linear_network_is_the_product_of_its_matrices():
    net = mlp.init(jax.random.key(0), (4, 6, 5, 2), activation="linear", bias_std=0.2)
    x = np.asarray(jax.random.normal(jax.random.key(1), (3, 4), jnp.float32), np.float64)
    ref = x
    for layer in net.layers:
        ref = ref @ np.asarray(layer.w, np.float64) + np.asarray(layer.b, np.float64)
    np.testing.assert_allclose(mlp.apply(net, x.astype(np.float32)), ref, rtol=1e-5, atol=1e-5)


def test_residual_block_with_zero_weights_is_the_identity():
    net = mlp.init(jax.random.key(0), (3, 8, 8, 8, 2), block="residual")
    zero_mid = tuple(
        mlp.Dense(w=jnp.zeros_like(l.w), b=jnp.zeros_like(l.b)) if 0 < i < 3 else l for i, l in enumerate(net.layers)
    )
    net0 = mlp.MLP(layers=zero_mid, activation="relu", block="residual")
    x = jax.random.normal(jax.random.key(1), (5, 3), jnp.float32)
    h = mlp.hidden_activations(net0, x)
    np.testing.assert_allclose(h[1], h[0], atol=0)
    np.testing.assert_allclose(h[2], h[0], atol=0)


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_fractal_block_has_2c_minus_1_layers_and_joins_by_mean(columns):
    w = 6
    net = mlp.init(jax.random.key(0), (3, w, w, 2), block="fractal", columns=columns)
    per_block = (2**columns - 1) * (w * w + w)
    assert mlp.param_count(net) == (3 * w + w) + per_block + (w * 2 + 2)
    if columns == 2:
        blk = net.layers[1]
        h = jax.random.normal(jax.random.key(1), (4, w), jnp.float32)
        relu = jax.nn.relu
        deep = relu(relu(h @ blk.first.w + blk.first.b) @ blk.second.w + blk.second.b)
        short = relu(h @ blk.short.w + blk.short.b)
        x = jax.random.normal(jax.random.key(2), (4, 3), jnp.float32)
        h0 = relu(x @ net.layers[0].w + net.layers[0].b)
        deep = relu(relu(h0 @ blk.first.w + blk.first.b) @ blk.second.w + blk.second.b)
        short = relu(h0 @ blk.short.w + blk.short.b)
        np.testing.assert_allclose(mlp.hidden_activations(net, x)[1], 0.5 * (deep + short), rtol=1e-6, atol=1e-6)


def test_flatten_unflatten_round_trip_and_param_count():
    net = mlp.init(jax.random.key(0), (5, 9, 9, 4), block="fractal", columns=2)
    vec, unravel = mlp.flatten(net)
    assert vec.shape == (mlp.param_count(net),)
    back = mlp.unflatten(net, vec * 2.0)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(net)):
        np.testing.assert_array_equal(a, 2.0 * b)
    assert jax.tree_util.tree_structure(unravel(vec)) == jax.tree_util.tree_structure(net)
    assert mlp.widths(net) == (5, 9, 9, 4)
    with pytest.raises(ValueError, match="vector.shape"):
        mlp.unflatten(net, vec[:-1])


def test_dropout_is_inverted_and_keyed():
    net = mlp.init(jax.random.key(0), (4, 64, 2), activation="linear")
    x = jnp.ones((2000, 4), jnp.float32)
    a = mlp.apply(net, x, key=jax.random.key(1), dropout=0.5)
    b = mlp.apply(net, x, key=jax.random.key(1), dropout=0.5)
    np.testing.assert_array_equal(a, b)
    clean = np.asarray(mlp.apply(net, x[:1]))[0]
    d = np.asarray(a, np.float64)
    # inverted dropout keeps the mean of a linear network's output
    for j in range(2):
        assert_within(d[:, j].mean(), clean[j], d[:, j].std(ddof=1) / math.sqrt(len(d)), what=f"mean output {j}")


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(widths=(3,)), "widths"),
        (dict(widths=(3, 0, 2)), "widths"),
        (dict(widths=(3, 2), activation="sigmoid"), "activation"),
        (dict(widths=(3, 2), block="dense"), "block"),
        (dict(widths=(3, 2), weight_std=0.0), "weight_std"),
        (dict(widths=(3, 2), bias_std=-1.0), "bias_std"),
    ],
)
def test_init_validates_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        mlp.init(jax.random.key(0), **kwargs)


def test_weight_norm_is_the_euclidean_norm_of_every_parameter():
    # A fractal net nests Dense layers inside Fractal blocks: every leaf at every depth must count.
    net = mlp.init(jax.random.key(4), (5, 6, 6, 3), block="fractal", columns=3, bias_std=0.3)
    squares = sum(np.sum(np.asarray(leaf, np.float64) ** 2) for leaf in jax.tree_util.tree_leaves(net))
    leaves = jax.tree_util.tree_leaves(net)
    assert len(leaves) == 2 * (1 + 7 + 1)  # w and b of the input layer, the 2^3 − 1 block layers, the output layer
    # float32 sum of ~350 squares: relative rounding error well under 1e-6 per operation
    np.testing.assert_allclose(float(mlp.weight_norm(net)), math.sqrt(squares), rtol=1e-6)
    # homogeneous of degree one, and zero only for the zero network
    doubled = jax.tree_util.tree_map(lambda a: 2.0 * a, net)
    np.testing.assert_allclose(float(mlp.weight_norm(doubled)), 2.0 * math.sqrt(squares), rtol=1e-6)
    assert float(mlp.weight_norm(jax.tree_util.tree_map(jnp.zeros_like, net))) == 0.0
