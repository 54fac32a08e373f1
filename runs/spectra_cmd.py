"""``deepglass spectra WEIGHTS [--out DIR] [--normalize] [--quiet]``: heavy-tail diagnostics of every weight matrix.

WEIGHTS is a ``.npz`` / ``.npy`` / ``.h5`` / ``.safetensors`` file, a sharded checkpoint
(``model.safetensors.index.json`` or its directory) or a ``train`` run directory (its last snapshot). Prints one
line per layer (per network); with ``--out DIR`` writes

- ``DIR/spectra.h5``: one dataset per column of ``bridges.spectra.COLUMNS`` with attribute ``dims = ["layer"]``
  (``shape``: ``(layer, axis)``), strings as HDF5 variable-length UTF-8; root attributes ``source``,
  ``normalize``, ``seed``;
- ``DIR/spectra.csv``: the same columns (``shape`` as ``AxB``);
- ``DIR/figures/esd.png``: per layer, the log-log histogram of the ESD with the fitted Marchenko–Pastur density
  (bulk weight) and the fitted power-law tail (tail weight), one panel per layer (network 0 of a stack, at most
  ``MAX_PANELS`` panels).

Exit status 0 done, 2 unreadable weights (``WeightsError``: the message names the file and the tensor).
"""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "main", "format_table", "write_h5", "write_csv", "plot_esd", "MAX_PANELS"]

MAX_PANELS = 48
_PRINTED = ("network", "layer", "shape", "Q", "alpha", "alpha_weighted", "log_spectral_norm", "stable_rank",
            "entropy", "num_spikes", "mp_softrank", "rand_distance", "phase", "warning")


def add_parser(subparsers):
    """Add the ``spectra`` sub-command to an ``argparse`` sub-parser set; returns the new parser."""
    p = subparsers.add_parser("spectra", help="heavy-tailed spectral diagnostics of weight matrices (WeightWatcher)")
    p.add_argument("weights", help=".npz/.npy/.h5/.safetensors file, sharded index (or its directory), run directory")
    p.add_argument("--out", help="write spectra.h5, spectra.csv and figures/esd.png into this directory")
    p.add_argument("--normalize", action="store_true", help="eigenvalues of WᵀW/N instead of WᵀW")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--seed", type=int, default=0, help="seed of the entry permutation behind rand_distance")
    p.add_argument("--step", type=int, default=None, help="snapshot step of a run directory (default: the last)")
    p.set_defaults(handler=main)
    return p


def _cell(name, value):
    if name == "shape":
        return f"{value[0]}x{value[1]}"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_table(table, columns=_PRINTED) -> str:
    """A fixed-width text table of ``columns`` of a ``bridges.spectra.SpectraTable``."""
    rows = [[_cell(c, r[c]) for c in columns] for r in table]
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def write_h5(table, path, **attrs) -> Path:
    """``spectra.h5``: one dataset per column, ``dims`` attribute, strings as HDF5 string dtype."""
    import h5py

    from bridges.spectra import COLUMNS

    path = Path(path)
    text = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        for name, value in attrs.items():
            f.attrs[name] = value
        for name in COLUMNS:
            values = table.columns[name]
            if values.dtype == object:
                ds = f.create_dataset(name, data=np.array([str(v) for v in values], dtype=text))
            else:
                ds = f.create_dataset(name, data=values)
            ds.attrs["dims"] = np.array(["layer", "axis"] if name == "shape" else ["layer"], dtype=text)
    return path


def write_csv(table, path) -> Path:
    from bridges.spectra import COLUMNS

    path = Path(path)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for r in table:
            out.writerow([f"{r[c][0]}x{r[c][1]}" if c == "shape" else repr(r[c]) if isinstance(r[c], float)
                          else r[c] for c in COLUMNS])
    return path


def plot_esd(table, path) -> Path:
    """One log-log panel per layer: ESD histogram (density), MP density × bulk fraction, power-law tail × tail
    fraction; dashed line λ+, dotted line xmin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from bridges.spectra import marchenko_pastur_density

    rows = [i for i in range(len(table)) if table["network"][i] == 0][:MAX_PANELS]
    cols = min(4, max(1, len(rows)))
    nrows = max(1, math.ceil(len(rows) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.9 * nrows), squeeze=False)
    for ax in axes.ravel()[len(rows):]:
        ax.set_visible(False)
    for ax, i in zip(axes.ravel(), rows, strict=False):  # spare axes were hidden above
        r, ev = table[i], np.asarray(table.eigenvalues[i], np.float64)
        ax.set_title(f"{r['layer']}  α={r['alpha']:.2f}  {r['phase']}", fontsize=8)
        pos = ev[np.isfinite(ev) & (ev > 0)]
        if pos.size < 2 or pos.min() == pos.max():
            continue
        bins = int(np.clip(2 * np.sqrt(pos.size), 8, 60))
        edges = np.logspace(np.log10(pos.min()), np.log10(pos.max()), bins + 1)
        ax.hist(pos, bins=edges, density=True, color="0.7", label="ESD")
        x = np.logspace(np.log10(pos.min()), np.log10(pos.max()), 400)
        m = len(ev)
        bulk = (m - r["num_spikes"]) / m
        mp = bulk * np.asarray(marchenko_pastur_density(x, r["mp_sigma2"], r["Q"]))
        ax.plot(x, np.where(mp > 0, mp, np.nan), color="tab:blue", lw=1.2, label="MP fit")
        if np.isfinite(r["alpha"]):
            t = x[x >= r["xmin"]]
            tail = r["num_tail"] / m * (r["alpha"] - 1) / r["xmin"] * (t / r["xmin"]) ** -r["alpha"]
            ax.plot(t, tail, color="tab:red", lw=1.2, label=f"tail α={r['alpha']:.2f}")
            ax.axvline(r["xmin"], color="tab:red", ls=":", lw=0.8)
        ax.axvline(r["lambda_plus"], color="tab:blue", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # minor-tick labels collide on short ranges
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("λ", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(args) -> int:
    """Run the sub-command for parsed ``args`` (from :func:`add_parser`); returns the exit status."""
    import jax

    from bridges.spectra import WeightsError, analyze_path

    seed = getattr(args, "seed", 0)
    normalize = bool(getattr(args, "normalize", False))
    try:
        table = analyze_path(args.weights, normalize=normalize, key=jax.random.key(seed),
                             step=getattr(args, "step", None), progress=not getattr(args, "quiet", False))
    except WeightsError as e:
        print(f"deepglass: error: {e}", file=sys.stderr)
        return 2
    print(format_table(table))
    out = getattr(args, "out", None)
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [write_h5(table, out / "spectra.h5", source=str(args.weights), normalize=normalize, seed=seed),
                 write_csv(table, out / "spectra.csv"), plot_esd(table, out / "figures" / "esd.png")]
        for p in paths:
            print(f"wrote: {p}")
    return 0
