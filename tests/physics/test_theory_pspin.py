"""Spherical p-spin theory (CS units) against the independently computed numbers of REFERENCES.md."""
import math

import numpy as np
import pytest

from physics import theory


def test_dynamical_temperature_matches_closed_form():
    # REFERENCES: T_d(3) = √(3/8) = 0.612372; general p from Crisanti–Horner–Sommers
    assert theory.pspin_dynamical_temperature(3) == pytest.approx(math.sqrt(3 / 8), abs=1e-9)
    for p in (3, 4, 5):
        closed = math.sqrt(p * (p - 2) ** (p - 2) / (2 * (p - 1) ** (p - 1)))
        assert theory.pspin_dynamical_temperature(p) == pytest.approx(closed, abs=1e-9)
    assert theory.pspin_dynamical_temperature({3: 1.0}) == pytest.approx(math.sqrt(3 / 8), abs=1e-9)


def test_static_temperature_solved():
    assert theory.pspin_static_temperature(3) == pytest.approx(0.586054, abs=1e-6)
    # T_s < T_d for every pure p ≥ 3 (the static transition lies below the dynamical one)
    for p in (3, 4, 5):
        assert theory.pspin_static_temperature(p) < theory.pspin_dynamical_temperature(p)
    assert theory.pspin_static_temperature(2) == pytest.approx(1.0)


def test_threshold_energy_and_abc_form():
    assert theory.pspin_threshold_energy(3) == pytest.approx(-1.154701, abs=1e-6)
    assert theory.pspin_threshold_energy(3) == pytest.approx(-math.sqrt(4 / 3), abs=1e-12)
    for p in (3, 4):
        abc = -2 * math.sqrt((p - 1) / p)
        assert theory.pspin_to_abc(theory.pspin_threshold_energy(p)) == pytest.approx(abc, abs=1e-12)
        assert theory.pspin_from_abc(abc) == pytest.approx(theory.pspin_threshold_energy(p), abs=1e-12)


def test_ground_state_energy_cs_and_abc():
    e0 = theory.pspin_ground_state_energy(3)
    assert e0 == pytest.approx(-1.171675, abs=1e-6)
    assert theory.pspin_to_abc(e0) == pytest.approx(-1.656998, abs=1e-6)
    # the complexity of minima vanishes there and is positive between E_0 and E_th
    assert theory.pspin_complexity(e0, 3, index=0) == pytest.approx(0.0, abs=1e-10)
    assert theory.pspin_complexity(0.5 * (e0 + theory.pspin_threshold_energy(3)), 3, index=0) > 0
    for p in (3, 4, 5):
        assert theory.pspin_ground_state_energy(p) < theory.pspin_threshold_energy(p)


def test_complexity_structure():
    p, e_th = 3, theory.pspin_threshold_energy(3)
    e = np.linspace(-1.3, e_th, 50)
    # more critical points than minima, and minima of index 0 more than saddles of index 1 below the threshold
    assert np.all(theory.pspin_complexity(e, p) >= theory.pspin_complexity(e, p, index=0) - 1e-12)
    assert np.all(theory.pspin_complexity(e[:-1], p, index=0) > theory.pspin_complexity(e[:-1], p, index=1))
    # continuous at -E_∞ and equal to ½ ln(p-1) at e ≥ 0 (all critical points counted)
    assert theory.pspin_complexity(e_th - 1e-9, p, 0) == pytest.approx(theory.pspin_complexity(e_th + 1e-3, p, 0))
    assert theory.pspin_complexity(0.3, p) == pytest.approx(0.5 * math.log(2))


def test_finite_temperature_threshold_limits():
    p = 3
    td = theory.pspin_dynamical_temperature(p)
    assert theory.pspin_threshold_energy_at(0.0, p) == pytest.approx(theory.pspin_threshold_energy(p))
    assert theory.pspin_threshold_energy_at(1e-5, p) == pytest.approx(theory.pspin_threshold_energy(p), abs=1e-4)
    assert theory.pspin_threshold_energy_at(td * (1 - 1e-9), p) == pytest.approx(-1 / (2 * td), abs=1e-6)
    assert theory.pspin_threshold_overlap(td * (1 - 1e-9), p) == pytest.approx(0.5, abs=1e-4)  # q_d = (p-2)/(p-1)
    t = np.linspace(0.01, td * 0.999, 40)
    e = theory.pspin_threshold_energy_at(t, p)
    # aging ends above equilibrium: e_th(T) > -1/(2T) below T_d, and it rises with T
    assert np.all(e > -1 / (2 * t))
    assert np.all(np.diff(e) > 0)
    assert theory.pspin_threshold_energy_at(1.0, p) == pytest.approx(-0.5)


def test_paramagnet_and_mixtures():
    assert theory.pspin_paramagnetic_energy(2.0, 3) == pytest.approx(-0.25)
    # ξ(1) = Σ c_p² / 2
    assert theory.pspin_paramagnetic_energy(1.0, {2: 1.0, 3: 0.5}) == pytest.approx(-(1 + 0.25) / 2)
    assert theory.pspin_xi(0.5, {3: 2.0}, 1) == pytest.approx(0.5 * 4 * 3 * 0.25)


def test_hessian_semicircle():
    p = 3
    c, r = theory.pspin_hessian_semicircle(theory.pspin_threshold_energy(p), p)
    assert r == pytest.approx(math.sqrt(12))
    assert c - r == pytest.approx(0.0, abs=1e-12)  # marginal at the threshold
    lam = np.linspace(3.0 - r, 3.0 + r, 20001)  # support at e = -1: centre -p e = 3
    dens = theory.pspin_hessian_density(lam, -1.0, p)
    assert np.trapezoid(dens, lam) == pytest.approx(1.0, abs=1e-4)
    assert np.trapezoid(dens * lam, lam) == pytest.approx(3.0, abs=1e-4)
    assert dens.min() >= 0
    assert theory.pspin_hessian_index_fraction(-1.17, p) == 0.0
    assert theory.pspin_hessian_index_fraction(0.0, p) == pytest.approx(0.5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="p="):
        theory.pspin_threshold_energy(1)
    with pytest.raises(ValueError, match="p="):
        theory.pspin_threshold_energy({2: 1.0, 3: 1.0})
    with pytest.raises(ValueError, match="temperature"):
        theory.pspin_paramagnetic_energy(0.0, 3)
    with pytest.raises(ValueError, match="index"):
        theory.pspin_complexity(-1.0, 3, index=-1)
