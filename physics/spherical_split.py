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

Reference: the blocked evaluation is DESIGN §5 ("couplings on the fly"); dividing it over devices is the
"one model too large for one device" of DESIGN §6 and the Scale-out issue.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from .spherical import PSpin

__all__ = ["split_energy_and_grad", "grouped_tuples"]


def grouped_tuples(model: PSpin, p: int, groups: int) -> np.ndarray:
    """The block tuples of degree ``p`` cut into ``groups`` equal contiguous groups: ``(groups, k, p)`` int32,
    padded at the end with rows of -1 (empty blocks)."""
    tuples = model._block_tuples(p)
    k = -(-len(tuples) // groups)
    pad = np.full((groups * k - len(tuples), p), -1, np.int32)
    return np.concatenate([tuples, pad]).reshape(groups, k, p)


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


def split_energy_and_grad(model: PSpin, s: jax.Array, mesh: Mesh, axis_name: str, groups: int = 8):
    """``(H(s), ∇H(s))`` for replicas ``s`` of shape (R, n), the coupling blocks divided over ``mesh[axis_name]``.

    Every device returns the whole result (replicated). Bitwise the same for every device count dividing
    ``groups``; equal to ``jax.vmap(model.energy_and_grad)(s)`` up to the order of the sum over blocks.
    """
    _check(model, s, mesh, axis_name, groups)
    tables = [jnp.asarray(grouped_tuples(model, p, groups)) for p in model.degrees]

    def local(s, *local_tables):
        grads = []
        for a, (p, w, table) in enumerate(zip(model.degrees, model.weights, local_tables, strict=True)):
            def one_group(tuples, a=a, p=p, w=w):
                return jax.vmap(lambda x: model._hashed_grad(x, a, p, w, tuples))(s)

            partial = jax.lax.map(one_group, table)  # (groups on this device, R, n), one scan per group
            gathered = jax.lax.all_gather(partial, axis_name, tiled=True)  # (groups, R, n) in group order
            total = gathered[0]
            for g in range(1, groups):  # the fixed order that makes the sum independent of the device count
                total = total + gathered[g]
            grads.append(total)
        energy = sum(jnp.sum(s * g, axis=-1) / p for p, g in zip(model.degrees, grads, strict=True))
        return energy, sum(grads[1:], grads[0])

    spec = PartitionSpec(axis_name)
    fn = jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(),) + (spec,) * len(tables),
                       out_specs=(PartitionSpec(), PartitionSpec()), check_vma=False)
    return fn(s, *tables)
