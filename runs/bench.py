"""``deepglass bench [NAME]``: discover ``runs/benchmarks/NAME.py`` and print its figures with the device."""
from __future__ import annotations

import importlib
import math
import pkgutil

from . import benchmarks

__all__ = ["available", "run_bench", "format_rows"]


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))


def format_rows(name: str, rows, device: str) -> str:
    lines = [f"## bench {name} — device: {device}", "",
             "| figure | value | unit | baseline (same run) | baseline value | ratio | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if math.isnan(r.ratio) else f"{r.ratio:.2f}×"
        base = "" if math.isnan(r.baseline_value) else f"{r.baseline_value:.4g}"
        lines.append(f"| {r.figure} | {r.value:.4g} | {r.unit} | {r.baseline} | {base} | {ratio} | {r.note} |")
    return "\n".join(lines)


def run_bench(names: list[str] | None = None, *, quick: bool = False) -> str:
    import jax

    names = names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        raise ValueError(f"bench = {unknown[0]!r}: unknown benchmark; choose from {', '.join(available())}")
    dev = jax.devices()[0]
    device = f"{dev.platform}: {getattr(dev, 'device_kind', '')} ×{jax.device_count()}"
    out = []
    for name in names:
        module = importlib.import_module(f"{benchmarks.__name__}.{name}")
        out.append(format_rows(name, module.bench(quick=quick), device))
    return "\n\n".join(out)
