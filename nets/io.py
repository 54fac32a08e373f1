"""Networks and training histories to and from HDF5 groups (h5py), readable without this package.

A network is stored as one dataset per parameter array, named by its pytree path (``layers/0/w``, …), with the
structure in the group attribute ``mlp_spec`` (JSON, see ``nets.mlp.spec``). Stacked parameters (snapshots, or
many vmapped networks) keep their leading axes. Nothing is pickled.
"""
from __future__ import annotations

import jax
import numpy as np

from . import mlp

__all__ = ["leaf_name", "save_params", "load_params", "save_history", "load_history"]


def leaf_name(path) -> str:
    """``layers/1/first/w`` for a ``jax.tree_util`` key path (the dataset names of :func:`save_params`)."""
    parts = []
    for p in path:
        for attr in ("name", "idx", "key"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
    return "/".join(parts)


def save_params(group, params: mlp.MLP, *, leading_dims: tuple[str, ...] = ()) -> None:
    """Write ``params`` (possibly with leading stacked axes named ``leading_dims``) into an h5py group."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    template = jax.tree_util.tree_map(lambda a: a[(0,) * len(leading_dims)], params) if leading_dims else params
    group.attrs["mlp_spec"] = mlp.spec(template)
    group.attrs["leading_dims"] = list(leading_dims)
    for path, leaf in flat:
        group.create_dataset(leaf_name(path), data=np.asarray(leaf))


def load_params(group, template: mlp.MLP | None = None) -> mlp.MLP:
    """Read a network written by :func:`save_params` (the structure from ``template`` or the stored spec)."""
    if template is None:
        template = mlp.from_spec(group.attrs["mlp_spec"])
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, leaf in paths:
        name = leaf_name(path)
        if name not in group:
            raise ValueError(f"group={group.name!r}: missing dataset {name!r} for this network structure")
        arr = np.asarray(group[name])
        if arr.shape[arr.ndim - leaf.ndim:] != leaf.shape:
            raise ValueError(f"{group.name}/{name}: shape {arr.shape} does not end with {leaf.shape}")
        leaves.append(arr)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def save_history(group, history) -> None:
    """Write a ``nets.train.History`` into an h5py group (records, divergence outcome, snapshots)."""
    from .train import RECORDS

    for name in RECORDS:
        group.create_dataset(name, data=np.asarray(getattr(history, name)))
    for name in ("diverged_step", "divergence_reason", "temperature"):
        group.create_dataset(name, data=np.asarray(getattr(history, name)))
    group.attrs["snapshot_steps"] = np.asarray(history.snapshot_steps, np.int64)
    if history.snapshots is not None:
        lead = np.ndim(history.diverged_step)
        save_params(group.create_group("snapshots"), history.snapshots,
                    leading_dims=tuple(f"batch{i}" for i in range(lead)) + ("snapshot",))


def load_history(group):
    """Read a history written by :func:`save_history`."""
    from .train import RECORDS, History

    fields = {name: np.asarray(group[name]) for name in (*RECORDS, "diverged_step", "divergence_reason",
                                                          "temperature")}
    snaps = None
    if "snapshots" in group:
        g = group["snapshots"]
        snaps = load_params(g)
    return History(**fields, snapshot_steps=tuple(int(s) for s in group.attrs["snapshot_steps"]), snapshots=snaps)
