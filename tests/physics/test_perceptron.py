"""physics.rem.Perceptron: energies against brute-force NumPy error counts, exact enumeration against a brute-force
log-sum-exp, the teacher's zero-error state, and single-flip Metropolis against exact Boltzmann weights (χ² by
energy level, with a negative control at the wrong temperature)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physics import kernels, rem, run
from tests.stats import chi2_pvalue


def _all_states(n):
    """Every ±1 configuration in the enumeration's order (σ_i = +1 where bit i of the index is 1), by NumPy bits."""
    k = np.arange(2**n)[:, None]
    return np.where((k >> np.arange(n)) & 1, 1, -1).astype(np.float64)


def _brute_energies(patterns, labels, margin=0.0, loss="errors"):
    """H(σ) for every σ from the definition, in float64: Δ = y σ·ξ/√n; errors Δ ≤ κ, hinge max(0, κ − Δ)."""
    xi = np.asarray(patterns, np.float64)
    n = xi.shape[1]
    stab = (_all_states(n) @ xi.T) * np.asarray(labels, np.float64) / np.sqrt(n)
    if loss == "errors":
        # κ√n compared with the integer y σ·ξ, as the definition reads for integer fields (no rounding of Δ)
        return np.sum(stab * np.sqrt(n) <= margin * np.sqrt(n), axis=1).astype(np.float64)
    return np.sum(np.maximum(margin - stab, 0.0), axis=1)


def test_energies_equal_brute_force_error_counts():
    """Every state at n = 10: ±1 patterns (even n: ties σ·ξ = 0 occur and count as errors), Gaussian patterns with a
    margin, and the hinge loss. Error counts are integers, so they must agree exactly; the hinge in float32 to
    float32 rounding (P terms of size ≤ √n: relative 1e-6)."""
    n, num = 10, 7
    key_a, key_b, key_c = jax.random.split(jax.random.key(0), 3)
    gardner = rem.Perceptron.gardner(key_a, n, num)
    gauss = jax.random.normal(key_b, (num, n))
    labels = np.asarray(gardner.labels)
    cases = [
        (gardner, np.asarray(gardner.patterns), labels, 0.0, "errors"),
        (rem.Perceptron(gauss, labels, 0.3), np.asarray(gauss), labels, 0.3, "errors"),
        (rem.Perceptron(gardner.patterns, labels, 1.0, "hinge"), np.asarray(gardner.patterns), labels, 1.0, "hinge"),
    ]
    ties = np.sum(_all_states(n) @ np.asarray(gardner.patterns).T == 0)
    assert ties > 0  # the tie convention is exercised
    picks = [0, 5, 777, 1023]
    single = jax.jit(lambda m, x: jax.vmap(m.energy)(x))  # one program per loss: the models share their shapes
    for model, xi, y, margin, loss in cases:
        want = _brute_energies(xi, y, margin, loss)
        got = np.asarray(model.all_energies(), np.float64)  # the batched matmul path
        if loss == "errors":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        one = np.asarray(single(model, jnp.asarray(_all_states(n)[picks], jnp.int8)), np.float64)
        np.testing.assert_allclose(one, want[picks], rtol=1e-6, atol=1e-6)
    assert rem.Perceptron.gardner(key_c, 9, 4).n == 9


def test_exact_thermodynamics_equals_brute_force_log_sum_exp():
    """n = 12, streamed in 16 chunks of 2^8. Error counts are exact integers, so the only error is the moment series
    truncation, relative < 2e-8 (DensityOfStates): ln Z and U to 1e-6 relative. The hinge energies carry float32
    rounding of relative 2^-23 (integer sums times 1/√n at κ = 0), i.e. |Δ ln Z| ≤ β·max H·2^-23 < 1e-5."""
    n = 12
    temps = np.array([0.1, 0.3, 0.7, 1.5, 4.0])
    model = rem.Perceptron.gardner(jax.random.key(1), n, 8)
    hinge = rem.Perceptron(model.patterns, model.labels, 0.0, "hinge")
    for m, loss, tol in ((model, "errors", 1e-6), (hinge, "hinge", 1e-5)):
        e = _brute_energies(model.patterns, model.labels, 0.0, loss)
        log_z = np.array([np.logaddexp.reduce(-e / t) for t in temps])
        u = np.array([np.sum(e * np.exp(-e / t - lz)) for t, lz in zip(temps, log_z, strict=True)])
        ex = rem.exact_thermodynamics(m, temps, chunk_bits=8)
        np.testing.assert_allclose(ex.log_z, log_z, rtol=tol)
        np.testing.assert_allclose(ex.energy, u, rtol=tol, atol=tol)
        assert ex.ground_energy == e.min()


def test_teacher_has_zero_errors_and_is_a_ground_state():
    """The teacher classifies every pattern strictly correctly (ties redrawn for even n): energy 0 = the minimum."""
    for n, num in ((12, 8), (11, 30)):
        key = jax.random.key(n)
        model = rem.Perceptron.teacher(key, n, num)
        tau = np.asarray(rem.Perceptron.teacher_weights(key, n), np.float64)
        xi = np.asarray(model.patterns, np.float64)
        assert np.all(xi @ tau != 0) and np.all(np.asarray(model.labels) == np.sign(xi @ tau))
        e = _brute_energies(xi, model.labels)
        assert float(model.energy(jnp.asarray(tau, jnp.int8))) == 0.0
        assert e.min() == 0.0
        index = int(np.sum((tau > 0) << np.arange(n)))
        assert e[index] == 0.0


def test_validation_and_stacks():
    xi = np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match="labels"):
        rem.Perceptron(xi, np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="patterns"):
        rem.Perceptron(np.ones(5, np.float32), np.ones(5))
    with pytest.raises(ValueError, match="margin"):
        rem.Perceptron(xi, np.ones(3), -1.0)
    with pytest.raises(ValueError, match="loss"):
        rem.Perceptron(xi, np.ones(3), 0.0, "square")
    with pytest.raises(ValueError, match="num_patterns"):
        rem.Perceptron.gardner(jax.random.key(0), 5, 0)
    with pytest.raises(ValueError, match="n=65"):
        rem.Perceptron(np.ones((2, 65), np.float32), np.ones(2))
    # A stack built under vmap is a valid model with leading axes; vmapped energies equal each sample's own.
    stack = jax.vmap(lambda k: rem.Perceptron.gardner(k, 6, 4))(jax.random.split(jax.random.key(2), 3))
    assert stack.patterns.shape == (3, 4, 6) and stack.labels.shape == (3, 4)
    got = jax.vmap(lambda m: m.all_energies())(stack)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(got[i]), _brute_energies(stack.patterns[i], stack.labels[i]))


def _level_counts(model, temperatures, key, chains=1024, burn=40, every=8, samples=4):
    """Histogram of the energies of ``samples`` states per chain, ``every`` sweeps apart after ``burn`` sweeps of
    Metropolis, for each temperature: one compiled program, vmapped over the (traced) temperatures."""

    def at(t, key):
        kernel = kernels.metropolis(model, t)
        k_x, k_i, k_r = jax.random.split(key, 3)
        xs = jax.vmap(model.random_state)(jax.random.split(k_x, chains))

        def one(ki, kr, x):
            state = kernel.init(ki, x)
            state, _ = run(kernel, kr, state, burn, every=burn)
            _, e = run(kernel, jax.random.fold_in(kr, 1), state, samples * every, every=every,
                       observe=lambda s, i: s.energy)
            return e

        return jax.vmap(one)(jax.random.split(k_i, chains), jax.random.split(k_r, chains), xs)

    temps = jnp.asarray(temperatures, jnp.float32)
    e = np.asarray(jax.jit(jax.vmap(at))(temps, jax.random.split(key, len(temperatures)))).astype(np.int64)
    return [np.bincount(row.ravel(), minlength=model.num_patterns + 1) for row in e]


def test_metropolis_chi2_against_exact_boltzmann_levels():
    """n = 8, P = 6 error counts: the sampled energy levels against g(E)e^{−E/T}/Z from brute-force g(E), at T = 0.6
    (4096 samples from 1024 chains). Negative control: chains run at 1.1·T, tested against the law at T, must be
    rejected (p < 1e-3) — the same χ² test has the power to see a 10% temperature error."""
    model = rem.Perceptron.gardner(jax.random.key(3), 8, 6)
    e = _brute_energies(model.patterns, model.labels)
    g = np.bincount(e.astype(np.int64), minlength=7).astype(np.float64)
    t = 0.6
    probs = g * np.exp(-np.arange(7) / t)
    counts_right, counts_wrong = _level_counts(model, [t, 1.1 * t], jax.random.key(4))
    right, wrong = chi2_pvalue(counts_right, probs), chi2_pvalue(counts_wrong, probs)
    assert right > 1e-3, f"χ² p-value {right:.3g} at the right temperature"
    assert wrong < 1e-3, f"χ² p-value {wrong:.3g} for samples at 1.1·T: the test cannot see a wrong temperature"
