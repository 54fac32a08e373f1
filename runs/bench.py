"""``deepglass bench [NAME]``: discover ``runs/benchmarks/NAME.py`` and print its figures with the device.

With ``--out DIR`` the same figures are also written as ``DIR/bench.json`` (one record per figure: value, unit,
baseline, baseline value, ratio, device, date, command) and ``DIR/bench.md`` (the printed tables), ready to be
appended to BENCHMARKS.md.
"""
from __future__ import annotations

import datetime
import importlib
import json
import math
import pkgutil
import sys
from pathlib import Path

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


def run_bench(names: list[str] | None = None, *, quick: bool = False, out: str | Path | None = None) -> str:
    import jax

    names = names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        raise ValueError(f"bench = {unknown[0]!r}: unknown benchmark; choose from {', '.join(available())}")
    dev = jax.devices()[0]
    device = f"{dev.platform}: {getattr(dev, 'device_kind', '')} ×{jax.device_count()}"
    tables, records = [], []
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    command = "deepglass bench " + " ".join(names) + (" --quick" if quick else "")
    for name in names:
        module = importlib.import_module(f"{benchmarks.__name__}.{name}")
        rows = module.bench(quick=quick)
        tables.append(format_rows(name, rows, device))
        records += [{"benchmark": name, "figure": r.figure, "value": None if math.isnan(r.value) else r.value,
                     "unit": r.unit, "baseline": r.baseline,
                     "baseline_value": None if math.isnan(r.baseline_value) else r.baseline_value,
                     "ratio": None if math.isnan(r.ratio) else r.ratio, "note": r.note, "device": device,
                     "date": date, "command": command, "python": sys.version.split()[0],
                     "jax": jax.__version__} for r in rows]
    text = "\n\n".join(tables)
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bench.json").write_text(json.dumps(records, indent=1))
        (folder / "bench.md").write_text(f"<!-- {command}, {date} -->\n\n{text}\n")
    return text
