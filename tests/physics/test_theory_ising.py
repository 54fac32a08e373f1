"""Exact 2D Ising results against the numbers in REFERENCES.md and against brute-force enumeration."""
import numpy as np
import pytest

from physics import theory


def _enumerate_torus(L):
    n = L * L
    idx = np.arange(2**n, dtype=np.int64)
    s = (1 - 2 * ((idx[:, None] >> np.arange(n)) & 1)).reshape(-1, L, L)
    e = -(s * np.roll(s, 1, 1) + s * np.roll(s, 1, 2)).sum((1, 2))
    return e.astype(np.float64)


def test_reference_numbers():
    assert theory.ising_critical_temperature() == pytest.approx(2.2691853, abs=1e-7)
    assert theory.ising_critical_coupling() == pytest.approx(0.4406868, abs=1e-7)
    assert theory.onsager_energy(2.0) == pytest.approx(-1.745565, abs=1e-6)
    assert theory.yang_magnetization(2.0) == pytest.approx(0.911319, abs=1e-6)
    assert theory.yang_magnetization(2.5) == 0.0
    assert theory.ising_binder_crossing() == pytest.approx(0.61069, abs=1e-5)
    # At T_c the energy is -√2 (the elliptic-integral term vanishes).
    assert theory.onsager_energy(theory.ising_critical_temperature()) == pytest.approx(-np.sqrt(2), abs=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 2.269, 3.0, 6.0])
def test_kaufman_matches_enumeration_L4(temperature):
    e = _enumerate_torus(4)
    w = np.exp(-(e - e.min()) / temperature)
    lnz = np.log(w.sum()) - e.min() / temperature
    u = (e * w).sum() / w.sum()
    c = ((e**2 * w).sum() / w.sum() - u**2) / temperature**2
    assert theory.kaufman_log_partition(4, temperature) == pytest.approx(lnz, rel=1e-12)
    assert theory.kaufman_energy(4, temperature) == pytest.approx(u / 16, abs=1e-8)
    assert theory.kaufman_specific_heat(4, temperature) == pytest.approx(c / 16, abs=1e-5)


def test_kaufman_converges_to_onsager():
    # Away from T_c finite-size corrections are exponentially small (the ln 2 of the two ordered states is O(1/N)).
    for t in (1.8, 3.0):
        assert theory.kaufman_energy(128, t) == pytest.approx(theory.onsager_energy(t), abs=1e-8)
    f_inf = theory.onsager_free_energy(3.0)
    assert -3.0 * theory.kaufman_log_partition(128, 3.0) / 128**2 == pytest.approx(f_inf, abs=1e-10)


def test_bad_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        theory.onsager_energy(-1.0)
    with pytest.raises(ValueError, match="L="):
        theory.kaufman_energy(1, 2.0)
