"""Run a validated config: chunks of ``job.advance`` → ``results.h5`` + checkpoints, resumable bit for bit.

The loop is the same for every job kind (``runs.jobs``)::

    key = jax.random.key(seed); init_key, run_key = fold_in(key, 0), fold_in(key, 1)
    carry = job.init(init_key)
    for start in range(steps_done, total, chunk):
        carry, series = job.advance(carry, run_key, start, num)   # depends only on its arguments
        append series to results.h5; write checkpoint (carry, start + num)

A resumed run reloads the checkpoint, drops records written after it, and continues the same loop, so its datasets
are bitwise identical to an uninterrupted run's.
"""
from __future__ import annotations

import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

import jax
import numpy as np

from . import config as config_mod
from .jobs import job_kinds
from .store import RunDirectory

__all__ = ["execute", "resume", "available_memory_bytes"]


def _version() -> str:
    try:
        return metadata.version("deepglass")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (or total physical memory), in bytes."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _make_job(cfg: config_mod.Config):
    job = job_kinds()[cfg.run.kind](cfg)
    need, have = job.estimate_bytes(), available_memory_bytes()
    if need > 0.8 * have:
        raise config_mod.ConfigError(
            f"{cfg.run.kind}: the job needs about {need / 2**30:.2f} GiB, more than 80% of the "
            f"{have / 2**30:.2f} GiB available; make it smaller{getattr(job, 'memory_hint', '')}"
        )
    chunk = cfg.run.chunk_steps or job.default_chunk_steps
    if chunk % job.record_every:
        raise config_mod.ConfigError(
            f"run.chunk_steps = {chunk}: must be a multiple of the record interval ({job.record_every} steps)"
        )
    return job, chunk


def _keys(seed: int):
    key = jax.random.key(seed)
    return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


def _loop(job, run_dir: RunDirectory, carry, run_key, start: int, chunk: int, *, progress: bool,
          max_chunks: int | None):
    from tqdm.auto import tqdm

    total = job.total_steps
    bar = tqdm(total=total, initial=start, desc=job.kind, unit="step", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    key_data = np.asarray(jax.random.key_data(run_key))
    done_chunks = 0
    step = start
    try:
        while step < total:
            if max_chunks is not None and done_chunks >= max_chunks:
                return carry, False
            num = min(chunk, total - step)
            carry, series = job.advance(carry, run_key, step, num)
            series = {k: np.asarray(jax.device_get(v)) for k, v in series.items()}
            times = step + job.record_every * np.arange(1, num // job.record_every + 1, dtype=np.int64)
            run_dir.append(series, times, step + num)
            run_dir.write_snapshots({k: {n: np.asarray(jax.device_get(a)) for n, a in v.items()}
                                     for k, v in job.snapshots(carry, step, step + num).items()})
            run_dir.save_checkpoint(carry, step + num, key_data)
            step += num
            done_chunks += 1
            bar.update(num)
    finally:
        bar.close()
    return carry, True


def _finish(job, run_dir: RunDirectory):
    series = run_dir.read_series(list(job.layout()))
    summary = job.summarize(series)
    run_dir.write_summary(summary)


def execute(cfg: config_mod.Config, out_dir: str | Path, *, force: bool = False, progress: bool = True,
            max_chunks: int | None = None) -> Path:
    """Run ``cfg`` into ``out_dir`` (created). ``max_chunks`` stops early (as a kill would) — for tests.

    Returns the results path. Refuses to overwrite a directory holding a run unless ``force``.
    """
    out = Path(out_dir)
    job, chunk = _make_job(cfg)
    with RunDirectory(out) as run_dir:
        if run_dir.results.exists() or run_dir.checkpoint.exists():
            if not force:
                raise config_mod.ConfigError(
                    f"--out = {str(out)!r}: already holds a run; use `deepglass resume {out}` or --force to replace it"
                )
            for p in (run_dir.results, run_dir.checkpoint):
                p.unlink(missing_ok=True)
            shutil.rmtree(out / "figures", ignore_errors=True)
        run_dir.config.write_text(cfg.text)
        init_key, run_key = _keys(cfg.run.seed)
        carry = job.init(init_key)
        shapes = {name: _series_shape(job, name) for name in job.layout()}
        attrs = {
            "config": cfg.text,
            "kind": cfg.run.kind,
            "seed": cfg.run.seed,
            "deepglass_version": _version(),
            "jax_version": jax.__version__,
            "devices": ", ".join(f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()),
            "total_steps": job.total_steps,
            "record_every": job.record_every,
            "description": cfg.run.description,
        }
        run_dir.create_results(attrs, job.layout(), job.coords(), shapes)
        carry, complete = _loop(job, run_dir, carry, run_key, 0, chunk, progress=progress, max_chunks=max_chunks)
        if complete:
            _finish(job, run_dir)
        return run_dir.results


def _series_shape(job, name):
    dims = job.layout()[name].dims[:-1]
    coords = job.coords()
    missing = [d for d in dims if d not in coords]
    if missing:
        raise RuntimeError(f"job {job.kind!r}: series {name!r} uses dim {missing[0]!r} without a coordinate")
    return tuple(len(coords[d]) for d in dims)


def resume(out_dir: str | Path, *, progress: bool = True, max_chunks: int | None = None) -> Path:
    """Continue an interrupted run from its last checkpoint (same numbers as an uninterrupted run)."""
    out = Path(out_dir)
    if not (out / "config.toml").is_file():
        raise config_mod.ConfigError(f"DIR = {str(out)!r}: not a deepglass run directory (no config.toml)")
    cfg = config_mod.load(out / "config.toml")
    job, chunk = _make_job(cfg)
    with RunDirectory(out) as run_dir:
        init_key, run_key = _keys(cfg.run.seed)
        template = job.init(init_key)
        if run_dir.checkpoint.exists():
            carry, step, _ = run_dir.load_checkpoint(template)
        else:
            carry, step = template, 0
        if not run_dir.results.exists():
            raise config_mod.ConfigError(f"DIR = {str(out)!r}: has no results.h5 to resume; start it with `run`")
        run_dir.truncate(step // job.record_every, step)
        carry, complete = _loop(job, run_dir, carry, run_key, step, chunk, progress=progress, max_chunks=max_chunks)
        if complete:
            _finish(job, run_dir)
        return run_dir.results
