"""Transition temperatures read off exact thermodynamics: the glass (freezing) and folding temperatures.

* ``heat_capacity_peak``: T_g as the peak of C(T) = dU/dT of an ensemble (for the REM the peak sits near the
  freezing temperature at finite n; Derrida 1981), from U on a uniform temperature grid, with a parabolic
  refinement of the grid maximum.
* ``folding_temperature``: T_f, the highest temperature at which the native state's equilibrium occupancy
  p_N(T) = ½ (Bryngelson & Wolynes 1987, PNAS 84:7524), by linear interpolation on the grid.

Both are used by the ``funnel`` job and by ``bridges.data_rem`` (the same definitions for glasses and data).
"""
from __future__ import annotations

import numpy as np

__all__ = ["TRANSITION_GRID", "heat_capacity_peak", "folding_temperature"]

# The grid the funnel job and bridges.data_rem read T_f and T_g on (spacing 0.01; the density of states makes it cheap).
TRANSITION_GRID = np.linspace(0.1, 3.0, 291)


def heat_capacity_peak(temperatures, energy) -> float:
    """Temperature of the maximum of C = dU/dT, U given on a uniform, increasing grid (≥ 3 points).

    The grid maximum of ``np.gradient(U, T)`` is refined by the vertex of the parabola through it and its two
    neighbours (kept on the grid point when the three values are not concave).
    """
    t = np.asarray(temperatures, np.float64)
    u = np.asarray(energy, np.float64)
    if t.ndim != 1 or t.shape != u.shape or len(t) < 3:
        raise ValueError(f"temperatures and energy: need two 1-D arrays of the same length ≥ 3, got {t.shape} and "
                         f"{u.shape}")
    step = np.diff(t)
    if not np.all(step > 0) or not np.allclose(step, step[0], rtol=1e-6):
        raise ValueError("temperatures: must be a uniform increasing grid")
    c = np.gradient(u, t)
    i = int(np.clip(np.argmax(c), 1, len(t) - 2))
    y0, y1, y2 = c[i - 1], c[i], c[i + 1]
    den = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return float(t[i] + shift * step[0])


def folding_temperature(temperatures, occupancy) -> float:
    """Highest T with p_N(T) = ½ (linear interpolation on the grid); nan if p_N < ½ everywhere."""
    t = np.asarray(temperatures, np.float64)
    p = np.asarray(occupancy, np.float64)
    above = p >= 0.5
    if not np.any(above):
        return float("nan")
    i = int(np.max(np.nonzero(above)[0]))
    if i == len(t) - 1:
        return float(t[-1])
    p0, p1 = p[i], p[i + 1]
    return float(t[i] + (p0 - 0.5) / (p0 - p1) * (t[i + 1] - t[i]))
