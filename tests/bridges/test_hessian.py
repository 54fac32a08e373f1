"""bridges.hessian: HVPs, Lanczos extremes, SLQ density, Hutchinson trace, blocks and the p-spin operator path.

References are dense: ``jax.hessian`` of the unchunked loss in float64 diagonalized by ``numpy.linalg.eigvalsh``,
a forward pass and cross-entropy written here in numpy, central differences of the gradient, and
``physics.spherical.tangent_eigenvalues`` (a Householder reduction, no Lanczos) for the glass. Statistical checks
compare with the dense value at 4 standard errors (fixed seeds) and each has a negative control that the same
check must reject.

The module runs with float64 enabled (an autouse fixture); float32 arrays stay float32, and the float32 test keeps
conftest's strict promotion. ``nets.mlp.apply`` casts its input to float32, so a float64 network mixes dtypes in
its first layer: those calls run under standard promotion (``_mixed``). Each test compiles its calls as one
program where it can: XLA compilation (≈ 1 s per Lanczos loop on one core) dominates the run time.
"""
import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from bridges import hessian
from nets import mlp
from physics import spherical
from tests.stats import assert_within

K_SIGMA = 4.0  # statistical checks: |estimate - exact| ≤ 4 stderr
WIDTHS = (8, 12, 3)  # 8·12 + 12 + 12·3 + 3 = 147 parameters
LAYER0, LAYER1 = np.arange(0, 108), np.arange(108, 147)  # ravel order: layers/0/w, layers/0/b, layers/1/w, /b


@pytest.fixture(scope="module", autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@contextlib.contextmanager
def _mixed():
    with jax.numpy_dtype_promotion("standard"):
        yield


def _network(seed, dtype=jnp.float64):
    """A tanh MLP with N(0, 1/fan_in) weights and N(0, 0.2²) biases, drawn by numpy and rounded to float32 so the
    float32 and float64 networks are the same point."""
    rng = np.random.default_rng(seed)
    layers = []
    for a, b in zip(WIDTHS[:-1], WIDTHS[1:], strict=True):
        w = (rng.normal(size=(a, b)) / math.sqrt(a)).astype(np.float32)
        bias = (0.2 * rng.normal(size=b)).astype(np.float32)
        layers.append(mlp.Dense(w=jnp.asarray(w, dtype), b=jnp.asarray(bias, dtype)))
    return mlp.MLP(layers=tuple(layers), activation="tanh")


def _dense_hessian(loss, params):
    theta, unravel = ravel_pytree(params)
    with _mixed():
        return np.asarray(jax.jit(jax.hessian(lambda t: loss(unravel(t))))(theta), np.float64)


@pytest.fixture(scope="module")
def problem():
    """Gaussian inputs labelled by a random linear teacher, the network at initialization, its loss (chunked:
    60 = 8·7 + 4, the last chunk padded) and the dense Hessian of the unchunked loss."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(60, WIDTHS[0])).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(WIDTHS[0], WIDTHS[-1])), axis=1).astype(np.int32)
    net = _network(3)
    loss = hessian.mlp_loss(net, x, y, chunk=7)
    dense = _dense_hessian(hessian.mlp_loss(net, x, y), net)
    return dict(x=x, y=y, net=net, loss=loss, H=dense, evals=np.linalg.eigvalsh(dense), n=dense.shape[0])


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


# --- losses and products -------------------------------------------------------------------------------------------


def test_chunked_loss_equals_unchunked_and_numpy(problem):
    x, y, net = problem["x"], problem["y"], problem["net"]
    targets = np.linspace(-1, 1, len(x)).astype(np.float32)
    whole, chunked = hessian.mlp_loss(net, x, y), problem["loss"]
    regression = hessian.mlp_loss(net, x, targets, chunk=7)
    with _mixed():
        (v_whole, g_whole), (v_chunk, g_chunk), v_reg = jax.jit(
            lambda p: (jax.value_and_grad(whole)(p), jax.value_and_grad(chunked)(p), regression(p)))(net)
    # numpy forward pass and log-sum-exp, float64
    w0, b0, w1, b1 = (np.asarray(a, np.float64) for layer in net.layers for a in (layer.w, layer.b))
    logits = np.tanh(x.astype(np.float64) @ w0 + b0) @ w1 + b1
    top = logits.max(axis=1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    exact = np.mean(lse - logits[np.arange(len(y)), y])
    # float64 throughout: a sum of chunk sums and one mean differ only by rounding (≈ 1e-16 relative)
    np.testing.assert_allclose([float(v_whole), float(v_chunk)], exact, rtol=1e-13)
    np.testing.assert_allclose(_flat(g_chunk), _flat(g_whole), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(float(v_reg), np.mean((logits[:, 0] - targets) ** 2), rtol=1e-13)


def test_hvp_matches_dense_hessian_and_finite_differences(problem):
    net, loss, H, n = problem["net"], problem["loss"], problem["H"], problem["n"]
    v = np.random.default_rng(5).normal(size=n)
    tangent = ravel_pytree(net)[1](jnp.asarray(v))
    eps = 1e-5

    def products(p, t):
        shifted = [jax.tree_util.tree_map(lambda a, b, c=sign: a + c * eps * b, p, t) for sign in (1.0, -1.0)]
        grads = [ravel_pytree(jax.grad(loss)(q))[0] for q in shifted]
        return hessian.hvp(loss, p, t), hessian.hessian_operator(loss, p).matvec(ravel_pytree(t)[0]), grads

    with _mixed():
        hv_tree, hv_op, (g_plus, g_minus) = jax.jit(products)(net, tangent)
    exact = H @ v
    scale = np.linalg.norm(exact)
    # two float64 differentiation routes of the same loss (chunked and not): rounding ≈ 1e-15 relative
    np.testing.assert_allclose(_flat(hv_tree), exact, atol=1e-12 * scale)
    np.testing.assert_allclose(np.asarray(hv_op), exact, atol=1e-12 * scale)
    # central differences of the gradient: truncation O(ε² |∇³L|) ≈ 1e-10, rounding O(1e-16/ε) ≈ 1e-11
    fd = (np.asarray(g_plus) - np.asarray(g_minus)) / (2 * eps)
    np.testing.assert_allclose(fd, exact, atol=1e-8 * scale)


def test_dataset_loss_on_a_dict_pytree_has_the_least_squares_hessian():
    # ℓ = (w·x + b - y)² on a dict of parameters: L = mean ℓ has the closed-form Hessian (2/N) AᵀA, A = [1, X]
    # (ravel order: "b" before "w")
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=30)
    params = {"w": jnp.asarray(rng.normal(size=5)), "b": jnp.asarray(0.3)}
    loss = hessian.dataset_loss(lambda p, xi, yi: jnp.square(jnp.dot(p["w"], xi) + p["b"] - yi), x, y, chunk=7)
    v = rng.normal(size=6)
    value, hv = jax.jit(lambda p, u: (loss(p), hessian.hessian_operator(loss, p).matvec(u)))(params, jnp.asarray(v))
    a = np.hstack([np.ones((30, 1)), x])
    residual = a @ np.concatenate([[0.3], np.asarray(params["w"])]) - y
    np.testing.assert_allclose(float(value), np.mean(residual**2), rtol=1e-13)  # float64 rounding
    np.testing.assert_allclose(np.asarray(hv), 2.0 / 30 * a.T @ (a @ v), rtol=1e-12)
    assert hessian.parameter_paths(params) == ["b", "w"]


# --- Lanczos ------------------------------------------------------------------------------------------------------


def _permuted(net, perm):
    """The same network with its hidden units relabelled: the same function, a Hessian P H Pᵀ."""
    first, second = net.layers
    return mlp.MLP(layers=(mlp.Dense(first.w[:, perm], first.b[perm]), mlp.Dense(second.w[perm], second.b)),
                   activation="tanh")


def test_extreme_eigenvalues_and_full_spectrum_match_dense(problem):
    net, loss, H, evals, n = problem["net"], problem["loss"], problem["H"], problem["evals"], problem["n"]
    k = 5
    # a stack of two networks (vmapped, as for nets.train.fit_many): the fixture's and one with permuted hidden
    # units, whose dense Hessian is H with rows and columns permuted
    perm = np.random.default_rng(1).permutation(WIDTHS[1])
    positions = ravel_pytree(net)[1](jnp.arange(n, dtype=jnp.float64))  # each parameter's flat index
    index_of = np.asarray(ravel_pytree(_permuted(positions, perm))[0]).astype(int)
    dense = [H, H[np.ix_(index_of, index_of)]]
    stack = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), net, _permuted(net, perm))

    def run(stack, p):
        return (jax.vmap(lambda q: hessian.top_eigenvalues(loss, q, k, which="both", eigenvectors=True))(stack),
                hessian.top_eigenvalues(loss, p, n, num_iter=n, which="smallest"))

    with _mixed():
        out, everything = jax.jit(run)(stack, net)
    scale = np.max(np.abs(evals))
    values = np.asarray(out.values)
    assert values.shape == (2, 2, k)
    flat = np.asarray(jax.vmap(jax.vmap(jax.vmap(lambda t: ravel_pytree(t)[0])))(out.vectors))
    assert flat.shape == (2, 2, k, n)
    for h, vals, vecs in zip(dense, values, flat, strict=True):
        # 60 Lanczos steps (default 4k + 40) in 147 dimensions; the brief asks 1e-4 relative for the top k
        np.testing.assert_allclose(vals[0], evals[::-1][:k], rtol=1e-4)
        np.testing.assert_allclose(vals[1], evals[:k], rtol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=-1), 1.0, atol=1e-12)
        # converged Ritz pairs: residual ‖H u - λ u‖ within 1e-4 of the spectral radius (as the values)
        residuals = np.linalg.norm(np.einsum("ij,rkj->rki", h, vecs) - vals[..., None] * vecs, axis=-1)
        assert np.max(residuals) < 1e-4 * scale, residuals
    # m = dim with full reorthogonalization: T is similar to H up to rounding, ≈ n·ε·‖H‖ ≈ 3e-14 ‖H‖
    np.testing.assert_allclose(np.asarray(everything), evals, atol=1e-11 * scale)


def test_degenerate_spectrum_restarts_and_keeps_multiplicities():
    # A = Q diag(d) Qᵀ with eigenvalue 0 ten times and 2 twice: a Krylov space has only 10 dimensions, so Lanczos
    # breaks down and must restart with fresh orthogonal directions to reach all 20 eigenvalues
    d = np.array([0.0] * 10 + [2.0, 2.0] + [-3.0, -1.0, 0.5, 1.0, 1.5, 3.0, 4.0, 5.0])
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(20, 20)))
    a = jnp.asarray((q * d) @ q.T)
    op = hessian.operator(lambda v: a @ v, 20, dtype=jnp.float64)
    everything = hessian.top_eigenvalues(op, None, 20, num_iter=20, which="smallest")
    np.testing.assert_allclose(np.asarray(everything), np.sort(d), atol=1e-12)


def test_float32_network_top_eigenvalues(problem):
    # float32 weights (the same point as the float64 fixture) under strict promotion. 1e-4 of ‖H‖ ≈ 800 float32
    # ulps: rounding of each product (≈ 150 terms per entry) through 60 reorthogonalized steps
    x, y, evals = problem["x"], problem["y"], problem["evals"]
    net32 = _network(3, jnp.float32)
    values = hessian.top_eigenvalues(hessian.mlp_loss(net32, x, y, chunk=16), net32, 3)
    assert values.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(values, np.float64), evals[::-1][:3], atol=1e-4 * np.max(np.abs(evals)))


# --- blocks -------------------------------------------------------------------------------------------------------


def test_layer_blocks_are_the_dense_sub_blocks(problem):
    net, loss, H = problem["net"], problem["loss"], problem["H"]
    assert hessian.parameter_paths(net) == ["layers/0/w", "layers/0/b", "layers/1/w", "layers/1/b"]
    assert hessian.parameter_paths(net, depth=2) == ["layers/0", "layers/1"]
    # every selector form picks the same leaves: the embedding of a block vector of ones shows which
    mask = mlp.MLP(layers=(mlp.Dense(False, False), mlp.Dense(True, True)), activation="tanh")
    for block in ("layers/1", ["layers/1/w", "layers/1/b"], lambda path, leaf: path.startswith("layers/1/"), mask):
        op = hessian.hessian_operator(loss, net, block=block)
        assert op.n == op.dim == LAYER1.size
        np.testing.assert_array_equal(_flat(op.to_pytree(jnp.ones(op.n))), np.isin(np.arange(147), LAYER1))

    with _mixed():
        out = hessian.top_eigenvalues(loss, net, 108, num_iter=108, which="smallest", block="layers/0",
                                      eigenvectors=True)
    block = H[np.ix_(LAYER0, LAYER0)]
    ev0 = np.linalg.eigvalsh(block)
    # the whole 108-dimensional block spectrum (m = dim): rounding ≈ n·ε·‖H_00‖
    np.testing.assert_allclose(np.asarray(out.values), ev0, atol=1e-11 * np.max(np.abs(ev0)))
    # the Ritz vectors are embedded in full parameter pytrees, zero outside the block, eigenvectors of the
    # dense sub-block (‖H_00 u - λ u‖ at rounding level)
    flat = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(out.vectors))
    assert np.all(flat[:, LAYER1] == 0.0)
    u = flat[:, LAYER0]
    residuals = np.linalg.norm(u @ block - np.asarray(out.values)[:, None] * u, axis=1)
    assert np.max(residuals) < 1e-10 * np.max(np.abs(ev0))
    with pytest.raises(ValueError, match="selects no parameter"):
        hessian.top_eigenvalues(loss, net, 1, block="layers/7")


# --- stochastic estimators ----------------------------------------------------------------------------------------


def _hutchinson_variance(a):
    """Variance of one Rademacher probe zᵀAz: 2(‖A‖_F² - Σ A_ii²) (Avron & Toledo 2011, J. ACM 58:8, Lemma 1)."""
    return 2.0 * (np.sum(a * a) - np.sum(np.diag(a) ** 2))


def test_hutchinson_trace_within_its_error_bar(problem):
    net, loss, H = problem["net"], problem["loss"], problem["H"]
    # tr H ≈ 2.5 against ‖H‖_F ≈ 2.8 at initialization (an indefinite Hessian): 8000 probes resolve a 10% change
    # at ≈ 6 standard errors, which the negative control needs
    probes = 8000
    with _mixed():  # 2000 probes vmapped at a time
        est = hessian.trace(loss, net, key=jax.random.key(21), num_probes=probes, probe_batch=2000)
    exact = np.trace(H)
    assert_within(est.mean, exact, est.stderr, k=K_SIGMA, what="Hutchinson tr H")
    # the error bar against the exact Rademacher variance: a sample std of 8000 near-Gaussian values has a
    # relative error ≈ 1/√16000 ≈ 0.8%; 5% leaves room for a heavier-tailed zᵀHz
    theory = math.sqrt(_hutchinson_variance(H) / probes)
    assert abs(float(est.stderr) / theory - 1) < 0.05, (float(est.stderr), theory)
    # negative control: the same check rejects the trace of 1.1 H
    assert abs(float(est.mean) - 1.1 * exact) > K_SIGMA * float(est.stderr), (float(est.mean), exact)


def test_slq_moments_and_index_match_dense(problem):
    net, loss, H, evals, n = problem["net"], problem["loss"], problem["H"], problem["evals"], problem["n"]
    scale = np.max(np.abs(evals))
    # The softmax is unchanged by a common shift of the logits, so W_1 → W_1 + a 1ᵀ (12 directions) and
    # b_1 → b_1 + c 1 leave the loss flat: 13 exact zero eigenvalues, whose rounding-level Ritz values (and dense
    # eigenvalues) have arbitrary signs. An index counts below a threshold above rounding (measured with 7680
    # probes: threshold 0 reads 0.5622 ± 0.0008 against the dense 0.5578 — the zero modes' signs, not SLQ).
    assert np.sum(np.abs(evals) < 1e-10 * scale) == 13
    tol, small, threshold = 0.02 * scale, 1e-8 * scale, 0.01 * scale
    probes = 64
    # m = dim steps: each probe's quadrature is Σ_i (v·u_i)² f(λ_i) exactly, for any f (the index's step too),
    # an unbiased estimate of (1/n) Σ_i f(λ_i) with v = z/√n; for the moments any m ≥ 2 is already exact

    def run(p):
        spec = hessian.density(loss, p, key=jax.random.key(31), num_probes=probes, num_steps=n)
        return (spec, hessian.spectral_average(spec, lambda t: t), hessian.spectral_average(spec, lambda t: t * t),
                hessian.index(spec, small), hessian.index(spec, threshold), hessian.near_zero_fraction(spec, tol))

    with _mixed():
        spec, first, second, idx, idx_thr, flat = jax.jit(run)(net)
    assert spec.nodes.shape == spec.weights.shape == (probes, n)
    np.testing.assert_allclose(np.sum(np.asarray(spec.weights), axis=1), 1.0, atol=1e-12)
    # unit-mass Gaussians on a grid over ±5σ with spacing ≈ σ/4: the trapezoid sum is 1 to ≈ 1e-6
    assert abs(np.trapezoid(np.asarray(spec.density), np.asarray(spec.grid)) - 1.0) < 1e-5
    m2 = np.trace(H @ H) / n
    assert_within(first.mean, np.trace(H) / n, first.stderr, k=K_SIGMA, what="SLQ mean")
    assert_within(second.mean, m2, second.stderr, k=K_SIGMA, what="SLQ second moment")
    # the first moment's error bar against the exact Rademacher variance: 35% is 4σ of a 64-sample std
    theory = math.sqrt(_hutchinson_variance(H) / probes) / n
    assert abs(float(first.stderr) / theory - 1) < 0.35, (float(first.stderr), theory)
    # negative control: a second moment 20% off (its relative stderr is ≈ 2.5% at 64 probes: ≈ 8σ away)
    assert abs(float(second.mean) - 1.2 * m2) > K_SIGMA * float(second.stderr)
    cases = ((idx, np.mean(evals < -small), "index"), (idx_thr, np.mean(evals < -threshold), "index(1%)"),
             (flat, np.mean(np.abs(evals) <= tol), "near-zero fraction"))
    for est, exact, what in cases:
        assert_within(est.mean, exact, est.stderr, k=K_SIGMA, what=what)
        assert abs(float(est.mean) - (exact + 0.1)) > K_SIGMA * float(est.stderr), what  # negative control


# --- the glass through the same code ------------------------------------------------------------------------------


def test_pspin_operator_gives_the_tangent_spectrum():
    n = 24
    model = spherical.PSpin.random(jax.random.key(7), n, 3)
    model = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, model)
    s = spherical.random_state(jax.random.key(8), n, jnp.float64)
    v = jax.random.normal(jax.random.key(9), (n,), jnp.float64)

    def average_and_index(spec):
        return hessian.spectral_average(spec, lambda t: t), hessian.index(spec)

    def run(model, s, v):
        op = hessian.pspin_operator(model, s)
        return (spherical.tangent_eigenvalues(model, s), spherical.hessian_index(model, s),
                op.matvec(v), model.riemannian_hvp(s, v),
                hessian.top_eigenvalues(op, None, n - 1, num_iter=n - 1, which="both", eigenvectors=True),
                *average_and_index(hessian.density(op, key=jax.random.key(11), num_probes=64, num_steps=n - 1)))

    exact, count, hv_op, hv_model, everything, first, idx = jax.jit(run)(model, s, v)
    exact = np.asarray(exact)
    scale = np.max(np.abs(exact))
    np.testing.assert_allclose(np.asarray(hv_op), np.asarray(hv_model), atol=1e-12 * scale * math.sqrt(n))
    # n - 1 = 23 tangent eigenvalues, no spurious 0 for the normal direction; float64 rounding ≈ n·ε·‖H‖
    np.testing.assert_allclose(np.asarray(everything.values[1]), exact, atol=1e-11 * scale)
    np.testing.assert_allclose(np.asarray(everything.values[0]), exact[::-1], atol=1e-11 * scale)
    assert np.max(np.abs(np.asarray(everything.vectors) @ np.asarray(s))) < 1e-12 * math.sqrt(n)  # tangent
    fraction = int(count) / (n - 1)  # physics.spherical.hessian_index, normalized
    assert_within(first.mean, exact.mean(), first.stderr, k=K_SIGMA, what="p-spin SLQ mean")
    assert_within(idx.mean, fraction, idx.stderr, k=K_SIGMA, what="p-spin index")
    # negative controls: an index 0.1 off (≈ 6σ) and a mean off by a quarter of the mean |λ| (≈ 8σ) are rejected
    assert abs(float(idx.mean) - (fraction + 0.1)) > K_SIGMA * float(idx.stderr)
    assert abs(float(first.mean) - (exact.mean() + 0.25 * np.abs(exact).mean())) > K_SIGMA * float(first.stderr)


# --- validation ---------------------------------------------------------------------------------------------------


def test_bad_arguments_raise_value_errors(problem):
    net, loss, x, y = problem["net"], problem["loss"], problem["x"], problem["y"]
    op = hessian.operator(lambda v: v, 5)
    key = jax.random.key(0)
    cases = [
        (lambda: hessian.top_eigenvalues(loss, net, 0), "k=0"),
        (lambda: hessian.top_eigenvalues(op, None, 6), "k=6"),
        (lambda: hessian.top_eigenvalues(op, None, 2, num_iter=1), "num_iter=1"),
        (lambda: hessian.top_eigenvalues(op, None, 1, which="middle"), "which='middle'"),
        (lambda: hessian.top_eigenvalues(op, net, 1), "params/block"),
        (lambda: hessian.top_eigenvalues(loss, None, 1), "params=None"),
        (lambda: hessian.top_eigenvalues(loss, net, 1, block=3.5), "block=3.5"),
        (lambda: hessian.trace(op, key=key, num_probes=1), "num_probes=1"),
        (lambda: hessian.trace(op, key=key, num_probes=4, probe_batch=5), "probe_batch=5"),
        (lambda: hessian.density(op, key=key, probes="uniform"), "probes='uniform'"),
        (lambda: hessian.density(hessian.operator(lambda v: v, 5, project=lambda v: v, dim=4), key=key,
                                 probes="rademacher"), "probes='rademacher'"),
        (lambda: hessian.operator(lambda v: v, 5, project=lambda v: v), "dim=None"),
        (lambda: hessian.operator(lambda v: v, 0), "n=0"),
        (lambda: hessian.mlp_loss(net, x[:, :5], y), r"x.shape=\(60, 5\)"),
        (lambda: hessian.mlp_loss(net, x, y + 3), "labels must lie in 0..2"),
        (lambda: hessian.mlp_loss(net, x, y[:10]), r"y.shape=\(10,\)"),
        (lambda: hessian.dataset_loss(lambda p, a, b: a, x, y[:10]), "same positive number"),
        (lambda: hessian.dataset_loss(lambda p, a, b: a, x, y, chunk=0), "chunk=0"),
        (lambda: hessian.parameter_paths(net, depth=0), "depth=0"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    other = mlp.MLP(layers=net.layers[:1], activation="tanh")
    with pytest.raises(ValueError, match="not shaped like net_template"):
        loss(other)
