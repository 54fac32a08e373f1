"""Lay a job's batch of independent chains on a device mesh, and bring results back to the host.

Every job kind that sweeps holds its state (the *carry*) as arrays whose leading axes index independent chains —
disorder samples × temperatures × replicas for the physics jobs, seeds × hyperparameters for ``train``. A job
declares how many leading axes those are (``Job.batch_ndim``). Those axes are split over the devices with a
``jax.sharding.NamedSharding``; ``jit`` (GSPMD) then runs each device's share of the chains. Nothing crosses
devices inside a step, so a sharded run computes, chain by chain, the same operations as a one-device run.

How the devices are divided among the batch axes: for batch shape ``(b₀, b₁, …)`` and ``D`` devices, axis *i* takes
``dᵢ = gcd(bᵢ, D / (d₀ d₁ … dᵢ₋₁))`` devices, in order; the mesh has shape ``(d₀, d₁, …)``. When the product of the
``dᵢ`` falls short of ``D`` the batch cannot be split evenly and the run is refused with the figures and the device
counts that would work (never padded: padding would add chains the physics did not ask for).

The random stream depends only on the run key and global chain indices (``fold_in(key, index)`` on global
indices, and JAX's partitionable threefry), so the numbers do not depend on the mesh: a run checkpointed on 4
devices resumes on 1 or 8 and continues bitwise. A results file records the mesh it ran on (root attribute
``mesh``, JSON). Reference: the JAX sharding guide (``jax.sharding``; "Distributed arrays and automatic
parallelization"); NetKet shards Monte Carlo chains the same way.
"""
from __future__ import annotations

import json
import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .config import ConfigError

__all__ = ["select_devices", "partition", "Placement", "place", "to_host", "mesh_record"]


def select_devices(devices: str | int = "all") -> list:
    """The devices a run uses: ``"all"`` (every device of every process) or the first ``N`` of them.

    Raises ``ConfigError`` naming ``run.devices`` when ``N`` is not a count of available devices.
    """
    available = jax.devices()
    if devices == "all":
        return list(available)
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"run.devices = {devices!r}: must be \"all\" or a device count ≥ 1")
    if devices > len(available):
        raise ConfigError(f"run.devices = {devices}: only {len(available)} device(s) are available "
                          f"({available[0].platform}); use \"all\" or a count ≤ {len(available)}")
    if jax.process_count() > 1 and devices % jax.process_count():
        raise ConfigError(f"run.devices = {devices}: with {jax.process_count()} processes the count must be a "
                          f"multiple of {jax.process_count()} (every process contributes its devices)")
    return list(available[:devices])


def partition(batch_shape: tuple[int, ...], num_devices: int) -> tuple[int, ...]:
    """Devices per batch axis (``dᵢ = gcd(bᵢ, remaining)``, in order); their product is ``num_devices``.

    Raises ``ConfigError`` when the batch cannot be split evenly over ``num_devices``, naming the batch, the device
    count and the counts that divide it.
    """
    split, remaining = _divide(batch_shape, num_devices)
    if remaining != 1:
        total = int(np.prod(batch_shape, dtype=np.int64)) if batch_shape else 1
        fits = [d for d in range(1, min(total, 4096) + 1) if _divide(batch_shape, d)[1] == 1]
        shown = ", ".join(map(str, fits[-8:]))
        raise ConfigError(
            f"run.devices: the batch {' × '.join(map(str, batch_shape)) or '(none)'} cannot be split evenly over "
            f"{num_devices} devices (each device must hold the same number of whole chains; padding would add "
            f"chains the config did not ask for). Set run.devices to a count that divides it ({shown}), or change "
            f"the batch sizes"
        )
    return split


def _divide(batch_shape, num_devices) -> tuple[tuple[int, ...], int]:
    """Devices per batch axis, in order, and the devices left over (1 when the batch splits evenly)."""
    remaining, split = num_devices, []
    for size in batch_shape:
        d = math.gcd(int(size), remaining)
        split.append(d)
        remaining //= d
    return tuple(split), remaining


class Placement:
    """A mesh over the run's devices and the batch axes laid on it (``batch_ndim`` leading axes of the carry)."""

    def __init__(self, devices: list, batch_shape: tuple[int, ...], *, job_places: bool = False,
                 job_axis: str = "devices"):
        self.devices = devices
        # the job spreads its work over all the devices itself (a lattice split in rows, compare's units of work)
        self.job_places = job_places
        self.batch_shape = tuple(int(b) for b in batch_shape)
        if job_places:
            self.axis_names = (job_axis,)
            self.mesh = Mesh(np.asarray(devices, dtype=object), self.axis_names)
            return
        split = partition(self.batch_shape, len(devices)) if self.batch_shape else ()
        self.axis_names = tuple(f"batch{i}" for i in range(len(split))) or ("batch0",)
        shape = split or (len(devices),)
        if not split and len(devices) > 1:
            devices = devices[:1]  # nothing to split: one device computes, the others idle (said by mesh_record)
            shape = (1,)
        self.mesh = Mesh(np.asarray(devices, dtype=object).reshape(shape), self.axis_names)

    @property
    def batch_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(*self.axis_names))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    def sharding_for(self, shape: tuple[int, ...]) -> NamedSharding:
        """The batch sharding for an array whose leading axes are the batch; replicated for any other array."""
        n = len(self.batch_shape)
        if n and tuple(shape[:n]) == self.batch_shape:
            return self.batch_sharding
        return self.replicated

    @property
    def num_devices(self) -> int:
        return int(self.mesh.devices.size)


def place(tree: Any, placement: Placement) -> Any:
    """Put every array of ``tree`` on the mesh: batch-leading arrays split, the rest replicated.

    Values are unchanged (``jax.device_put`` only moves them); in a multi-process run each process supplies the
    same global values (the init and the checkpoint are the same on every process) and keeps its shards.
    """
    if placement.job_places:
        return tree  # already laid out by the job's kernel (and re-laid by it when restored from a checkpoint)

    def one(x):
        if not hasattr(x, "shape"):
            return x
        sharding = placement.sharding_for(tuple(x.shape))
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)


def to_host(x) -> np.ndarray:
    """A global array as one NumPy array on this host (gathered from every process when it spans several)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def mesh_record(placement: Placement, requested: int) -> str:
    """The mesh actually used, as JSON for the results' root attribute ``mesh`` and for ``deepglass info``."""
    devices = placement.mesh.devices.ravel()
    return json.dumps({
        "axis_names": list(placement.axis_names),
        "axis_sizes": [int(s) for s in placement.mesh.devices.shape],
        "batch_shape": list(placement.batch_shape),
        "devices_requested": int(requested),
        "devices_used": int(devices.size),
        "platform": devices[0].platform,
        "device_kind": getattr(devices[0], "device_kind", ""),
        "process_count": int(jax.process_count()),
        "process_index": int(jax.process_index()),
        "local_devices": int(jax.local_device_count()),
        "global_devices": int(jax.device_count()),
    })
