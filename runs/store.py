"""The run directory: ``results.h5`` (observables), ``checkpoint.npz`` (full state), ``config.toml``, a lock.

Layout of ``results.h5`` (DESIGN §4):

* root attributes ``config`` (the TOML text), ``deepglass_version``, ``jax_version``, ``devices``, ``seed``,
  ``kind``, ``status`` (``running`` until the last summary is written, then ``complete``), ``steps_done``;
* one dataset per observable with an attribute ``dims`` naming its axes, e.g.
  ``["disorder", "temperature", "replica", "time"]``, and a coordinate dataset per axis beside it (also attached as
  HDF5 dimension scales, so netCDF readers see them);
* time series grow along their last axis, ``time``, one chunk at a time; summaries are written at the end.

Checkpoints hold every leaf of the job's carry, the step counter and the run key; each is written to a temporary
file, flushed, fsynced and ``os.replace``d, so a kill at any moment leaves the last good one.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import h5py
import jax
import numpy as np

__all__ = ["RunDirectory", "RunLockedError", "read_results", "to_xarray"]

RESULTS = "results.h5"
CHECKPOINT = "checkpoint.npz"
CONFIG = "config.toml"
LOCK = ".lock"


class RunLockedError(RuntimeError):
    """Another process is writing this run directory."""


def _str_list(values):
    return np.array([str(v) for v in values], dtype=h5py.string_dtype())


class RunDirectory:
    """A run's directory. Use as a context manager: entering takes the lock (``fcntl.flock``), exiting frees it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_fd = None

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    # --- lock -------------------------------------------------------------------------------------------
    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(f"{self.path}: another deepglass process is writing this run directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        return self

    def __exit__(self, *exc):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- results ----------------------------------------------------------------------------------------
    def create_results(self, attrs: dict[str, Any], layout: dict, coords: dict[str, np.ndarray], shapes: dict):
        """Create ``results.h5`` with empty time series (``shapes[name]`` excludes the time axis)."""
        tmp = self.results.with_suffix(".h5.tmp")
        with h5py.File(tmp, "w") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            f.attrs["status"] = "running"
            f.attrs["steps_done"] = 0
            for name, values in coords.items():
                values = np.asarray(values)
                f.create_dataset(name, data=_str_list(values) if values.dtype.kind in "US" else values)
                f[name].attrs["dims"] = _str_list([name])
            f.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
            f["time"].attrs["dims"] = _str_list(["time"])
            f["time"].attrs["units"] = "steps completed when the record was taken"
            for name, series in layout.items():
                shape = tuple(shapes[name]) + (0,)
                chunk = tuple(max(1, s) for s in shapes[name]) + (256,)
                f.create_dataset(name, shape=shape, maxshape=tuple(shapes[name]) + (None,), dtype=series.dtype,
                                 chunks=chunk)
                f[name].attrs["dims"] = _str_list(series.dims)
            _attach_scales(f)
        os.replace(tmp, self.results)

    def append(self, series: dict[str, np.ndarray], times: np.ndarray, steps_done: int):
        """Append one chunk of records along ``time`` and flush."""
        with h5py.File(self.results, "a") as f:
            n0 = f["time"].shape[0]
            n1 = n0 + len(times)
            f["time"].resize((n1,))
            f["time"][n0:n1] = times
            for name, values in series.items():
                ds = f[name]
                ds.resize(n1, axis=ds.ndim - 1)
                ds[..., n0:n1] = np.asarray(values, dtype=ds.dtype)
            f.attrs["steps_done"] = steps_done
            f.flush()

    def write_snapshots(self, snapshots: dict[str, dict[str, np.ndarray]]):
        """Write ``snapshots/<label>/<name>`` groups (replacing a label written before, e.g. before a resume)."""
        if not snapshots:
            return
        with h5py.File(self.results, "a") as f:
            group = f.require_group("snapshots")
            for label, arrays in snapshots.items():
                if label in group:
                    del group[label]
                g = group.create_group(label)
                for name, value in arrays.items():
                    g.create_dataset(name, data=np.asarray(value))
            f.flush()

    def truncate(self, num_records: int, steps_done: int):
        """Drop records past ``num_records`` (written after the last checkpoint of an interrupted run)."""
        with h5py.File(self.results, "a") as f:
            for name, ds in f.items():
                if isinstance(ds, h5py.Dataset) and ds.maxshape and ds.maxshape[-1] is None:
                    ds.resize(num_records, axis=ds.ndim - 1)
            f.attrs["steps_done"] = steps_done
            f.attrs["status"] = "running"

    def read_series(self, names) -> dict[str, np.ndarray]:
        with h5py.File(self.results, "r") as f:
            return {n: f[n][...] for n in names}

    def write_summary(self, summary: dict[str, tuple[tuple[str, ...], np.ndarray]], extra_coords=None):
        """Write final datasets and mark the run complete."""
        with h5py.File(self.results, "a") as f:
            for name, values in (extra_coords or {}).items():
                if name in f:
                    del f[name]
                f.create_dataset(name, data=np.asarray(values))
                f[name].attrs["dims"] = _str_list([name])
            for name, (dims, values) in summary.items():
                if name in f and f[name].maxshape and f[name].maxshape[-1] is None:
                    raise ValueError(f"summary {name!r} would overwrite the time series of the same name")
                if name in f:
                    del f[name]
                values = np.asarray(values)
                f.create_dataset(name, data=_str_list(values.ravel()).reshape(values.shape)
                                 if values.dtype.kind in "US" else values)
                f[name].attrs["dims"] = _str_list(dims)
            _attach_scales(f)
            f.attrs["status"] = "complete"
            f.flush()

    def status(self) -> str:
        with h5py.File(self.results, "r") as f:
            return str(f.attrs["status"])

    # --- checkpoints ------------------------------------------------------------------------------------
    def save_checkpoint(self, carry, step: int, key_data: np.ndarray):
        leaves = jax.tree_util.tree_leaves(carry)
        arrays = {f"leaf_{i:05d}": np.asarray(jax.device_get(a)) for i, a in enumerate(leaves)}
        arrays["__step__"] = np.asarray(step, np.int64)
        arrays["__key__"] = np.asarray(key_data)
        tmp = self.checkpoint.with_name(CHECKPOINT + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.checkpoint)

    def load_checkpoint(self, template):
        """Restore a carry with ``template``'s structure; returns ``(carry, step, key_data)``."""
        with np.load(self.checkpoint, allow_pickle=False) as z:
            leaves, treedef = jax.tree_util.tree_flatten(template)
            restored = [z[f"leaf_{i:05d}"] for i in range(len(leaves))]
            for i, (a, b) in enumerate(zip(leaves, restored)):
                if np.shape(a) != b.shape:
                    raise ValueError(f"checkpoint leaf {i} has shape {b.shape}, the job expects {np.shape(a)}")
            carry = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(b) for b in restored])
            return carry, int(z["__step__"]), z["__key__"]


def _attach_scales(f: h5py.File):
    """Make every coordinate a dimension scale and attach it to the datasets that use that dim."""
    names = {n for n, d in f.items() if isinstance(d, h5py.Dataset) and list(d.attrs.get("dims", [])) == [n]}
    for n in names:
        if not f[n].is_scale:
            f[n].make_scale(n)
    for name, ds in f.items():
        if not isinstance(ds, h5py.Dataset) or name in names or "dims" not in ds.attrs:
            continue
        for axis, dim in enumerate(ds.attrs["dims"]):
            dim = dim.decode() if isinstance(dim, bytes) else str(dim)
            if dim in names and f[dim].shape[0] == ds.shape[axis] and not ds.dims[axis].keys():
                ds.dims[axis].attach_scale(f[dim])


def read_results(path: str | Path) -> dict[str, Any]:
    """Every dataset of a results file as ``{name: (dims, array)}`` plus ``"attrs"`` (plain h5py, no deepglass)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        for name, ds in f.items():
            if isinstance(ds, h5py.Dataset):
                dims = [d.decode() if isinstance(d, bytes) else str(d) for d in ds.attrs.get("dims", [])]
                data = ds[...]
                if data.dtype.kind == "O":
                    data = data.astype(str)
                out[name] = (dims, data)
    return out


def to_xarray(path: str | Path):
    """The results file as an ``xarray.Dataset`` (coordinates from the ``dims`` attributes)."""
    import xarray as xr

    raw = read_results(path)
    attrs = raw.pop("attrs")
    coords = {n: v for n, (d, v) in raw.items() if d == [n]}
    data_vars = {n: (d, v) for n, (d, v) in raw.items() if d != [n] and len(d) == np.ndim(v)}
    return xr.Dataset(data_vars, coords=coords,
                      attrs={k: (json.dumps(v.tolist()) if isinstance(v, np.ndarray) else v) for k, v in attrs.items()})
