"""The numba peer baseline of ``deepglass bench ising``: a parallel checkerboard Metropolis for the 2D Ising model.

What a careful user would write with numba (optional extra ``bench``; never imported by the package outside the
benchmark): ``@njit(parallel=True)``, the rows of one sublattice distributed over threads with ``prange``, per site
the four-neighbour sum, ``ΔE = 2 s Σ`` and a table of ``min(1, e^{-βΔE})`` compared with a uniform from numba's
per-thread generator (``np.random.random`` inside ``prange``: one independent stream per thread). It is the same
Markov chain as the engine's (checkerboard order, one sweep = L² attempts), with float64 uniforms.

The results are checked, not only the time: ``tests/runs/test_numba_baseline.py`` compares its mean energy with
Kaufman's exact finite-lattice value (and rejects a chain run at the wrong temperature).
"""
from __future__ import annotations

import numpy as np

__all__ = ["available", "checkerboard_sweeps", "energy_per_spin", "thread_counts", "set_threads"]


def available() -> bool:
    """Whether numba can be imported (the ``bench`` extra)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def thread_counts() -> list[int]:
    """1 and numba's maximum: the benchmark keeps the faster (threads oversubscribed by other work can be slower
    than one; a fair baseline is the best the peer does on this machine)."""
    import numba

    return sorted({1, numba.config.NUMBA_NUM_THREADS})


def set_threads(count: int) -> None:
    import numba

    numba.set_num_threads(count)


_compiled = {}


def _kernels():
    """The jitted sweep and its seeding function, compiled once per process."""
    if not _compiled:
        import numba

        @numba.njit(cache=False)
        def seed(s):
            np.random.seed(s)

        @numba.njit(parallel=True, cache=False)
        def sweeps(x, table, count):
            rows, cols = x.shape
            for _ in range(count):
                for colour in range(2):
                    for i in numba.prange(rows):
                        above = i - 1 if i > 0 else rows - 1  # periodic neighbours without a modulo per site
                        below = i + 1 if i < rows - 1 else 0
                        for j in range((i + colour) & 1, cols, 2):
                            left = j - 1 if j > 0 else cols - 1
                            right = j + 1 if j < cols - 1 else 0
                            s = np.int32(x[i, j])
                            neighbours = np.int32(x[above, j]) + x[below, j] + x[i, left] + x[i, right]
                            de = 2 * s * neighbours  # -8, -4, 0, 4, 8: a uniform is drawn only for ΔE > 0
                            if de <= 0 or np.random.random() < table[(de + 8) >> 2]:
                                x[i, j] = -s
            return x

        _compiled["seed"], _compiled["sweeps"] = seed, sweeps
    return _compiled["seed"], _compiled["sweeps"]


def checkerboard_sweeps(x: np.ndarray, beta: float, sweeps: int, seed: int = 0) -> np.ndarray:
    """``sweeps`` Metropolis sweeps of a ±1 int8 ``(L0, L1)`` lattice (both even) at ``β``, in place; returns it.

    Each call seeds the calling thread's generator with ``seed``; numba's worker threads draw from their own
    independent streams, so a parallel run is not reproducible bit for bit (it is a baseline, not a result).
    """
    if x.dtype != np.int8 or x.ndim != 2 or any(s % 2 for s in x.shape):
        raise ValueError(f"x: dtype {x.dtype}, shape {x.shape}; needs an int8 2D lattice with even sides")
    seed_fn, sweep_fn = _kernels()
    seed_fn(seed)
    table = np.minimum(1.0, np.exp(-beta * np.arange(-8, 9, 4, dtype=np.float64)))
    return sweep_fn(x, table, sweeps)


def energy_per_spin(x: np.ndarray) -> float:
    """``-Σ_<ij> s_i s_j / N`` on the periodic lattice (J = 1, h = 0)."""
    s = x.astype(np.int64)
    return float(-(s * np.roll(s, 1, 0)).sum() - (s * np.roll(s, 1, 1)).sum()) / s.size
