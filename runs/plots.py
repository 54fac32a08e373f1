"""``deepglass plot DIR``: figures from a results file (matplotlib, Agg backend, PNG)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

__all__ = ["plot_run", "errorbar_panels"]


def errorbar_panels(panels, xlabel: str, title: str, path: Path) -> Path:
    """A row of panels; each is ``(ylabel, [(label, x, y, yerr)], [(label, x, y) theory lines])``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, curves, lines) in zip(axes[0], panels):
        for label, x, y, yerr in curves:
            yerr = None if yerr is None or np.all(np.isnan(yerr)) else yerr
            ax.errorbar(x, y, yerr=yerr, fmt="o", ms=4, capsize=3, label=label)
        for label, x, y in lines:
            ax.plot(x, y, "-", lw=1.2, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def time_series_figure(h5: h5py.File, names, path: Path, title: str) -> Path:
    """Replica-averaged time series of each named dataset (all leading axes but the last averaged per row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("time", *names):
        if h5.swmr_mode:  # a live run: see the newest extent (time first, so series hold at least as many)
            h5[name].refresh()
    time = h5["time"][...]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        data = h5[name][..., : len(time)]  # a live run may hold part of a chunk past ``time``
        flat = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data[None]
        for row in flat[:12]:
            ax.plot(time[: len(row)], row, lw=0.7, alpha=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write the job's figures into ``DIR/figures`` and return their paths."""
    from . import config as config_mod
    from .store import open_results

    run_dir = Path(run_dir)
    results = run_dir / "results.h5"
    if not results.is_file():
        raise config_mod.ConfigError(f"DIR = {str(run_dir)!r}: no results.h5 to plot")
    # A running run is read live (SWMR): the time series drawn are the chunks completed so far.
    try:
        return _plot(run_dir, results, open_results(results))
    except OSError as e:  # a failed checksum (fletcher32) or an unreadable chunk
        from .store import RunFileError

        raise RunFileError(f"{results}: cannot be read for plotting ({e}): the file is damaged; `deepglass run "
                           f"CONFIG --out {run_dir} --force` runs it again") from None


def _plot(run_dir: Path, results: Path, h5file) -> list[Path]:
    from . import config as config_mod
    from .jobs import job_kinds

    with h5file as h5:
        cfg = config_mod.loads(str(h5.attrs["config"]), source=str(results))
        job = job_kinds()[cfg.run.kind](cfg)
        outdir = run_dir / "figures"
        paths = []
        series = [n for n in job.layout() if n in h5 and h5[n].shape[-1] > 0 and h5[n].dtype.kind == "f"]
        if series:
            paths.append(time_series_figure(h5, series[:4], outdir / "time_series.png",
                                            f"{cfg.run.kind}: time series (first rows)"))
        if h5.attrs["status"] == "complete":
            paths.extend(job.plot(h5, outdir))
        return paths
