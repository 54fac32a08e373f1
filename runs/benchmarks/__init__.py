"""Benchmarks for ``deepglass bench NAME``: one module per name, each defining ``bench(quick=False) -> list[Row]``.

Every figure is reported next to a baseline measured in the same process, as an absolute number and a ratio, with
the device it ran on (DESIGN §5). Benchmarks are never asserted in tests.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["Row", "timeit"]


class Row(NamedTuple):
    """One benchmark figure: ``value`` in ``unit`` and, where it has one, the same-run baseline and the ratio."""

    figure: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float = float("nan")
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value == self.baseline_value else float("nan")


def timeit(fn: Callable[[], object], *, min_time: float = 0.5, repeats: int = 3) -> float:
    """Best wall time of one call of ``fn`` (which must block until done), after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time / repeats:
                break
        best = min(best, el / n)
    return best
