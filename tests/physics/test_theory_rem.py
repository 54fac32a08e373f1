"""physics.theory REM family: the closed forms against their limits, and the finite-n exact functions against
disorder Monte Carlo (independent samples, mean ± 3 stderr)."""
import numpy as np
import pytest

from physics import theory as th
from tests.stats import assert_within

LN2 = np.log(2.0)


def test_rem_closed_forms():
    tc = th.rem_critical_temperature()
    assert tc == pytest.approx(0.600561, abs=1e-6)  # REFERENCES.md
    t = np.array([0.3, tc, 0.9, 2.0])
    f, u, s = th.rem_free_energy(t), th.rem_energy(t), th.rem_entropy(t)
    np.testing.assert_allclose(f, u - t * s, rtol=1e-12)  # f = u − Ts on both sides of T_c
    np.testing.assert_allclose(f[0], -np.sqrt(LN2))
    assert s[1] == pytest.approx(0.0, abs=1e-12)  # entropy vanishes continuously at T_c
    # u = d(βf)/dβ by finite differences above T_c
    b = 1 / 0.9
    h = 1e-5
    deriv = ((b + h) * th.rem_free_energy(1 / (b + h)) - (b - h) * th.rem_free_energy(1 / (b - h))) / (2 * h)
    assert deriv == pytest.approx(th.rem_energy(0.9), rel=1e-7)
    with pytest.raises(ValueError, match="temperature"):
        th.rem_free_energy(-1.0)


def test_grem_one_level_and_separate_levels():
    t = np.linspace(0.1, 2.0, 40)
    np.testing.assert_allclose(th.grem_free_energy(t, [1.0], [LN2]), th.rem_free_energy(t), rtol=1e-12)
    # Two levels that freeze separately (a_1/lnα_1 > a_2/lnα_2): T_1 > T_2 and the formula of REFERENCES.md.
    a, la = [0.8, 0.2], [LN2 / 2, LN2 / 2]
    tj, a_eff, _ = th.grem_freezing_temperatures(a, la)
    assert len(tj) == 2 and tj[0] > tj[1]
    np.testing.assert_allclose(tj, 0.5 * np.sqrt(np.array(a) / np.array(la)))
    tm = 0.5 * (tj[0] + tj[1])  # between the two freezings: level 1 frozen, level 2 free
    expect = -np.sqrt(a[0] * la[0]) - (tm * la[1] + a[1] / (4 * tm))
    assert th.grem_free_energy(tm, a, la) == pytest.approx(expect, rel=1e-12)


def test_grem_merged_levels_is_the_concave_hull():
    # T_1 < T_2: the levels merge into one REM level (a = 1, ln α = ln 2).
    t = np.linspace(0.1, 2.0, 40)
    np.testing.assert_allclose(th.grem_free_energy(t, [0.2, 0.8], [LN2 / 2, LN2 / 2]), th.rem_free_energy(t))
    # Three levels, middle one out of order: levels 2 and 3 merge, level 1 stays.
    a, la = [0.6, 0.1, 0.3], [LN2 / 3] * 3
    tj, a_eff, la_eff = th.grem_freezing_temperatures(a, la)
    np.testing.assert_allclose(a_eff, [0.6, 0.4])
    np.testing.assert_allclose(la_eff, [LN2 / 3, 2 * LN2 / 3])
    # The level-by-level formula applied in the wrong order freezes each level on its own; merging lets the two
    # levels reach lower energies together (Cauchy–Schwarz: √(ΣaΣlnα) ≥ Σ√(a lnα)), so the hull f is never above it.
    naive_t = 0.5 * np.sqrt(np.array(a) / np.array(la))
    tt = t[:, None]
    naive = np.where(tt > naive_t, -(tt * np.array(la) + np.array(a) / (4 * tt)), -np.sqrt(np.array(a) * np.array(la)))
    assert np.all(th.grem_free_energy(t, a, la) <= naive.sum(-1) + 1e-12)
    assert th.grem_free_energy(0.05, a, la) == pytest.approx(-np.sqrt(0.6 * LN2 / 3) - np.sqrt(0.4 * 2 * LN2 / 3))
    # Continuity at every effective freezing temperature.
    for T in tj:
        assert th.grem_free_energy(T * (1 + 1e-9), a, la) == pytest.approx(th.grem_free_energy(T, a, la), abs=1e-8)


def test_bryngelson_wolynes():
    s0, de = 16 * LN2, np.sqrt(8.0)
    tg, tf = th.bryngelson_wolynes(s0, de, 16 * 1.0)
    assert tg == pytest.approx(th.rem_critical_temperature())  # the misfolded REM freezes at T_c
    assert tf / tg + tg / tf == pytest.approx(np.sqrt(2 / s0) * 16 / de)  # REFERENCES.md identity
    assert 16 * 1.0 == pytest.approx(de**2 / (2 * tf) + tf * s0)
    assert tf > tg
    # In REM units the folding transition is where the native energy meets the REM free energy.
    assert th.rem_free_energy(tf) == pytest.approx(-1.0)
    gaps = np.linspace(0.85, 2.0, 10) * 16
    tg, tf = th.bryngelson_wolynes(s0, de, gaps)
    assert np.all(np.diff(tf / tg) > 0) and np.all(tf / tg > 1)  # minimal frustration grows with the gap
    assert np.isnan(th.bryngelson_wolynes(s0, de, 0.5 * 16)[1])  # gap below the glass ground state: no folding


@pytest.mark.parametrize("gap", [0.5, 0.9])
def test_rem_native_exact_against_disorder_sampling(gap):
    """The Laplace-transform formulas at n = 8 against 4000 direct samples of the 255 misfolded energies."""
    n, count = 8, 4000
    rng = np.random.default_rng(7)
    e = rng.normal(0.0, np.sqrt(n / 2), size=(count, 2**n - 1))
    for t in (0.3, 0.6, 1.2):
        b = 1 / t
        lw = np.concatenate([np.full((count, 1), b * n * gap), -b * e], axis=1)
        top = lw.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(lw - top).sum(axis=1))
        f = -t * log_z / n
        p = np.exp(b * n * gap - log_z)
        assert_within(f.mean(), th.rem_native_free_energy(t, gap, n), f.std(ddof=1) / np.sqrt(count),
                      what=f"f(T={t})")
        assert_within(p.mean(), th.rem_native_occupancy(t, gap, n), p.std(ddof=1) / np.sqrt(count),
                      what=f"p_native(T={t})")


def test_rem_native_large_n_limit():
    # High T: the native state is irrelevant and E ln Z/n → ln 2 + β²/4 (annealed) to e^{-n(...)} accuracy.
    assert th.rem_native_free_energy(2.0, -1.0, 30) == pytest.approx(th.rem_free_energy(2.0), abs=1e-6)
    # Occupancy is ½ near the BW T_f and sharpens with n.
    tg, tf = th.bryngelson_wolynes(30 * LN2, np.sqrt(15.0), 30 * 1.0)
    lo, hi = th.rem_native_occupancy([0.8 * tf, 1.25 * tf], 1.0, 30)
    assert lo > 0.9 and hi < 0.1
