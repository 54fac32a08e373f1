"""physics.rem streaming thermodynamics, ``exact_thermodynamics(..., method="stream")``: float64 brute force over
all 2^n states (REM, GREM, Ising p-spin, funnel, perceptron), the histogram path within the sum of the two paths'
error bounds, the frozen phase, the float64 fold of the chunks, the method switch, and a negative control.

Tolerances come from the bound in ``physics.rem.enumerate._chunk_boltzmann`` (u = 2^-24, d = E − E_0 ≥ 0,
⟨·⟩ Boltzmann averages): weights e^{−βd} are off by at most (3βd + 2)u, d·e^{−βd} by (3βd + 4)u, so ln Z by
ε_Z = (3β⟨d⟩ + 2)u + σ and Σ d e^{−βd} relatively by ε_N = (3β⟨d²⟩/⟨d⟩ + 4)u + σ, σ = 10^-6 for the float32
block sums (measured ≤ 7·10^-7); U − E_0 relatively by ε_Z + ε_N; S = ln Z + βU by ε_Z + β⟨d⟩(ε_Z + ε_N);
Y = Z(2β)/Z(β)² (weights squared: twice the error, ⟨d⟩ at 2β ≤ ⟨d⟩ at β) relatively by 6ε_Z.
"""
import jax
import numpy as np
import pytest

from physics import rem
from physics.rem import enumerate as rem_enum

U32 = 2.0**-24
TEMPS = np.array([0.05, 0.1, 0.3, 0.7, 1.5, 4.0])  # T_c = 1/(2√ln 2) ≈ 0.60: three frozen, three liquid


def _energies(model, chunk_bits=20):
    """All 2^n energies from the enumeration's own chunk program (the dense p-spin's float32 coupling sums are
    ordered differently in ``all_energies``: up to 4·10^-6 apart at n = 12), so that only the sums are compared."""
    return np.concatenate([np.asarray(e) for _, e, _ in rem.energy_chunks(model, chunk_bits=chunk_bits)])


def _brute(energies, temps):
    """ln Z, U, S, Y in float64 from all the (float32) energies, and the tolerances ε_Z, ε_N of the docstring."""
    e = np.asarray(energies, np.float64)
    log_z = np.array([np.logaddexp.reduce(-e / t) for t in temps])
    p = np.exp(-e[None, :] / temps[:, None] - log_z[:, None])
    u = p @ e
    d = e - e.min()
    mean_d, mean_d2 = p @ d, p @ d**2
    eps_z = (3 * mean_d / temps + 2) * U32 + 1e-6
    eps_n = (3 * np.divide(mean_d2, mean_d, out=np.zeros_like(mean_d), where=mean_d > 0) / temps + 4) * U32 + 1e-6
    return (log_z, u, log_z + u / temps, np.sum(p * p, axis=1)), (eps_z, eps_n)


def _assert_matches(ex, energies, temps):
    (log_z, u, s, y), (eps_z, eps_n) = _brute(energies, temps)
    ground = float(np.min(energies))
    gap = u - ground
    np.testing.assert_array_less(np.abs(ex.log_z - log_z), eps_z)
    np.testing.assert_array_less(np.abs(ex.energy - u), (eps_z + eps_n) * gap + 1e-12)
    np.testing.assert_array_less(np.abs(ex.entropy - s), eps_z + (eps_z + eps_n) * gap / temps + 1e-12)
    np.testing.assert_array_less(np.abs(ex.participation / y - 1), 6 * eps_z)
    assert ex.ground_energy == ground


def _model(kind, n):
    key = jax.random.key(5)
    base = rem.REM.random(key, n)
    return {
        "rem": lambda: base,
        "grem": lambda: rem.GREM.random(key, n, [(0.5, 0.6), (0.5, 0.4)]),
        "pspin": lambda: rem.IsingPSpin.random(key, n, {2: 0.5, 3: 1.0}),
        "funnel": lambda: rem.Funnel(base, base.random_state(jax.random.key(6)), 0.6, 2.0, "power"),
        "perceptron": lambda: rem.Perceptron.gardner(jax.random.key(1), n, 8),
    }[kind]()


@pytest.mark.parametrize("kind", ["rem", "grem", "pspin", "funnel", "perceptron"])
def test_stream_matches_brute_force(kind):
    """n = 12 in 64 chunks of 64 states, folded into the float64 sums in two batches of 32."""
    model = _model(kind, 12)
    ex = rem.exact_thermodynamics(model, TEMPS, chunk_bits=6, method="stream")
    assert ex.log_z_agree is None
    _assert_matches(ex, _energies(model, 6), TEMPS)


def test_stream_blocks_and_degenerate_ground_state():
    """One chunk of 2^14 states cut into two blocks; and the perceptron's integer error counts, whose few
    degenerate ground states make ln Z ≈ 0 at low T: counted exactly, ln Z keeps 10^-6 relative precision."""
    model = _model("rem", 14)
    _assert_matches(rem.exact_thermodynamics(model, TEMPS, method="stream"), _energies(model), TEMPS)
    perceptron = _model("perceptron", 12)
    e = np.asarray(_energies(perceptron, 6), np.float64)
    assert e.min() == 0 and np.sum(e == 0) < 20  # ln Z(T = 0.05) = ln #ground + O(e^-20): small, not 0
    ex = rem.exact_thermodynamics(perceptron, TEMPS, chunk_bits=6, method="stream")
    np.testing.assert_allclose(ex.log_z, _brute(e, TEMPS)[0][0], rtol=1e-6)


def test_frozen_phase_is_dominated_by_the_ground_state():
    """REM n = 16, T ≪ T_c: ln Z + βE_0 (the thermal part left after the rescaling) to 10^-6 absolute, two
    replicas mostly in one state (Y > 0.5) and S = O(1); far above T_c, Y ≈ 2^-n e^{nβ²/2}."""
    n = 16
    model = rem.REM.random(jax.random.key(7), n)
    temps = np.array([0.05, 0.1, 4.0])
    e = np.asarray(_energies(model), np.float64)
    ex = rem.exact_thermodynamics(model, temps, method="stream")
    _assert_matches(ex, e, temps)
    thermal = np.array([np.logaddexp.reduce(-(e - e.min()) / t) for t in temps])
    np.testing.assert_allclose(ex.log_z + e.min() / temps, thermal, rtol=0, atol=1e-6)
    assert np.all(ex.participation[:2] > 0.5) and np.all(ex.entropy[:2] < 1.5)
    annealed = np.exp(n * (0.5 / temps[2] ** 2 - np.log(2)))
    assert 0.5 * annealed < ex.participation[2] < 2 * annealed


def test_stream_agrees_with_histogram_path():
    """REM n = 18, one chunk of 2^18 (32 blocks). The histogram path truncates each bin's moment series after the
    second moment: per state the remainder is ≤ (βh/2)^3/3! e^{βh} relative (h = 2^-11, |E − c| ≤ h/2), so
    |Δ ln Z| ≤ (βh/2)^3/6 (1.9·10^-8 at β = 20), and its U keeps (E − c) e^{−β(E−c)} to first order,
    |ΔU| ≤ (h/2)(βh/2)^2/2 (2.9·10^-9); Y = e^{ln Z(2β) − 2 ln Z(β)} by 10 (βh/2)^3/6. Allowed: those plus the
    streaming bounds of the module docstring (the histogram's float32 bin sums are smaller still: ~17 states a
    bin here)."""
    model = rem.REM.random(jax.random.key(8), 18)
    temps = np.array([0.05, 0.3, 0.6, 1.0, 2.0])
    stream = rem.exact_thermodynamics(model, temps, method="stream")
    hist = rem.exact_thermodynamics(model, temps, method="histogram")
    (_, u, _, _), (eps_z, eps_n) = _brute(_energies(model), temps)
    trunc = (h_beta := rem_enum._H / 2 / temps) ** 3 / 6
    gap = u - hist.ground_energy
    np.testing.assert_array_less(np.abs(stream.log_z - hist.log_z), eps_z + trunc)
    np.testing.assert_array_less(np.abs(stream.energy - hist.energy),
                                 (eps_z + eps_n) * gap + rem_enum._H / 2 * h_beta**2 / 2)
    np.testing.assert_array_less(np.abs(stream.participation / hist.participation - 1), 6 * eps_z + 10 * trunc)
    assert stream.ground_energy == hist.ground_energy


def test_negative_control_temperature_off_by_0_1_percent():
    """The brute-force tolerance detects a 0.1 % error in the temperature at every T (so it has power)."""
    model = _model("rem", 12)
    ex = rem.exact_thermodynamics(model, TEMPS * 1.001, chunk_bits=6, method="stream")
    (log_z, _, _, _), (eps_z, _) = _brute(_energies(model, 6), TEMPS)
    assert np.all(np.abs(ex.log_z - log_z) > 10 * eps_z)


def test_fold_is_exact_in_any_chunk_order():
    """The float64 fold (rescaled when the running minimum falls) against direct float64 sums, with chunks in
    increasing, decreasing and random order of their minima, batched or not; integer energies tie across chunks."""
    rng = np.random.default_rng(0)
    chunks = [np.round(rng.normal(size=64) * 4) + k for k in (3, 0, 5, 0, -2, 7)]
    chunks[3] = chunks[1][::-1].copy()  # the same minimum in two chunks
    betas = np.array([0.2, 1.0, 5.0])
    e = np.concatenate(chunks)
    m0 = e.min()
    w = np.exp(-betas[:, None] * (e - m0))
    z, n_, q = w.sum(1), (w * (e - m0)).sum(1), (w * w).sum(1)

    def stats(c):
        d = c - c.min()
        wc = np.exp(-betas[:, None] * d) * (d > 0)
        return c.min(), np.sum(d == 0), np.stack([wc.sum(1), (wc * d).sum(1), (wc * wc).sum(1)])

    parts = [stats(c) for c in chunks]
    for order in (np.argsort([p[0] for p in parts]), np.argsort([-p[0] for p in parts]), rng.permutation(6)):
        for batch in (1, 4, 6):
            acc = None
            for i in range(0, 6, batch):
                sel = [parts[j] for j in order[i : i + batch]]
                acc = rem_enum._fold(acc, np.array([s[0] for s in sel]), np.array([s[1] for s in sel]),
                                     np.stack([s[2] for s in sel]), betas)
            assert acc.m == m0 and acc.count == np.sum(e == m0)
            np.testing.assert_allclose(acc.count + acc.z, z, rtol=1e-13)
            np.testing.assert_allclose(acc.n, n_, rtol=1e-13)
            np.testing.assert_allclose(acc.count + acc.q, q, rtol=1e-13)


def test_method_switch_and_errors(monkeypatch):
    """auto: the stream for a plain model at ≤ 16 temperatures, the histogram for more, for a funnel (F(Q)), a
    native state or a DensityOfStates; a temperature list of the same length compiles nothing new."""
    model = rem.REM.random(jax.random.key(9), 10)
    few, many = np.linspace(0.3, 2.0, 5), np.linspace(0.3, 2.0, 17)
    for temps, method in ((few, "stream"), (many, "histogram")):
        auto, explicit = (rem.exact_thermodynamics(model, temps, method=m) for m in ("auto", method))
        np.testing.assert_array_equal(auto.log_z, explicit.log_z)
    funnel = _model("funnel", 10)
    assert rem.exact_thermodynamics(funnel, few).log_z_agree is not None
    assert rem.exact_thermodynamics(model, few, native=np.ones(10)).log_z_agree is not None
    dos = rem.density_of_states(model)
    np.testing.assert_array_equal(rem.exact_thermodynamics(dos, few).log_z,
                                  rem.exact_thermodynamics(model, few, method="histogram").log_z)
    with pytest.raises(ValueError, match="method"):
        rem.exact_thermodynamics(model, few, method="scatter")
    with pytest.raises(ValueError, match="native"):
        rem.exact_thermodynamics(model, few, native=np.ones(10), method="stream")
    with pytest.raises(ValueError, match="DensityOfStates"):
        rem.exact_thermodynamics(dos, few, method="stream")
    traces = []
    original = rem_enum._exp2_neg
    monkeypatch.setattr(rem_enum, "_exp2_neg", lambda y: traces.append(1) or original(y))  # runs when traced
    rem.exact_thermodynamics(model, np.linspace(0.41, 1.9, 7), method="stream")
    first = len(traces)
    rem.exact_thermodynamics(model, np.linspace(0.5, 3.0, 7), method="stream")
    assert len(traces) == first <= 1
