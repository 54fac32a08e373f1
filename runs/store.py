"""The run directory: ``results.h5`` (observables), ``checkpoint.npz`` (full state), ``config.toml``, a lock.

Layout of ``results.h5`` (DESIGN §4):

* root attributes ``config`` (the TOML text), ``deepglass_version``, ``jax_version``, ``devices``, ``seed``,
  ``kind``, ``status`` (``running`` until the last summary is written, then ``complete``), ``steps_done``;
* one dataset per observable with an attribute ``dims`` naming its axes, e.g.
  ``["disorder", "temperature", "replica", "time"]``, and a coordinate dataset per axis beside it (also attached as
  HDF5 dimension scales, so netCDF readers see them);
* time series grow along their last axis, ``time``, one chunk at a time; summaries are written at the end;
* every array dataset carries the ``fletcher32`` checksum filter, so garbled bytes fail loudly on read.

Watching a run live. The file is written in HDF5's single-writer/multiple-reader (SWMR) mode: its whole structure
(series, coordinates, snapshot slots) is created before the first chunk, and each chunk only extends the series and
fills slots, with the writer in SWMR mode, opened without an HDF5 file lock (``locking=False``), then closed and
fsynced. A reader therefore never blocks or breaks the writer, and a reader opened with
``h5py.File(path, "r", swmr=True)`` (what :func:`open_results`, ``deepglass plot`` and :func:`to_xarray` do) sees
every completed chunk; ``steps_done`` says how far the records go. Only the final summaries change the structure.

Checkpoints hold every leaf of the job's carry, the step counter, the run key and the config text; each is written
to a temporary file, flushed, fsynced and ``os.replace``d, so a kill at any moment leaves the last good one. The
HDF5 file is flushed and fsynced before the checkpoint that refers to its records is written.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import jax
import numpy as np

__all__ = ["RunDirectory", "FollowerRunDirectory", "RunLockedError", "RunFileError", "open_results", "read_results",
           "to_xarray"]

RESULTS = "results.h5"
CHECKPOINT = "checkpoint.npz"
CONFIG = "config.toml"
LOCK = ".lock"
# HDF5 leaves these "open for write" flags in the superblock when a SWMR writer is killed.
_STALE_FLAGS = "already open for write"


class RunLockedError(RuntimeError):
    """Another process is writing this run directory."""


class RunFileError(ValueError):
    """A run file (results, checkpoint) is missing, truncated, garbled or inconsistent; the message says what to do."""


def _str_list(values):
    return np.array([str(v) for v in values], dtype=h5py.string_dtype())


def _create_dataset(group, name: str, *, data=None, shape=None, dtype=None, **kwargs):
    """``create_dataset`` with the fletcher32 checksum wherever HDF5 allows a filter (non-scalar, fixed-size)."""
    arr = None if data is None else np.asarray(data)
    shp = arr.shape if arr is not None else shape
    dt = np.dtype(arr.dtype if arr is not None else dtype)
    if len(shp) > 0 and h5py.check_string_dtype(dt) is None and dt.kind != "O":
        kwargs.setdefault("fletcher32", True)
    return group.create_dataset(name, data=arr, shape=None if arr is not None else shp, dtype=dtype, **kwargs)


def open_results(path: str | Path) -> h5py.File:
    """Open a results file for reading, live or finished: SWMR read without a file lock (falls back to a plain read
    for files written before SWMR). Raises :class:`RunFileError` naming the file when HDF5 cannot read it."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.is_file():
        raise RunFileError(f"{path}: no such results file")
    try:
        return h5py.File(path, "r", swmr=True, locking=False)
    except OSError:
        pass
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as e:
        raise RunFileError(f"{path}: not a readable HDF5 results file ({e}); if it is a run of yours, "
                           f"`deepglass run CONFIG --out {path.parent} --force` starts it again") from None


def _fsync(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RunDirectory:
    """A run's directory. Use as a context manager: entering takes the lock (``fcntl.flock``), exiting frees it."""

    writes = True  # process 0 of a run (every single-process run); see FollowerRunDirectory

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
            holder = os.read(fd, 256).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(f"{self.path}: another deepglass process is writing this run directory "
                                 f"({holder}); wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode())
        self._lock_fd = fd
        return self

    def __exit__(self, *exc):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- results ----------------------------------------------------------------------------------------
    @contextmanager
    def _writer(self, *, swmr: bool):
        """The results file opened for writing without an HDF5 file lock (readers never block us; our own
        ``flock`` on the directory already excludes a second writer), in SWMR mode when ``swmr``; closed, then
        fsynced."""
        try:
            f = h5py.File(self.results, "a", libver="latest", locking=False)
        except OSError as e:
            if _STALE_FLAGS not in str(e):
                raise RunFileError(f"{self.results}: cannot be opened for writing ({e}); delete "
                                   f"{self.checkpoint.name} and results.h5 to restart, or `run --force`") from None
            # A writer was killed while the file was open: HDF5 marks it open-for-write until cleared. We hold
            # the directory lock, so no writer is alive: copy the file to a fresh one (same data), then go on.
            self._rewrite_after_kill()
            f = h5py.File(self.results, "a", libver="latest", locking=False)
        try:
            if swmr:
                f.swmr_mode = True
            yield f
            f.flush()
        finally:
            f.close()
        _fsync(self.results)

    def _rewrite_after_kill(self):
        tmp = self.results.with_suffix(".h5.tmp")
        with open_results(self.results) as src, h5py.File(tmp, "w", libver="latest") as dst:
            _copy_group(src, dst)
            _attach_scales(dst)
        os.replace(tmp, self.results)

    def create_results(self, attrs: dict[str, Any], layout: dict, coords: dict[str, np.ndarray], shapes: dict,
                       snapshot_layout: dict | None = None):
        """Create ``results.h5`` with empty time series (``shapes[name]`` excludes the time axis) and, for every
        snapshot ``{label: {name: (shape, dtype)}}``, its datasets (filled when written; group attribute
        ``written`` = 0 until then), so that the structure never changes while the run writes in SWMR mode."""
        tmp = self.results.with_suffix(".h5.tmp")
        with h5py.File(tmp, "w", libver="latest") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            f.attrs["status"] = "running"
            f.attrs["steps_done"] = 0
            for name, values in coords.items():
                values = np.asarray(values)
                _create_dataset(f, name, data=_str_list(values) if values.dtype.kind in "US" else values)
                f[name].attrs["dims"] = _str_list([name])
            _create_dataset(f, "time", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
            f["time"].attrs["dims"] = _str_list(["time"])
            f["time"].attrs["units"] = "steps completed when the record was taken"
            for name, series in layout.items():
                shape = tuple(shapes[name]) + (0,)
                chunk = tuple(max(1, s) for s in shapes[name]) + (256,)
                _create_dataset(f, name, shape=shape, maxshape=tuple(shapes[name]) + (None,), dtype=series.dtype,
                                chunks=chunk)
                f[name].attrs["dims"] = _str_list(series.dims)
            if snapshot_layout:
                _snapshot_slots(f, snapshot_layout)
            _attach_scales(f)
        os.replace(tmp, self.results)
        _fsync(self.results)

    def append(self, series: dict[str, np.ndarray], times: np.ndarray, steps_done: int,
               snapshots: dict[str, dict[str, np.ndarray]] | None = None):
        """Append one chunk of records along ``time`` (and fill its snapshot slots) in SWMR mode; flush, fsync.

        Snapshot labels that were not declared when the file was created are created here (outside SWMR mode).
        """
        snapshots = snapshots or {}
        if snapshots:
            with open_results(self.results) as f:
                undeclared = {k: v for k, v in snapshots.items() if f"snapshots/{k}" not in f}
            if undeclared:
                self._create_snapshot_slots(undeclared)
        with self._writer(swmr=True) as f:
            n0 = f["time"].shape[0]
            n1 = n0 + len(times)
            for name, values in series.items():
                ds = f[name]
                ds.resize(n1, axis=ds.ndim - 1)
                ds[..., n0:n1] = np.asarray(values, dtype=ds.dtype)
            for label, arrays in snapshots.items():
                g = f[f"snapshots/{label}"]
                for name, value in arrays.items():
                    g[name][...] = np.asarray(value)
                g.attrs.modify("written", np.int8(1))
            f.flush()
            # ``time`` last: a reader that sees n1 times sees n1 records of every series.
            f["time"].resize((n1,))
            f["time"][n0:n1] = times
            f.attrs.modify("steps_done", steps_done)

    def _create_snapshot_slots(self, snapshots):
        with self._writer(swmr=False) as f:
            _snapshot_slots(f, {label: {name: (np.shape(v), np.asarray(v).dtype) for name, v in arrays.items()}
                                for label, arrays in snapshots.items()})

    def records(self) -> dict[str, int]:
        """Number of records held by ``time`` and by every time series."""
        with open_results(self.results) as f:
            return {name: ds.shape[-1] for name, ds in f.items()
                    if isinstance(ds, h5py.Dataset) and ds.maxshape and ds.maxshape[-1] is None}

    def truncate(self, num_records: int, steps_done: int):
        """Drop records past ``num_records`` (written after the last checkpoint of an interrupted run) and the
        snapshots taken after ``steps_done``."""
        with self._writer(swmr=False) as f:
            for ds in f.values():
                if isinstance(ds, h5py.Dataset) and ds.maxshape and ds.maxshape[-1] is None:
                    ds.resize(num_records, axis=ds.ndim - 1)
            f.attrs["steps_done"] = steps_done
            f.attrs["status"] = "running"

    def read_series(self, names) -> dict[str, np.ndarray]:
        with open_results(self.results) as f:
            out = {}
            for n in names:
                try:
                    out[n] = f[n][...]
                except OSError as e:  # a failed checksum (fletcher32) or an unreadable chunk
                    raise _damaged(self.results, n, e) from None
            return out

    def write_summary(self, summary: dict[str, tuple[tuple[str, ...], np.ndarray]], extra_coords=None):
        """Write final datasets and mark the run complete."""
        with self._writer(swmr=False) as f:
            for name, values in (extra_coords or {}).items():
                if name in f:
                    del f[name]
                _create_dataset(f, name, data=np.asarray(values))
                f[name].attrs["dims"] = _str_list([name])
            for name, (dims, values) in summary.items():
                if name in f and f[name].maxshape and f[name].maxshape[-1] is None:
                    raise ValueError(f"summary {name!r} would overwrite the time series of the same name")
                if name in f:
                    del f[name]
                values = np.asarray(values)
                _create_dataset(f, name, data=_str_list(values.ravel()).reshape(values.shape)
                                if values.dtype.kind in "US" else values)
                f[name].attrs["dims"] = _str_list(dims)
            _attach_scales(f)
            f.attrs["status"] = "complete"

    def attrs(self) -> dict[str, Any]:
        """The root attributes of ``results.h5``."""
        with open_results(self.results) as f:
            return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}

    def status(self) -> str:
        return str(self.attrs()["status"])

    # --- checkpoints ------------------------------------------------------------------------------------
    def save_checkpoint(self, carry, step: int, key_data: np.ndarray, config_text: str = ""):
        leaves = jax.tree_util.tree_leaves(carry)
        arrays = {f"leaf_{i:05d}": np.asarray(jax.device_get(a)) for i, a in enumerate(leaves)}
        arrays["__step__"] = np.asarray(step, np.int64)
        arrays["__key__"] = np.asarray(key_data)
        arrays["__config__"] = np.asarray(config_text)
        tmp = self.checkpoint.with_name(CHECKPOINT + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.checkpoint)

    def _bad_checkpoint(self, what: str) -> RunFileError:
        return RunFileError(f"{self.checkpoint}: {what}; delete it and `deepglass resume {self.path}` restarts the "
                            f"run from step 0 with its saved config, or `deepglass run CONFIG --out {self.path} "
                            f"--force` starts afresh")

    def checkpoint_config(self) -> str | None:
        """The config text stored in the checkpoint (None for checkpoints written before it was stored)."""
        try:
            with open(self.checkpoint, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                return str(z["__config__"]) if "__config__" in z.files else None
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise self._bad_checkpoint(f"unreadable ({type(e).__name__}: {e})") from None

    def checkpoint_step(self) -> int:
        """The step count the checkpoint was written after."""
        try:
            with open(self.checkpoint, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                return int(z["__step__"])
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise self._bad_checkpoint(f"unreadable or incomplete ({type(e).__name__}: {e})") from None

    def load_checkpoint(self, template):
        """Restore a carry with ``template``'s structure; returns ``(carry, step, key_data)``."""
        leaves, treedef = jax.tree_util.tree_flatten(template)
        try:
            with open(self.checkpoint, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                restored = [z[f"leaf_{i:05d}"] for i in range(len(leaves))]
                step, key = int(z["__step__"]), z["__key__"]
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise self._bad_checkpoint(f"unreadable or incomplete ({type(e).__name__}: {e})") from None
        for i, (a, b) in enumerate(zip(leaves, restored)):
            if np.shape(a) != b.shape:
                raise self._bad_checkpoint(f"leaf {i} has shape {b.shape}, the job expects {np.shape(a)}")
        carry = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(b) for b in restored])
        return carry, step, key


def _snapshot_slots(f: h5py.File, layout: dict):
    """Create ``snapshots/<label>/<name>`` for ``{label: {name: (shape, dtype)}}``: float slots filled with NaN and
    each group marked ``written`` = 0 until :meth:`RunDirectory.append` fills it."""
    group = f.require_group("snapshots")
    for label, arrays in layout.items():
        g = group.create_group(label)
        g.attrs["written"] = np.int8(0)
        for name, (shape, dtype) in arrays.items():
            dtype = np.dtype(dtype)
            fill = {"fillvalue": np.nan} if dtype.kind == "f" else {}
            _create_dataset(g, name, shape=tuple(shape), dtype=dtype, **fill)


_SCALE_ATTRS = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "_Netcdf4Coordinates"}


def _copy_group(src: h5py.Group, dst: h5py.Group):
    """Copy datasets, groups and attributes (not the dimension-scale links, re-made by :func:`_attach_scales`)."""
    for k, v in src.attrs.items():
        if k not in _SCALE_ATTRS:
            dst.attrs[k] = v
    for name, obj in src.items():
        if isinstance(obj, h5py.Group):
            _copy_group(obj, dst.create_group(name))
            continue
        kw = {"maxshape": obj.maxshape, "chunks": obj.chunks} if obj.chunks else {}
        ds = _create_dataset(dst, name, data=obj[()], dtype=obj.dtype, **kw)
        for k, v in obj.attrs.items():
            if k not in _SCALE_ATTRS:
                ds.attrs[k] = v


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


def _damaged(path, name: str, error: Exception) -> RunFileError:
    return RunFileError(f"{path}: dataset {name!r} cannot be read ({error}): the file is damaged; "
                        f"`deepglass run CONFIG --out {Path(path).parent} --force` runs it again")


def _refresh(f: h5py.File, name: str):
    """Re-read a dataset's extent from disk. Needed in SWMR mode: a second open of the same file in one process
    shares HDF5's metadata cache with the first, which may hold an older extent."""
    if f.swmr_mode and name in f and isinstance(f[name], h5py.Dataset):
        f[name].refresh()


def read_results(path: str | Path) -> dict[str, Any]:
    """Every dataset of a results file as ``{name: (dims, array)}`` plus ``"attrs"`` (plain h5py, no deepglass).

    Works on a running run: time series are cut to the records ``time`` holds (a chunk being written is left out).
    """
    out: dict[str, Any] = {}
    with open_results(path) as f:
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        _refresh(f, "time")
        num = f["time"].shape[0] if "time" in f else None
        for name, ds in f.items():
            if isinstance(ds, h5py.Dataset):
                _refresh(f, name)  # after ``time``: a series holds at least the records ``time`` does
                dims = [d.decode() if isinstance(d, bytes) else str(d) for d in ds.attrs.get("dims", [])]
                growing = ds.maxshape and ds.maxshape[-1] is None and num is not None
                try:
                    data = ds[..., :num] if growing else ds[...]
                except OSError as e:  # a failed checksum (fletcher32) or an unreadable chunk
                    raise _damaged(f.filename, name, e) from None
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


class FollowerRunDirectory(RunDirectory):
    """The run directory as seen by processes 1, 2, … of a multi-process run: they compute their share of every
    chunk, but only process 0 holds the lock and writes (results, checkpoints, config). Followers read the
    checkpoint to resume; every write is a no-op here."""

    writes = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def create_results(self, *args, **kwargs):
        return None

    def append(self, *args, **kwargs):
        return None

    def truncate(self, *args, **kwargs):
        return None

    def write_summary(self, *args, **kwargs):
        return None

    def save_checkpoint(self, *args, **kwargs):
        return None
