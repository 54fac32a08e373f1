"""Weight matrices from files, tensor by tensor, without unpickling anything.

Formats (chosen by the path):

- ``.npz`` / ``.npy``: ``numpy.load(..., allow_pickle=False)``; a member holding a pickled object array is an error.
- ``.h5`` / ``.hdf5``: every dataset of two or more dimensions, found recursively, named by its HDF5 path.
- ``.safetensors``: ``safetensors.safe_open(path, framework="numpy")``, one tensor at a time (the file is memory
  mapped by the library). NumPy has no bfloat16 / float8, so those tensors are read through a read-only
  ``numpy.memmap`` of their byte range (offsets from the file's JSON header) with the ``ml_dtypes`` types.
- a sharded checkpoint: ``model.safetensors.index.json`` (or a directory holding it) — its ``weight_map`` names
  the shard of every tensor; each shard is opened only when its first tensor is read.
- a run directory of the ``train`` job (or its ``results.h5``): ``snapshots/step_XXXXXXXX/width_<w>`` holds the
  flattened parameters of every network, shape ``(..., P)`` in ``jax.tree_util`` leaf order, and
  ``spec_width_<w>`` the JSON of ``nets.mlp.spec``; :func:`load_run_snapshot` rebuilds them as stacked
  ``nets.mlp.MLP`` pytrees (leading axis = network, the leading grid axes flattened in C order). The last snapshot
  that was written (attribute ``written`` ≠ 0; runs may be live) is read unless ``step`` is given. HDF5 files are
  opened with ``h5py.File(path, "r", swmr=True, locking=False)``, falling back to a plain read.

Every tensor goes through one check: 0-D and 1-D arrays (biases, scales, counters) are skipped silently; 2-D
numeric arrays are returned as float32; anything else raises :class:`WeightsError` naming the file, the tensor and
the problem — a 3-D or higher array (4-D convolution kernels included: their layout is ``(kh, kw, cin, cout)`` in
Flax/Keras but ``(cout, cin, kh, kw)`` in PyTorch, and a guessed layout gives plausible but wrong spectra; slice
them into matrices yourself and pass a mapping), a non-numeric dtype, NaN or ±Inf entries. Truncated or corrupt
files and pickled members raise :class:`WeightsError` too. :func:`load_run_snapshot` (which
``bridges.spectra.analyze_path`` uses for runs) does not check finiteness: a diverged network is a result
(DESIGN §7), labelled by the analysis; :func:`load_weights`, the raw tensor iterator, checks every tensor.
"""
from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import h5py
import jax
import numpy as np

from nets import mlp
from nets.io import leaf_name

__all__ = ["WeightsError", "RunSnapshot", "load_weights", "tensor_shapes", "load_run_snapshot", "source_kind"]

INDEX_NAME = "model.safetensors.index.json"
RESULTS_NAME = "results.h5"
_SUFFIXES = (".npz", ".npy", ".h5", ".hdf5", ".safetensors", ".json")


class WeightsError(ValueError):
    """A weights file that cannot be analysed: missing, truncated, pickled, or holding an unusable tensor."""


class RunSnapshot(NamedTuple):
    """The networks of one snapshot of a ``train`` run: ``networks[label]`` is an ``MLP`` stacked on axis 0."""

    path: Path
    step: int
    networks: dict
    grid_shape: dict


# --- which reader ---------------------------------------------------------------------------------------------
def source_kind(path) -> str:
    """``"npz"``, ``"npy"``, ``"h5"``, ``"run"``, ``"safetensors"`` or ``"sharded"`` for ``path``."""
    path = Path(path)
    if path.is_dir():
        if (path / RESULTS_NAME).is_file():
            return "run"
        if (path / INDEX_NAME).is_file():
            return "sharded"
        if (path / "model.safetensors").is_file():
            return "safetensors"
        raise WeightsError(f"{path}: directory holds none of {RESULTS_NAME}, {INDEX_NAME}, model.safetensors")
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        with _open_h5(path) as f:
            return "run" if "snapshots" in f or "deepglass_version" in f.attrs else "h5"
    if suffix == ".json":
        return "sharded"
    if suffix in (".npz", ".npy", ".safetensors"):
        return suffix[1:]
    raise WeightsError(f"{path}: suffix {path.suffix!r} is not a weights format; use one of {', '.join(_SUFFIXES)}"
                       f" or a run directory")


def _resolve(path, kind):
    path = Path(path)
    if path.is_dir():
        return path / {"run": RESULTS_NAME, "sharded": INDEX_NAME, "safetensors": "model.safetensors"}[kind]
    return path


# --- the one check every tensor goes through ----------------------------------------------------------------
def _matrix(path, name, array):
    """``array`` as a float32 matrix, ``None`` for a 0-D / 1-D array, or :class:`WeightsError`."""
    shape = tuple(array.shape)
    if len(shape) < 2:
        return None
    if len(shape) > 2:
        hint = (" (a convolution kernel? its layout differs between frameworks, so it is not guessed: slice it into"
                " matrices and pass a mapping to bridges.spectra.analyze)" if len(shape) == 4 else "")
        raise WeightsError(f"{path}: tensor {name!r} has shape {shape}: only 2-D weight matrices are analysed{hint}")
    dtype = np.dtype(array.dtype)
    try:
        if dtype.kind not in "fiuV":  # bool, complex, strings, objects, dates
            raise TypeError(dtype)
        out = np.asarray(array, dtype=np.float32)  # bfloat16 / float8 (kind "V", from ml_dtypes) convert too
    except (TypeError, ValueError):
        raise WeightsError(f"{path}: tensor {name!r} has dtype {dtype}: not a real numeric weight matrix") from None
    if not np.isfinite(out).all():
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise WeightsError(f"{path}: tensor {name!r} has {bad} NaN/Inf entries of {out.size}")
    return out


# --- npz / npy ----------------------------------------------------------------------------------------------
def _npz_shapes(path):
    shapes = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(fh)
                shapes[info.filename[:-4]] = shape if dtype.kind != "O" else ()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable .npz archive ({e}); the file is truncated or corrupt") from None
    return shapes


def _iter_npz(path):
    with open(path, "rb") as fh:  # our handle: numpy leaks its own when the archive is corrupt
        try:
            archive = np.load(fh, allow_pickle=False)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise WeightsError(f"{path}: not a readable .npz archive ({e}); the file is truncated or "
                               f"corrupt") from None
        yield from _npz_members(path, archive)


def _npz_members(path, archive):
    with archive:
        for name in archive.files:
            try:
                array = archive[name]
            except ValueError as e:  # numpy refuses object (pickled) members when allow_pickle=False
                raise WeightsError(f"{path}: tensor {name!r} cannot be read without unpickling ({e}); "
                                   f"only plain numeric arrays are accepted") from None
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise WeightsError(f"{path}: tensor {name!r} is truncated or corrupt ({e})") from None
            yield name, array


def _npy_array(path):
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as e:
        raise WeightsError(f"{path}: tensor {path.stem!r} cannot be read without unpickling, or the file is "
                           f"truncated ({e})") from None
    except (EOFError, OSError) as e:
        raise WeightsError(f"{path}: not a readable .npy file ({e})") from None


# --- HDF5 ---------------------------------------------------------------------------------------------------
def _open_h5(path):
    try:
        return h5py.File(path, "r", swmr=True, locking=False)
    except OSError:
        pass  # a file written without SWMR: a plain read
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as e:
        raise WeightsError(f"{path}: not a readable HDF5 file ({e}); the file is truncated or corrupt") from None


def _h5_datasets(f):
    found = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


def _iter_h5(path):
    with _open_h5(path) as f:
        for name in _h5_datasets(f):
            if f[name].ndim < 2:
                continue  # biases, scalars: not read at all
            try:
                yield name, f[name][()]
            except OSError as e:
                raise WeightsError(f"{path}: tensor {name!r} cannot be read ({e}); the file is corrupt") from None


def _snapshot_groups(f) -> dict[int, h5py.Group]:
    """``{step: group}`` of the snapshots that hold networks and were written."""
    out = {}
    snaps = f.get("snapshots")
    if not isinstance(snaps, h5py.Group):
        return out
    for label, group in snaps.items():
        if not (label.startswith("step_") and isinstance(group, h5py.Group)):
            continue
        if not any(k.startswith("spec_width_") for k in group):
            continue
        if int(group.attrs.get("written", 1)) == 0:
            continue  # a slot declared ahead of time that training has not reached
        out[int(label[5:])] = group
    return out


def load_run_snapshot(path, *, step: int | None = None) -> RunSnapshot:
    """The networks of a ``train`` run snapshot (the last written one unless ``step`` is given).

    ``networks["width_<w>"]`` is a ``nets.mlp.MLP`` whose leaves carry a leading axis of ``prod(grid_shape)``
    networks (the grid ``(learning_rate, weight_decay, seed)`` — or any leading axes — flattened in C order).
    """
    path = Path(path)
    file = path / RESULTS_NAME if path.is_dir() else path
    if not file.is_file():
        raise WeightsError(f"{file}: no such results file")
    networks, grid = {}, {}
    with _open_h5(file) as f:
        groups = _snapshot_groups(f)
        if not groups:
            raise WeightsError(f"{file}: no written snapshot with networks (snapshots/step_*/spec_width_*); "
                               f"set snapshot_steps in the train config")
        if step is None:
            step = max(groups)
        if step not in groups:
            raise WeightsError(f"{file}: step={step!r} has no written snapshot; available: {sorted(groups)}")
        group = groups[step]
        widths = [k for k in group if k.startswith("width_")]
        for key in sorted(widths, key=lambda k: (not k[6:].isdigit(), int(k[6:]) if k[6:].isdigit() else 0, k)):
            name = f"snapshots/step_{step:08d}/{key}"
            try:
                text = group[f"spec_{key}"][()]
                flat = np.asarray(group[key][()], dtype=np.float32)
            except (KeyError, OSError) as e:
                raise WeightsError(f"{file}: tensor {name!r} or its spec cannot be read ({e})") from None
            text = text.decode() if isinstance(text, bytes) else str(text)
            try:
                template = mlp.from_spec(text)
            except (ValueError, KeyError, TypeError) as e:
                raise WeightsError(f"{file}: spec_{key} is not a network spec ({e})") from None
            size = mlp.param_count(template)
            if flat.ndim < 1 or flat.shape[-1] != size:
                raise WeightsError(f"{file}: tensor {name!r} has shape {flat.shape}: the last axis must be the "
                                   f"{size} parameters of {text}")
            rows = flat.reshape(-1, size)
            networks[key] = jax.vmap(lambda row, t=template: mlp.unflatten(t, row))(rows)
            grid[key] = tuple(flat.shape[:-1])
    return RunSnapshot(path=file, step=int(step), networks=networks, grid_shape=grid)


def _iter_run(path, step=None):
    snap = load_run_snapshot(path, step=step)
    for label, stack in snap.networks.items():
        flat = jax.tree_util.tree_flatten_with_path(stack)[0]
        count = int(np.prod(snap.grid_shape[label], dtype=np.int64))
        for i in range(count):
            for key_path, leaf in flat:
                yield f"{label}/network_{i}/{leaf_name(key_path)}", np.asarray(leaf[i])


# --- safetensors --------------------------------------------------------------------------------------------
def _safe_open(path):
    try:
        from safetensors import safe_open
    except ImportError:
        raise WeightsError(f"{path}: reading .safetensors needs the `safetensors` package "
                           f"(pip install safetensors)") from None
    try:
        return safe_open(str(path), framework="numpy")
    except Exception as e:  # noqa: BLE001 — the Rust reader raises its own SafetensorError for a bad header
        raise WeightsError(f"{path}: not a readable .safetensors file ({e}); the file is truncated or "
                           f"corrupt") from None


def _raw_safetensor(path, name):
    """A tensor whose dtype NumPy lacks (bfloat16, float8), as a read-only memmap of its bytes."""
    import ml_dtypes

    dtypes = {"BF16": ml_dtypes.bfloat16, "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2}
    with open(path, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
    info = header[name]
    if info["dtype"] not in dtypes:
        raise WeightsError(f"{path}: tensor {name!r} has dtype {info['dtype']}, which cannot be read as numbers")
    start, _ = info["data_offsets"]
    shape = tuple(info["shape"])
    if not shape or 0 in shape:
        return np.zeros(shape, np.float32)
    return np.memmap(path, dtype=dtypes[info["dtype"]], mode="r", offset=8 + size + start, shape=shape)


def _safetensor(path, handle, name):
    try:
        return handle.get_tensor(name)
    except TypeError:  # NumPy does not know the dtype (bfloat16, float8)
        return _raw_safetensor(path, name)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{path}: tensor {name!r} cannot be read ({e}); the file is truncated or corrupt") from None


def _safetensors_shapes(path):
    with _safe_open(path) as handle:
        return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}


def _iter_safetensors(path):
    with _safe_open(path) as handle:
        for name in handle.keys():
            if len(handle.get_slice(name).get_shape()) >= 2:  # biases are not read at all
                yield name, _safetensor(path, handle, name)


def _weight_map(index):
    try:
        data = json.loads(index.read_text())
        weight_map = data["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{index}: not a safetensors index with a weight_map ({e})") from None
    shards: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        shards.setdefault(str(shard), []).append(str(name))
    return shards


def _shard(index, shard, name):
    file = index.parent / shard
    if not file.is_file():
        raise WeightsError(f"{index}: tensor {name!r} lives in shard {shard!r}, which is missing ({file})")
    return file


def _sharded_shapes(index):
    shapes = {}
    for shard, names in _weight_map(index).items():
        file = _shard(index, shard, names[0])
        held = _safetensors_shapes(file)
        for name in names:
            if name not in held:
                raise WeightsError(f"{file}: tensor {name!r} named in {index.name} is not in this shard")
            shapes[name] = held[name]
    return shapes


def _iter_sharded(index):
    for shard, names in _weight_map(index).items():
        file = _shard(index, shard, names[0])
        with _safe_open(file) as handle:
            held = set(handle.keys())
            for name in names:
                if name not in held:
                    raise WeightsError(f"{file}: tensor {name!r} named in {index.name} is not in this shard")
                if len(handle.get_slice(name).get_shape()) >= 2:
                    yield name, _safetensor(file, handle, name)


# --- public entry points ------------------------------------------------------------------------------------
def tensor_shapes(path, *, step: int | None = None) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every tensor ``load_weights(path)`` visits, read from headers only (no tensor data)."""
    kind = source_kind(path)
    file = _resolve(path, kind)
    if kind == "npz":
        return _npz_shapes(file)
    if kind == "npy":
        return {file.stem: tuple(_npy_array(file).shape)}
    if kind == "h5":
        with _open_h5(file) as f:
            return {name: tuple(f[name].shape) for name in _h5_datasets(f)}
    if kind == "safetensors":
        return _safetensors_shapes(file)
    if kind == "sharded":
        return _sharded_shapes(file)
    snap = load_run_snapshot(file, step=step)
    out = {}
    for label, stack in snap.networks.items():
        count = int(np.prod(snap.grid_shape[label], dtype=np.int64))
        for i in range(count):
            for key_path, leaf in jax.tree_util.tree_flatten_with_path(stack)[0]:
                out[f"{label}/network_{i}/{leaf_name(key_path)}"] = tuple(leaf.shape[1:])
    return out


def load_weights(path, *, step: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Every 2-D weight matrix in ``path`` as ``(name, float32 array)``, read lazily one tensor at a time.

    0-D and 1-D tensors are skipped; any other problem raises :class:`WeightsError` naming the file and the tensor
    (see the module docstring for the formats and the rules). ``step`` selects the snapshot of a run directory.

    Example:
      >>> for name, w in load_weights("model.safetensors"):
      ...     print(name, w.shape)
    """
    kind = source_kind(path)
    file = _resolve(path, kind)
    if kind == "npy":
        entries = iter([(file.stem, _npy_array(file))])
    else:
        entries = {"npz": _iter_npz, "h5": _iter_h5, "safetensors": _iter_safetensors, "sharded": _iter_sharded,
                   "run": lambda p: _iter_run(p, step)}[kind](file)
    for name, array in entries:
        matrix = _matrix(file, name, array)
        if matrix is not None:
            yield name, matrix
