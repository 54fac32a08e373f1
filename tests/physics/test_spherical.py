"""Spherical p-spin model: coupling statistics, dense = hashed, derivatives, the sphere, memory refusal."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import spherical, theory
from tests.stats import assert_within

KEY = jax.random.key(20260)


def _states(key, n, count):
    return jax.vmap(spherical.random_state, (0, None))(jax.random.split(key, count), n)


@pytest.mark.parametrize("p", [3, {2: 0.6, 4: 1.0}])
def test_dense_and_hashed_are_the_same_couplings(p):
    # n = 13 with block 4 exercises the padded last block and the diagonal blocks of the hashed tiling
    n = 13
    s = _states(jax.random.key(1), n, 5)

    @jax.jit
    def evaluate(key, s):
        dense = spherical.PSpin.random(key, n, p)
        hashed = spherical.PSpin.random(key, n, p, couplings="hashed", block=4)
        return (jax.vmap(dense.energy_and_grad)(s), jax.vmap(hashed.energy_and_grad)(s),
                dense.hessian(s[0]), hashed.hessian(s[0]))

    (e_d, g_d), (e_h, g_h), h_d, h_h = evaluate(KEY, s)
    scale = float(jnp.max(jnp.abs(g_d)))
    np.testing.assert_allclose(e_h, e_d, atol=1e-5 * n * scale)
    np.testing.assert_allclose(g_h, g_d, atol=1e-5 * scale)
    np.testing.assert_allclose(h_h, h_d, atol=1e-5 * scale)
    # another key gives other couplings
    _, (_, g_other), _, _ = evaluate(jax.random.key(2), s)
    assert float(jnp.max(jnp.abs(g_other - g_d))) > 0.1 * scale


@pytest.mark.parametrize("p", [3, {2: 0.6, 3: 1.0}])
def test_covariance_is_n_xi_exactly(p):
    # E[H(s)H(s')] = n ξ(q) holds at every n with the repeated-index terms (module docstring), so n = 8 needs no
    # finite-size allowance (the distinct-index sum alone would give Var H/n = ξ(1)(1 - 9/n + …) for p = 3).
    n, samples = 8, 16000
    s1 = spherical.random_state(jax.random.key(3), n)
    z = spherical.random_state(jax.random.key(4), n)
    s2 = spherical.retract(s1 + 1.2 * spherical.project(s1, z))  # overlap q ≈ 0.6
    q = float(jnp.dot(s1, s2)) / n
    keys = jax.random.split(jax.random.key(5), samples)

    def both(k):
        m = spherical.PSpin.random(k, n, p)
        return jnp.stack([m.energy(s1), m.energy(s2)])

    energies = jax.vmap(both)(keys)
    h = np.asarray(energies, np.float64)
    xi1, xiq = theory.pspin_xi(1.0, p), theory.pspin_xi(q, p)
    var1 = h[:, 0].var(ddof=1) / n
    assert_within(var1, xi1, xi1 * math.sqrt(2 / (samples - 1)), what="Var H(s)/n")
    prod = h[:, 0] * h[:, 1] / n
    assert_within(prod.mean(), xiq, prod.std(ddof=1) / math.sqrt(samples), what=f"Cov(H(s),H(s'))/n at q={q:.3f}")
    assert_within(h[:, 0].mean() / n, 0.0, h[:, 0].std() / n / math.sqrt(samples), what="E[H(s)]/n")


def test_hashed_statistics_match_theory():
    # the hashed generator at another size and block: same law (variance n ξ(1)) over independent keys
    n, samples = 10, 3000
    s = spherical.random_state(jax.random.key(6), n)
    keys = jax.random.split(jax.random.key(7), samples)
    h = np.asarray(jax.vmap(lambda k: spherical.PSpin.random(k, n, 3, couplings="hashed", block=4).energy(s))(keys))
    assert_within(h.var(ddof=1) / n, 0.5, 0.5 * math.sqrt(2 / (samples - 1)), what="hashed Var H(s)/n")


def test_gradient_and_hessian_against_autodiff_and_finite_differences():
    n = 12
    model = spherical.PSpin.random(KEY, n, {2: 0.5, 3: 1.0, 4: 0.7})
    s = spherical.random_state(jax.random.key(8), n)
    v = jax.random.normal(jax.random.key(9), (n,))
    g, auto, hv, hess = jax.jit(lambda m, s, v: (m.grad(s), jax.grad(m.energy)(s), m.hvp(s, v), m.hessian(s)))(
        model, s, v)
    np.testing.assert_allclose(g, auto, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hv, hess @ v, rtol=1e-4, atol=1e-4)
    # central differences in float64 on the same tensors (an independent path: H only, no derivative code)
    with jax.enable_x64(True):
        m64 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, model)
        s64, v64 = s.astype(jnp.float64), v.astype(jnp.float64)
        eps = 1e-4
        energy = jax.jit(lambda x: m64.energy(x))
        fd = (energy(s64 + eps * v64) - energy(s64 - eps * v64)) / (2 * eps)
        assert float(fd) == pytest.approx(float(jnp.dot(g, v)), rel=1e-4, abs=1e-4)
        e = lambda a, b: energy(s64 + a * eps * v64 + b * eps * w64)  # noqa: E731
        w64 = jnp.roll(v64, 3)
        fd2 = (e(1, 1) - e(1, -1) - e(-1, 1) + e(-1, -1)) / (4 * eps * eps)
        assert float(fd2) == pytest.approx(float(w64.astype(jnp.float32) @ hess @ v), rel=1e-3, abs=1e-3)


def test_riemannian_quantities():
    n = 16
    model = spherical.PSpin.random(KEY, n, 3)
    s = spherical.random_state(jax.random.key(10), n)
    v = jax.random.normal(jax.random.key(11), (n,))
    rg = model.riemannian_grad(s)
    assert abs(float(jnp.dot(rg, s))) < 1e-5 * float(jnp.linalg.norm(rg)) * math.sqrt(n)
    rh = model.riemannian_hessian(s)
    np.testing.assert_allclose(rh, rh.T, atol=1e-5)
    np.testing.assert_allclose(rh @ s, 0.0, atol=1e-4)
    np.testing.assert_allclose(model.riemannian_hvp(s, v), rh @ v, rtol=1e-4, atol=1e-4)
    # the tangent spectrum is the full spectrum with the radial zero removed
    ev = np.asarray(spherical.tangent_eigenvalues(model, s))
    full = np.sort(np.linalg.eigvalsh(np.asarray(rh, np.float64)))
    drop = np.argmin(np.abs(full))
    np.testing.assert_allclose(ev, np.delete(full, drop), atol=1e-4)
    # Riemannian Hessian = second derivative of H along a geodesic through a tangent direction
    u = spherical.project(s, v)
    u = u / jnp.linalg.norm(u) * math.sqrt(n)
    t = 1e-2
    geo = lambda a: model.energy(jnp.cos(a) * s + jnp.sin(a) * u)  # noqa: E731
    second = (geo(t) - 2 * geo(0.0) + geo(-t)) / t**2
    assert float(second) == pytest.approx(float(u @ rh @ u), rel=2e-2, abs=2e-2)


def test_hessian_index_of_the_p2_critical_points_is_their_rank():
    # Pure p = 2: H(s) = -sᵀA s with A = -∇²H/2 (a constant matrix, here from autodiff). The critical points on the
    # sphere are s = √n v_k (v_k the eigenvectors of A, λ_1 > … > λ_n), with tangent Hessian eigenvalues
    # 2(λ_k - λ_j), j ≠ k: the k-th from the top has index exactly k - 1 (the ground state 0, the maximum n - 1).
    n = 10
    model = spherical.PSpin.random(jax.random.key(15), n, 2)
    a = -0.5 * np.asarray(jax.hessian(model.energy)(jnp.ones(n, jnp.float32)), np.float64)
    lam, vec = np.linalg.eigh((a + a.T) / 2)
    order = np.argsort(lam)[::-1]
    assert np.min(-np.diff(lam[order])) > 1e-2  # gaps far above float32 rounding (1e-6): no count can flip
    index = jax.jit(spherical.hessian_index)
    for rank, k in enumerate(order):
        s = jnp.asarray(math.sqrt(n) * vec[:, k], jnp.float32)
        assert int(index(model, s)) == rank
    assert int(index(model, s, tol=1e9)) == 0  # a tolerance beyond every eigenvalue counts none


def test_hessian_index_matches_numpy_eigenvalues_of_the_tangent_hessian():
    # Independent path: autodiff Euclidean Hessian and gradient, the Weingarten term -(s·∇H/n) I, an orthonormal
    # basis of the tangent space from numpy's SVD, numpy's eigvalsh. At random points (index ≈ n/2) and for
    # tolerances half-way between consecutive eigenvalues, where float32 rounding cannot flip a count.
    n = 12
    model = spherical.PSpin.random(KEY, n, {2: 0.5, 3: 1.0})
    index = jax.jit(spherical.hessian_index)
    derivatives = jax.jit(lambda s: (jax.hessian(model.energy)(s), jax.grad(model.energy)(s)))
    checked = 0
    for i in range(3):
        s = spherical.random_state(jax.random.key(40 + i), n)
        s64 = np.asarray(s, np.float64)
        hess, grad = (np.asarray(a, np.float64) for a in derivatives(s))
        basis = np.linalg.svd(s64[None, :])[2][1:].T  # n × (n-1), orthonormal, orthogonal to s
        tangent = basis.T @ (hess - (s64 @ grad / n) * np.eye(n)) @ basis
        ev = np.linalg.eigvalsh((tangent + tangent.T) / 2)
        assert 0 < np.sum(ev < 0) < n - 1  # a saddle: both signs present
        for j in range(n - 2):
            tol = -(ev[j] + ev[j + 1]) / 2
            if tol >= 0 and ev[j + 1] - ev[j] > 1e-3:
                assert int(index(model, s, tol)) == j + 1, (i, j, ev)
                checked += 1
        if np.min(np.abs(ev)) > 1e-3:
            assert int(index(model, s)) == np.sum(ev < 0)
            checked += 1
    assert checked >= 10


def test_random_state_is_uniform_on_the_sphere():
    n, count = 5, 20000
    s = np.asarray(_states(jax.random.key(12), n, count), np.float64)
    np.testing.assert_allclose(np.sum(s**2, axis=1), n, rtol=1e-5)
    # uniform on the sphere: E s_i = 0, E s_i s_j = δ_ij, E s_1⁴ = 3n/(n+2)
    for value, expected, what in ((s[:, 0], 0.0, "E s_1"), (s[:, 0] * s[:, 1], 0.0, "E s_1 s_2"),
                                  (s[:, 0] ** 4, 3 * n / (n + 2), "E s_1^4")):
        assert_within(value.mean(), expected, value.std(ddof=1) / math.sqrt(count), what=what)
    model = spherical.PSpin.random(KEY, n, 3)
    np.testing.assert_allclose(model.random_state(jax.random.key(12)), spherical.random_state(jax.random.key(12), n))


def test_vmapped_dense_gradient_is_one_matrix_product():
    n, r = 24, 6
    model = spherical.PSpin.random(KEY, n, 3)
    s = _states(jax.random.key(13), n, r)
    text = jax.jit(jax.vmap(model.grad)).lower(s).as_text()
    # the contraction over the batch of replicas appears as a dot with the (n², n) × (n, R) shapes, not R dots
    assert "dot_general" in text and "while" not in text
    np.testing.assert_allclose(jax.vmap(model.grad)(s), jnp.stack([model.grad(x) for x in s]), rtol=1e-5, atol=1e-5)


def test_dense_memory_estimate_refuses_and_points_to_hashed():
    with pytest.raises(ValueError, match=r"n=20000, p=3.*bytes.*hashed"):
        spherical.PSpin.random(KEY, 20000, 3)
    need = spherical.estimate_bytes(64, 3)
    assert need >= 4 * 64**3
    with pytest.raises(ValueError, match="hashed"):
        spherical.PSpin.random(KEY, 64, 3, max_bytes=need - 1)
    model = spherical.PSpin.random(KEY, 20000, 3, couplings="hashed")  # fine: nothing of size n^p is stored
    assert model.tensors == () and model.n == 20000


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(n=1, p=3), "n=1"), (dict(n=8, p=1), "p=1"), (dict(n=8, p={3: -1.0}), "weight"),
     (dict(n=8, p=3, couplings="sparse"), "couplings='sparse'"), (dict(n=8, p=3, block=9), "block=9"),
     (dict(n=8, p={}), "empty")],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spherical.PSpin.random(KEY, **kwargs)


@pytest.mark.slow
def test_hashed_n2048_p3_runs_and_tiles_consistently():
    # n = 2048, p = 3 dense would need 34 GB; hashed runs in O(n) memory. Two tilings must agree to rounding.
    n = 2048
    s = spherical.random_state(jax.random.key(14), n)
    a = spherical.PSpin.random(KEY, n, 3, couplings="hashed")
    b = spherical.PSpin.random(KEY, n, 3, couplings="hashed", block=96)
    e_a, g_a = jax.jit(a.energy_and_grad)(s)
    e_b, g_b = jax.jit(b.energy_and_grad)(s)
    scale = float(jnp.max(jnp.abs(g_a)))
    np.testing.assert_allclose(g_a, g_b, atol=1e-4 * scale)
    # H(s)/n ~ N(0, ξ(1)/n) over disorder: a 5σ sanity bound on one sample
    assert abs(float(e_a) / n) < 5 * math.sqrt(0.5 / n)
    assert abs(float(jnp.dot(a.riemannian_grad(s), s))) < 1e-3 * float(jnp.linalg.norm(g_a)) * math.sqrt(n)
