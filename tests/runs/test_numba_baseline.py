"""The numba peer baseline of ``deepglass bench ising`` samples the right distribution (its results are matched,
not only its time): mean energy of independent L = 16 chains at T = 2.5 against Kaufman's exact finite-size value,
with a negative control at 1.05·T through the same harness."""
from __future__ import annotations

import numpy as np
import pytest

from physics import theory
from runs.benchmarks import _numba_ising as numba_ising
from tests.stats import assert_within

pytest.importorskip("numba")  # in the test extra; skipped only where the extra is not installed

L, T, CHAINS, BURN, SWEEPS, EVERY = 16, 2.5, 24, 300, 2000, 2


def _chain_means(temperature: float) -> np.ndarray:
    """Mean energy per spin of each of ``CHAINS`` independent chains (own seed, random start) at ``temperature``."""
    means = []
    for chain in range(CHAINS):
        rng = np.random.default_rng(chain)
        x = np.where(rng.random((L, L)) < 0.5, 1, -1).astype(np.int8)
        x = numba_ising.checkerboard_sweeps(x, 1.0 / temperature, BURN, seed=10_000 + chain)
        energies = []
        for block in range(SWEEPS // EVERY):
            x = numba_ising.checkerboard_sweeps(x, 1.0 / temperature, EVERY, seed=20_000 + 1_000 * chain + block)
            energies.append(numba_ising.energy_per_spin(x))
        means.append(np.mean(energies))
    return np.asarray(means)


def _excess(temperature: float) -> tuple[float, float, float]:
    means = _chain_means(temperature)
    return means.mean(), means.std(ddof=1) / np.sqrt(CHAINS), theory.kaufman_energy(L, T)


def test_numba_baseline_matches_kaufman():
    mean, err, exact = _excess(T)
    assert_within(mean, exact, err, k=3.5, what="numba baseline u(L=16, T=2.5)")  # 3.5: Student t, 23 dof, 3σ tail


def test_numba_baseline_control_at_wrong_temperature():
    mean, err, exact = _excess(1.05 * T)
    assert abs(mean - exact) > 4 * err, (mean, exact, err)
