"""One hashed p-spin model across devices: its coupling blocks divided among them, partial gradients summed.

A hashed model (``physics.spherical``, ``couplings="hashed"``) regenerates its couplings block by block: the
gradient of the degree-p term is a sum over the nondecreasing p-tuples of index blocks ``(I_1 ≤ … ≤ I_p)``,

    ∇H = Σ_blocks ∇H_block,

each block generated once and applied to every replica. Here the list of blocks is cut into ``groups`` contiguous
groups (padded with empty blocks to a multiple of ``groups``); each device computes, for every replica, the partial
gradient of its groups (one ``lax.scan`` per group from zero, the same program whatever the device count), the
partials are gathered (``lax.all_gather``: ``groups × R × n`` floats, small next to the ``b^p`` couplings a block
generates) and added **in group order** on every device. So the result depends on ``groups`` only, not on how many
devices share them: a run on 1, 2, 4 or 8 devices (any count dividing ``groups``) gives the same bits. It differs
from the single-scan ``PSpin.grad`` by the order of the sum (rounding only). A ``psum`` would leave the order to the
collective's implementation; the ordered sum is what makes the numbers reproducible.

:func:`split_energy_and_grad` is the whole computation for a batch of replicas; :func:`local_energy_and_grad` and
:class:`GroupedPSpin` are its inside, for a caller that runs its own dynamics under ``jax.shard_map`` (the ``pspin``
job with ``split = "couplings"``: every device steps every chain, only the couplings are divided).

Reference: the blocked evaluation is DESIGN §5 ("couplings on the fly"); dividing it over devices is the
"one model too large for one device" of DESIGN §6 and the Scale-out issue.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from .spherical import PSpin

__all__ = ["split_energy_and_grad", "grouped_tuples", "group_tables", "local_energy_and_grad", "GroupedPSpin"]


def grouped_tuples(model: PSpin, p: int, groups: int) -> np.ndarray:
    """The block tuples of degree ``p`` cut into ``groups`` equal contiguous groups: ``(groups, k, p)`` int32,
    padded at the end with rows of -1 (empty blocks)."""
    tuples = model._block_tuples(p)
    k = -(-len(tuples) // groups)
    pad = np.full((groups * k - len(tuples), p), -1, np.int32)
    return np.concatenate([tuples, pad]).reshape(groups, k, p)


def group_tables(model: PSpin, groups: int) -> list[np.ndarray]:
    """:func:`grouped_tuples` for every degree of the model, in ``model.degrees`` order (NumPy, host memory); split
    their leading axis over the devices (``PartitionSpec(axis_name)``) to give each device its groups."""
    return [grouped_tuples(model, p, groups) for p in model.degrees]


def _check(model: PSpin, s, mesh: Mesh, axis_name: str, groups: int):
    if not isinstance(model, PSpin) or model.couplings != "hashed":
        raise ValueError(f"model: must be a hashed PSpin (couplings='hashed'), got "
                         f"{getattr(model, 'couplings', type(model).__name__)!r}")
    if axis_name not in mesh.shape:
        raise ValueError(f"axis_name={axis_name!r}: not an axis of the mesh {dict(mesh.shape)}")
    devices = mesh.shape[axis_name]
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or groups % devices:
        raise ValueError(f"groups={groups!r}: must be a positive multiple of the {devices} devices of axis "
                         f"{axis_name!r} (the result depends on groups, never on the device count)")
    if np.ndim(s) != 2 or np.shape(s)[1] != model.n:
        raise ValueError(f"s: shape {np.shape(s)}; must be (replicas, n={model.n})")


def local_energy_and_grad(model: PSpin, x: jax.Array, local_tables, axis_name: str, groups: int):
    """``(H(x), ∇H(x))`` of one configuration ``x`` (n,), called inside ``jax.shard_map`` over ``axis_name``.

    ``local_tables`` are this device's rows of :func:`group_tables` (``groups / devices`` groups per degree). Each
    group's partial gradient is one scan over its blocks from zero; the partials of all devices are gathered in
    group order and added left to right, ``((g_0 + g_1) + g_2) + …``, so every device returns the same bits
    whatever the device count. The energy is Euler's ``Σ_p x·∇H_p / p``, from the same ordered sums. Batch with
    ``jax.vmap``: each generated block then serves every configuration of the batch.
    """
    grads = []
    for a, (p, w, table) in enumerate(zip(model.degrees, model.weights, local_tables, strict=True)):
        partial = jax.lax.map(lambda tuples, a=a, p=p, w=w: model._hashed_grad(x, a, p, w, tuples), table)
        gathered = jax.lax.all_gather(partial, axis_name, tiled=True)  # (groups, n) in group order
        total = gathered[0]
        for g in range(1, groups):  # the fixed order that makes the sum independent of the device count
            total = total + gathered[g]
        grads.append(total)
    energy = sum(jnp.dot(x, g) / p for p, g in zip(model.degrees, grads, strict=True))
    return energy, sum(grads[1:], grads[0])


@dataclasses.dataclass(frozen=True)
class GroupedPSpin:
    """A hashed :class:`PSpin` seen from inside ``jax.shard_map``: ``n``, ``energy_and_grad``, ``energy`` and
    ``grad`` of one configuration through :func:`local_energy_and_grad`, so the kernels of
    ``physics.kernels.sphere`` (Langevin, descent, Metropolis) run on a model whose couplings are divided among
    the devices. Build it inside the mapped function, from the model and the local tables passed into it."""

    model: PSpin
    local_tables: tuple
    axis_name: str
    groups: int

    @property
    def n(self) -> int:
        return self.model.n

    def energy_and_grad(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return local_energy_and_grad(self.model, x, self.local_tables, self.axis_name, self.groups)

    def energy(self, x: jax.Array) -> jax.Array:
        return self.energy_and_grad(x)[0]

    def grad(self, x: jax.Array) -> jax.Array:
        return self.energy_and_grad(x)[1]

    def random_state(self, key: jax.Array) -> jax.Array:
        return self.model.random_state(key)


def split_energy_and_grad(model: PSpin, s: jax.Array, mesh: Mesh, axis_name: str, groups: int = 8):
    """``(H(s), ∇H(s))`` for replicas ``s`` of shape (R, n), the coupling blocks divided over ``mesh[axis_name]``.

    Every device returns the whole result (replicated). Bitwise the same for every device count dividing
    ``groups``; equal to ``jax.vmap(model.energy_and_grad)(s)`` up to the order of the sum over blocks.
    """
    _check(model, s, mesh, axis_name, groups)
    tables = [jnp.asarray(t) for t in group_tables(model, groups)]

    def local(model, s, *local_tables):
        return jax.vmap(lambda x: local_energy_and_grad(model, x, local_tables, axis_name, groups))(s)

    spec = PartitionSpec(axis_name)
    fn = jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(), PartitionSpec()) + (spec,) * len(tables),
                       out_specs=(PartitionSpec(), PartitionSpec()), check_vma=False)
    return fn(model, s, *tables)
