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
import tomllib
from importlib import metadata
from pathlib import Path

import jax
import numpy as np

from . import config as config_mod
from . import distributed, sharding
from .jobs import job_kinds
from .store import FollowerRunDirectory, RunDirectory, RunFileError

__all__ = ["execute", "resume", "plan", "format_plan", "available_memory_bytes", "config_differences",
           "check_memory"]


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
    chunk = cfg.run.chunk_steps or job.default_chunk_steps
    if chunk % job.record_every:
        raise config_mod.ConfigError(
            f"run.chunk_steps = {chunk}: must be a multiple of the record interval ({job.record_every} steps)"
        )
    return job, chunk


def _placement(cfg: config_mod.Config, job) -> sharding.Placement:
    """The mesh of the run: its batch (the carry's leading ``job.batch_ndim`` axes) split over ``run.devices``.

    Refuses, before anything is allocated, a batch that does not split evenly and a job whose memory per device is
    over the device's (host memory for CPU devices, which share it).
    """
    devices = sharding.select_devices(cfg.run.devices)
    batch_shape = ()
    if job.batch_ndim:
        shapes = [leaf.shape for leaf in jax.tree.leaves(jax.eval_shape(job.init, _keys(cfg.run.seed)[0]))
                  if len(leaf.shape) >= job.batch_ndim]
        batch_shape = tuple(shapes[0][: job.batch_ndim]) if shapes else ()
    placement = sharding.Placement(devices, batch_shape, job_places=job.batch_ndim is None,
                                   job_axis=getattr(job, "placement_axis", "devices"))
    platform = devices[0].platform
    limit = available_memory_bytes() if platform == "cpu" else _device_memory_bytes(devices[0])
    check_memory(cfg.run.kind, job.estimate_bytes(), placement.num_devices, platform, limit,
                 getattr(job, "memory_hint", ""))
    return placement


def check_memory(kind: str, need: int, num_devices: int, platform: str, limit: int, hint: str = "") -> None:
    """Refuse a job that will not fit, before anything is allocated, with the figures.

    CPU devices share the host's memory: the whole job must fit in 80% of what is available. An accelerator holds
    its share of the batch: ``need / num_devices`` must fit in 90% of one device's memory (``limit``; 0 when the
    runtime does not say, then nothing is checked).
    """
    if platform == "cpu":
        if need > 0.8 * limit:
            raise config_mod.ConfigError(
                f"{kind}: the job needs about {need / 2**30:.2f} GiB, more than 80% of the "
                f"{limit / 2**30:.2f} GiB available; make it smaller{hint}")
        return
    per_device = need / num_devices
    if limit and per_device > 0.9 * limit:
        raise config_mod.ConfigError(
            f"{kind}: the job needs about {per_device / 2**30:.2f} GiB per device on {num_devices} {platform} "
            f"device(s) ({need / 2**30:.2f} GiB in all), more than 90% of the {limit / 2**30:.2f} GiB one device "
            f"holds; use more devices (run.devices) or make it smaller{hint}")


def _device_memory_bytes(device) -> int:
    """The memory an accelerator can allocate (0 when the runtime does not say)."""
    try:
        return int((device.memory_stats() or {}).get("bytes_limit", 0))
    except Exception:  # some runtimes do not implement memory_stats
        return 0


def plan(cfg: config_mod.Config) -> dict:
    """What a run of ``cfg`` will do, without running it: the batch, steps, chunks, records, memory and output size.

    One implementation for ``deepglass check CONFIG`` and ``deepglass run --dry-run``. Raises ``ConfigError`` for
    a config that would be refused (including a job that does not fit in memory).
    """
    job, chunk = _make_job(cfg)
    placement = _placement(cfg, job)
    coords = job.coords()
    records = job.total_steps // job.record_every
    series_bytes = 0
    for name, series in job.layout().items():
        shape = _series_shape(job, name)
        series_bytes += int(np.prod(shape, dtype=np.int64)) * records * np.dtype(series.dtype).itemsize
    batch = {}
    for series in job.layout().values():
        for dim in series.dims[:-1]:
            batch.setdefault(dim, len(coords[dim]))
    return {
        "kind": cfg.run.kind,
        "seed": cfg.run.seed,
        "batch": batch,
        "total_steps": job.total_steps,
        "chunk_steps": chunk,
        "chunks": -(-job.total_steps // chunk),
        "record_every": job.record_every,
        "records": records,
        "memory_bytes": int(job.estimate_bytes()),
        "memory_per_device_bytes": int(job.estimate_bytes() // placement.num_devices),
        "available_bytes": int(available_memory_bytes()),
        "results_bytes": int(series_bytes),
        "devices": [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()],
        "mesh": dict(zip(placement.axis_names, map(int, placement.mesh.devices.shape), strict=True)),
        "batch_shape": list(placement.batch_shape),
        "job_places": bool(placement.job_places),
        "processes": int(jax.process_count()),
        "notes": list(cfg.notes),
    }


def format_plan(p: dict, source: str) -> str:
    """The plan as the lines ``deepglass check`` prints."""
    batch = " × ".join(f"{k} {v}" for k, v in p["batch"].items()) or "one"
    mesh = " × ".join(f"{k} {v}" for k, v in p["mesh"].items())
    if p.get("job_places"):  # the job divides its own work (a lattice in slabs, coupling groups, compare's units)
        over = f"{' × '.join(p['mesh'])}, divided by the job itself"
    else:
        over = "the batch " + (" × ".join(map(str, p["batch_shape"])) or "(nothing to split: one device computes)")
    lines = [
        f"{source}: valid ({p['kind']} job, seed {p['seed']})",
        f"  batch:     {batch}",
        f"  steps:     {p['total_steps']:,} in {p['chunks']} chunk(s) of {p['chunk_steps']:,} "
        f"(a checkpoint after each), a record every {p['record_every']} → {p['records']:,} records",
        f"  memory:    about {p['memory_bytes'] / 2**20:,.1f} MiB "
        f"(of {p['available_bytes'] / 2**30:,.1f} GiB available)",
        f"  results:   about {p['results_bytes'] / 2**20:,.1f} MiB of time series in results.h5",
        f"  devices:   {_device_summary(p['devices'])}; {p['processes']} process(es)",
        f"  mesh:      {mesh} over {over}, about "
        f"{p['memory_per_device_bytes'] / 2**20:,.1f} MiB per device",
    ]
    lines += [f"  note:      {n}" for n in p["notes"]]
    return "\n".join(lines)


def _device_summary(devices: list[str]) -> str:
    counts = {}
    for d in devices:
        counts[d] = counts.get(d, 0) + 1
    return ", ".join(f"{n} × {d}" for d, n in counts.items())


def _keys(seed: int):
    key = jax.random.key(seed)
    return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


def _loop(job, run_dir: RunDirectory, carry, run_key, start: int, chunk: int, *, progress: bool,
          max_chunks: int | None, config_text: str):
    """Advance chunk by chunk; after each, write its records and then the checkpoint (gathered to the host)."""
    from tqdm.auto import tqdm

    total = job.total_steps
    bar = tqdm(total=total, initial=start, desc=job.kind, unit="step", file=sys.stderr,
               disable=not (progress and run_dir.writes), dynamic_ncols=True)
    key_data = np.asarray(jax.random.key_data(run_key))
    done_chunks = 0
    step = start
    try:
        while step < total:
            if max_chunks is not None and done_chunks >= max_chunks:
                return carry, False
            num = min(chunk, total - step)
            carry, series = job.advance(carry, run_key, step, num)
            series = {k: sharding.to_host(v) for k, v in series.items()}
            times = step + job.record_every * np.arange(1, num // job.record_every + 1, dtype=np.int64)
            snapshots = {k: {n: sharding.to_host(a) for n, a in v.items()}
                         for k, v in job.snapshots(carry, step, step + num).items()}
            # records (fsynced) first, then the checkpoint that refers to them
            run_dir.append(series, times, step + num, snapshots)
            run_dir.save_checkpoint(jax.tree.map(sharding.to_host, job.to_checkpoint(carry)), step + num, key_data,
                                    config_text)
            step += num
            done_chunks += 1
            bar.update(num)
    finally:
        bar.close()
    return carry, True


def _finish(job, run_dir: RunDirectory, carry):
    if not run_dir.writes:
        return
    series = run_dir.read_series(list(job.layout()))
    summary = job.summarize_final(series, carry)
    run_dir.write_summary(summary)


def _note(message: str):
    print(f"deepglass: {message}", file=sys.stderr)


def _start(cfg: config_mod.Config, job, chunk: int, run_dir: RunDirectory, placement: sharding.Placement, *,
           progress: bool, max_chunks: int | None) -> Path:
    """Write ``config.toml`` and a fresh ``results.h5``, then run from step 0."""
    if run_dir.writes:
        run_dir.config.write_text(cfg.text)
    init_key, run_key = _keys(cfg.run.seed)
    carry = sharding.place(job.init(init_key), placement)
    shapes = {name: _series_shape(job, name) for name in job.layout()}
    attrs = {
        "config": cfg.text,
        "kind": cfg.run.kind,
        "seed": cfg.run.seed,
        "deepglass_version": _version(),
        "jax_version": jax.__version__,
        "devices": ", ".join(f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()),
        "mesh": sharding.mesh_record(placement, len(placement.devices)),
        "total_steps": job.total_steps,
        "record_every": job.record_every,
        "description": cfg.run.description,
        **job.attrs(),
    }
    run_dir.create_results(attrs, job.layout(), job.coords(), shapes, job.snapshot_layout(carry))
    carry, complete = _loop(job, run_dir, carry, run_key, 0, chunk, progress=progress, max_chunks=max_chunks,
                            config_text=cfg.text)
    if complete:
        _finish(job, run_dir, carry)
    return run_dir.results


def execute(cfg: config_mod.Config, out_dir: str | Path, *, force: bool = False, progress: bool = True,
            max_chunks: int | None = None) -> Path:
    """Run ``cfg`` into ``out_dir`` (created). ``max_chunks`` stops early (as a kill would) — for tests.

    Returns the results path. Refuses to overwrite a directory holding a run unless ``force``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise config_mod.ConfigError(f"--out = {str(out)!r}: exists and is not a directory")
    distributed.start(cfg.run)
    job, chunk = _make_job(cfg)
    placement = _placement(cfg, job)
    with _run_directory(out) as run_dir:
        if run_dir.writes and (run_dir.results.exists() or run_dir.checkpoint.exists()):
            if not force:
                raise config_mod.ConfigError(
                    f"--out = {str(out)!r}: already holds a run; use `deepglass resume {out}` or --force to replace it"
                )
            for p in (run_dir.results, run_dir.checkpoint):
                p.unlink(missing_ok=True)
            shutil.rmtree(out / "figures", ignore_errors=True)
        distributed.sync("deepglass: run directory ready")
        return _start(cfg, job, chunk, run_dir, placement, progress=progress, max_chunks=max_chunks)


def _run_directory(out: Path) -> RunDirectory:
    """Process 0 locks and writes the run directory; the other processes of a multi-process run only read it."""
    return RunDirectory(out) if distributed.is_writer() else FollowerRunDirectory(out)


def _series_shape(job, name):
    dims = job.layout()[name].dims[:-1]
    coords = job.coords()
    missing = [d for d in dims if d not in coords]
    if missing:
        raise RuntimeError(f"job {job.kind!r}: series {name!r} uses dim {missing[0]!r} without a coordinate")
    return tuple(len(coords[d]) for d in dims)


def _flat(table, prefix=""):
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_differences(text_a: str, text_b: str) -> list[str]:
    """Dotted keys whose values differ between two TOML texts (comments and layout do not count)."""
    try:
        a, b = _flat(tomllib.loads(text_a)), _flat(tomllib.loads(text_b))
    except tomllib.TOMLDecodeError:
        return ["<the whole text: one side is not valid TOML>"]
    return [f"{k} ({a.get(k, '<absent>')!r} vs {b.get(k, '<absent>')!r})" for k in sorted(set(a) | set(b))
            if a.get(k, _MISSING) != b.get(k, _MISSING)]


_MISSING = object()


# Where a run computes does not change its numbers: a run may resume on another number of devices.
_PLACEMENT_KEYS = ("run.devices", "run.distributed", "run.processes", "run.coordinator_timeout",
                   "run.heartbeat_timeout")


def _check_same_config(cfg_text: str, stored: str, where: Path, config_path: Path):
    diff = [d for d in config_differences(stored, cfg_text) if d.split(" ", 1)[0] not in _PLACEMENT_KEYS]
    if diff:
        raise config_mod.ConfigError(
            f"{config_path}: differs from the config the run was started with (stored in {where}): "
            f"{'; '.join(diff)} (started with vs now). Resuming would mix two runs: restore the file, or start "
            f"the new config with `deepglass run {config_path} --out DIR --force` into a directory of its own"
        )


def resume(out_dir: str | Path, *, progress: bool = True, max_chunks: int | None = None) -> Path:
    """Continue an interrupted run from its last checkpoint (same numbers as an uninterrupted run).

    A run killed before its first records (no ``results.h5``) starts from step 0 with its saved config; one whose
    ``results.h5`` was deleted also starts from step 0 (its records cannot be rebuilt from the checkpoint, which holds
    the state, not the series). Refused: a ``config.toml`` edited since the run started, a results file holding
    fewer records than the checkpoint needs, unreadable files (each with what to do).
    """
    out = Path(out_dir)
    if not (out / "config.toml").is_file():
        raise config_mod.ConfigError(f"DIR = {str(out)!r}: not a deepglass run directory (no config.toml)")
    cfg = config_mod.load(out / "config.toml")
    distributed.start(cfg.run)
    job, chunk = _make_job(cfg)
    placement = _placement(cfg, job)
    init_key, run_key = _keys(cfg.run.seed)
    with _run_directory(out) as run_dir:
        # Process 0 checks the files and makes them consistent (it alone writes); the others then read the same
        # checkpoint, so every process continues from the same step.
        fresh = _prepare_resume(cfg, job, run_dir, out) if run_dir.writes else False
        distributed.sync("deepglass: resume prepared")
        if fresh or not run_dir.checkpoint.exists() and not run_dir.writes:
            return _start(cfg, job, chunk, run_dir, placement, progress=progress, max_chunks=max_chunks)
        template = job.init(init_key)
        if run_dir.checkpoint.exists():
            saved, step, _ = run_dir.load_checkpoint(jax.eval_shape(job.to_checkpoint, template))
            carry = job.from_checkpoint(saved)
        else:
            carry, step = template, 0
        run_dir.truncate(step // job.record_every, step)
        # The checkpoint holds the global state: it goes onto whatever mesh this resume runs on.
        carry = sharding.place(carry, placement)
        carry, complete = _loop(job, run_dir, carry, run_key, step, chunk, progress=progress, max_chunks=max_chunks,
                                config_text=cfg.text)
        if complete:
            _finish(job, run_dir, carry)
        return run_dir.results


def _prepare_resume(cfg: config_mod.Config, job, run_dir: RunDirectory, out: Path) -> bool:
    """Process 0's checks before a resume; True when the run must start again from step 0 (said on stderr)."""
    if not run_dir.results.exists():
        if run_dir.checkpoint.exists():
            _note(f"{run_dir.results} is missing; the checkpoint holds the state but not the recorded series, "
                  "so the run starts again from step 0 with its saved config")
            run_dir.checkpoint.unlink()
        else:
            _note(f"{out}: killed before its first records; starting from step 0 with its saved config")
        return True
    attrs = run_dir.attrs()
    _check_same_config(cfg.text, str(attrs.get("config", "")), run_dir.results, run_dir.config)
    step = 0
    if run_dir.checkpoint.exists():
        stored = run_dir.checkpoint_config()
        if stored is not None:
            _check_same_config(cfg.text, stored, run_dir.checkpoint, run_dir.config)
        step = run_dir.checkpoint_step()
    needed = step // job.record_every
    short = {name: n for name, n in run_dir.records().items() if n < needed}
    if short:
        name, n = next(iter(short.items()))
        raise RunFileError(
            f"{run_dir.results}: holds {n} records of {name!r} ({len(short)} series short) but the checkpoint "
            f"at step {step} needs {needed}: the results file is older than the checkpoint. Delete "
            f"{run_dir.checkpoint} to restart from step 0 with `deepglass resume {out}`, or `deepglass run "
            f"CONFIG --out {out} --force`"
        )
    return False
