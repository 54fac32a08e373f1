"""One 2D Ising lattice split into row slabs over devices: the packed checkerboard Metropolis with halo rows.

The lattice ``(L0, L1)`` is stored, like :class:`~physics.kernels.lattice.PackedIsingState`, as its two
checkerboard sublattices ``(L0, L1/2)`` int8, split along rows over one axis of a device mesh (``jax.shard_map``):
device ``d`` of ``D`` owns the global rows ``r0 = d·m … r1 - 1 = (d+1)·m - 1`` (``m = L0/D``, even).

Halo rows. A black site needs the white rows just above and below it, and a white site the black ones. Each device
keeps, besides its black rows, a copy of the black rows ``r0 - 1`` and ``r1`` (its neighbours' boundary rows), and
updates those copies itself in the black half-sweep, exactly as their owners do (same neighbours, same global
counters, same hash): the copies stay equal to the originals without being sent. So one exchange per sweep
suffices: before the black half-sweep each device sends its first two white rows to the previous device and its
last two to the next one (``lax.ppermute`` over a ring, which closes the torus), giving it the white rows
``r0 - 2 … r1 + 1`` that the black rows ``r0 - 1 … r1`` need. (Exchanging one row of the other sublattice before
each half-sweep also works, but takes two exchanges per sweep; on CPU devices each costs a rendezvous of all of
them, which is most of a sweep's time on small slabs. Receiving the updated black rows instead of recomputing them
would need the black half-sweep's result before the white one, the same second exchange.)

The update is the single-device packed kernel's (:func:`~physics.kernels.lattice.ising2d_metropolis`) term for
term: its neighbour sum (``_neighbour_sum``, on the slab extended by the halo rows), the same 24-bit integer
acceptance thresholds computed once by the same expression, and the same random word for every site — the counter
hash of the step key and the site's *global* packed index (``row·L1/2 + column``, offset by ``L0·L1/2`` for the
white sublattice). Per site everything is integer arithmetic, so a split run equals the one-device run bit for bit
on any number of devices.

Energy and magnetization are read from the state like the packed kernel's (exact integer sums, never accumulated
in the sweep): each device sums its slab (the bonds as ``Σ_white w·(Σ of its 4 black neighbours)``, which the
black halo rows complete without an exchange) and ``lax.psum`` adds the slabs.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..lattice import Ising
from .base import Kernel, check_temperature
from .lattice import (
    LatticeInfo,
    _even_rows,
    _neighbour_sum,
    _packed_flip,
    _packed_thresholds,
    _require_even,
    _zero_field,
    pack_checkerboard,
    unpack_checkerboard,
)

__all__ = ["SplitIsingState", "split_metropolis"]


def _ring_exchange(first: jax.Array, last: jax.Array, axis_name: str, devices: int) -> tuple[jax.Array, jax.Array]:
    """Send ``first`` (a slab's first rows) to the previous device and ``last`` to the next one.

    Returns what arrives: the rows just above this slab (the previous device's ``last``) and just below it (the
    next device's ``first``). The devices form a ring, which closes the torus.
    """
    to_next = [(d, (d + 1) % devices) for d in range(devices)]
    to_previous = [(d, (d - 1) % devices) for d in range(devices)]
    return jax.lax.ppermute(last, axis_name, to_next), jax.lax.ppermute(first, axis_name, to_previous)


def _odd_rows(rows: int) -> jax.Array:
    """Row parity mask of a block that starts on an odd global row (a slab extended by the row above it)."""
    return ~_even_rows(rows)


@dataclasses.dataclass(frozen=True)
class SplitIsingState:
    """A 2D configuration as its two packed sublattices sharded in row slabs, with halo copies of black rows.

    Packing follows :class:`~physics.kernels.lattice.PackedIsingState` (``black[i, k] = x[i, 2k + i%2]``).
    ``white`` is ``(L0, L1/2)``; ``black_halo`` is ``(D·(m + 2), L1/2)``: device ``d``'s block holds the black rows
    ``d·m - 1 … (d+1)·m`` (mod ``L0``), its own ``m`` rows between copies of its neighbours' boundary rows. Both are
    laid out with ``NamedSharding(mesh, P(axis_name, None))``; ``mesh`` and ``axis_name`` are static.
    ``.black`` and ``.x`` rebuild the packed and the plain lattice (row-sharded); ``.energy``
    (``E = -J Σ_<ij> s_i s_j - h Σ s``) and ``.magnetization`` (``Σ s``, extensive) are exact integer sums per slab
    added across devices with ``psum``.
    """

    black_halo: jax.Array
    white: jax.Array
    J: jax.Array
    h: jax.Array
    mesh: Mesh
    axis_name: str

    @property
    def _slab(self) -> P:
        """Rows split over the axis; leading batch axes (``kernels.batched``) unsplit."""
        return P(*(None,) * (self.white.ndim - 2), self.axis_name, None)

    def _per_slab(self, fn, out_specs):
        """``fn(black_halo, white)`` on each device's slabs."""
        return jax.shard_map(fn, mesh=self.mesh, in_specs=(self._slab, self._slab), out_specs=out_specs)(
            self.black_halo, self.white)

    @property
    def black(self) -> jax.Array:
        return self._per_slab(lambda black_halo, white: black_halo[..., 1:-1, :], self._slab)

    @property
    def x(self) -> jax.Array:
        return unpack_checkerboard(self.black, self.white)

    def _sums(self) -> tuple[jax.Array, jax.Array]:
        axis = self.axis_name

        def local(black_halo, white):
            neighbours = _neighbour_sum(black_halo, _odd_rows(black_halo.shape[-2]), -1)[..., 1:-1, :]
            bonds = jnp.sum((white * neighbours).astype(jnp.int32), axis=(-2, -1))
            spins = jnp.sum(black_halo[..., 1:-1, :].astype(jnp.int32) + white.astype(jnp.int32), axis=(-2, -1))
            return jax.lax.psum(bonds, axis), jax.lax.psum(spins, axis)

        return self._per_slab(local, (P(), P()))

    @property
    def energy(self) -> jax.Array:
        bonds, spins = self._sums()
        return -self.J * bonds.astype(jnp.float32) - self.h * spins.astype(jnp.float32)

    @property
    def magnetization(self) -> jax.Array:
        return self._sums()[1]


jax.tree_util.register_dataclass(SplitIsingState, data_fields=["black_halo", "white", "J", "h"],
                                 meta_fields=["mesh", "axis_name"])


def row_split_counts(rows: int) -> list[int]:
    """The device counts that split ``rows`` into slabs of an even number of rows."""
    return [d for d in range(1, rows // 2 + 1) if rows % (2 * d) == 0]


def mesh_axis(mesh, axis_name: str | None) -> tuple[str, int]:
    """The mesh axis a lattice is split over and its device count; ``ValueError`` for a bad mesh or axis."""
    if not isinstance(mesh, Mesh):
        raise ValueError(f"mesh={mesh!r}: must be a jax.sharding.Mesh (e.g. jax.make_mesh((4,), ('rows',)))")
    if axis_name is None:
        if len(mesh.axis_names) != 1:
            raise ValueError(f"axis_name=None: the mesh has axes {mesh.axis_names!r}; name the one to split over")
        axis_name = mesh.axis_names[0]
    if axis_name not in mesh.axis_names:
        raise ValueError(f"axis_name={axis_name!r}: not an axis of the mesh; allowed: {mesh.axis_names!r}")
    devices = int(mesh.shape[axis_name])
    return axis_name, devices


def _check(model, mesh, axis_name) -> tuple[str, int]:
    if not isinstance(model, Ising) or len(getattr(model, "shape", ())) != 2:
        raise ValueError(
            f"model={type(model).__name__}(shape={getattr(model, 'shape', None)!r}): split_metropolis splits the "
            "packed 2D Ising kernel; allowed: physics.lattice.Ising with a 2D shape (Edwards–Anderson and 3D "
            "lattices run on the unpacked kernel, which has no split version)"
        )
    _require_even(model.shape, "split_metropolis")
    axis_name, devices = mesh_axis(mesh, axis_name)
    rows = model.shape[0]
    if rows % (2 * devices):
        fits = row_split_counts(rows)
        raise ValueError(
            f"model.shape[0]={rows}: rows must split into slabs of an even number of rows over the {devices} "
            f"devices of mesh axis {axis_name!r}, i.e. be divisible by 2 × {devices} = {2 * devices}; "
            f"allowed device counts for {rows} rows: {fits}"
        )
    return axis_name, devices


def split_metropolis(model: Ising, temperature, mesh: Mesh, axis_name: str | None = None) -> Kernel:
    """Packed checkerboard Metropolis on one 2D Ising lattice split in row slabs over ``mesh[axis_name]``.

    The algorithm, random numbers and acceptance of ``kernels.metropolis`` on a 2D ``Ising`` model (the packed
    kernel :func:`~physics.kernels.lattice.ising2d_metropolis`: flip with probability ``min(1, e^{-ΔE/T})``,
    ``ΔE = 2J sσ + 2h s``, one sweep per step), so a run gives the one-device run's configurations bit for bit.
    Each sweep exchanges two white halo rows with each ring neighbour (``lax.ppermute``; see the module docstring).

    Args:
      model: ``physics.lattice.Ising`` with a 2D shape ``(L0, L1)``, both even, ``L0`` divisible by ``2 D`` for
        ``D`` devices on the split axis (every slab has an even number of rows).
      temperature: ``T > 0``, possibly traced.
      mesh: a ``jax.sharding.Mesh``; the lattice is replicated over its other axes, if any.
      axis_name: the mesh axis the rows are split over (may be omitted for a 1-D mesh).

    Returns:
      ``Kernel(init, step)``: ``init(key, x)`` takes a ``(L0, L1)`` ±1 lattice and returns a
      :class:`SplitIsingState`; ``step(key, state)`` does one sweep and returns a ``LatticeInfo`` (the acceptance
      summed with ``psum``).

    Example:
      >>> mesh = jax.make_mesh((4,), ("rows",))
      >>> kernel = split_metropolis(Ising((256, 256)), 2.269, mesh)
      >>> state, energies = physics.run(kernel, key, kernel.init(key, x0), 100)
    """
    check_temperature(temperature)
    axis_name, devices = _check(model, mesh, axis_name)
    rows, cols = model.shape
    half = rows * cols // 2
    m = rows // devices
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    J = jnp.asarray(model.J, jnp.float32)
    h = jnp.asarray(model.h, jnp.float32)
    slab = P(axis_name, None)

    zero_field = _zero_field(model.h)

    def flip(key, spins, neighbours, row, offset, t_up, t_down):
        return _packed_flip(key, spins, neighbours, row, offset, t_up, t_down, zero_field)

    def sweep(key, black_halo, white, t_up, t_down):
        above, below = _ring_exchange(white[:2], white[-2:], axis_name, devices)
        white_ext = jnp.concatenate([above, white, below])  # rows r0-2 … r1+1; r0-2 is even
        row0 = jax.lax.axis_index(axis_name).astype(jnp.uint32) * jnp.uint32(m)
        halo_rows = (row0 + jnp.uint32(rows - 1) + jax.lax.broadcasted_iota(jnp.uint32, (m + 2, 1), 0)
                     ) % jnp.uint32(rows)  # r0-1 … r1, mod L0
        black_halo, accept_black = flip(key, black_halo, _neighbour_sum(white_ext, _even_rows(m + 4), 1)[1:-1],
                                        halo_rows, 0, t_up, t_down)
        white, accept_white = flip(key, white, _neighbour_sum(black_halo, _odd_rows(m + 2), -1)[1:-1],
                                   halo_rows[1:-1], half, t_up, t_down)
        count = jnp.sum(accept_black[1:-1], dtype=jnp.int32) + jnp.sum(accept_white, dtype=jnp.int32)
        return black_halo, white, jax.lax.psum(count, axis_name)

    sharded_sweep = jax.shard_map(sweep, mesh=mesh, in_specs=(P(), slab, slab, P(), P()),
                                  out_specs=(slab, slab, P()))
    sharding = NamedSharding(mesh, slab)
    explicit = dict(zip(mesh.axis_names, mesh.axis_types))[axis_name] == jax.sharding.AxisType.Explicit

    def to_slabs(x):
        """``x`` laid out in row slabs (a no-op when it already is), eagerly or inside ``jit``."""
        if not isinstance(x, jax.core.Tracer):
            return jax.device_put(x, sharding)
        return jax.sharding.reshard(x, sharding) if explicit else jax.lax.with_sharding_constraint(x, sharding)

    def slab_layout(rows_here):
        black, white = pack_checkerboard(rows_here)  # slabs start on even rows: local parity is global parity
        above, below = _ring_exchange(black[:1], black[-1:], axis_name, devices)
        return jnp.concatenate([above, black, below]), white

    layout = jax.shard_map(slab_layout, mesh=mesh, in_specs=slab, out_specs=(slab, slab))

    def init(key, x):
        """The state of lattice ``x``, ``(L0, L1)`` ±1; an ``x`` already sharded in row slabs is never gathered."""
        del key
        x = jnp.asarray(x)
        if x.shape != model.shape:
            raise ValueError(f"x.shape={x.shape!r}: must be the model's shape {model.shape!r}")
        black_halo, white = layout(to_slabs(x.astype(jnp.int8)))
        return SplitIsingState(black_halo, white, J, h, mesh, axis_name)

    def step(key, state):
        t_up, t_down = _packed_thresholds(J, h, beta, 1.0), _packed_thresholds(J, h, beta, -1.0)
        black_halo, white, count = sharded_sweep(key, state.black_halo, state.white, t_up, t_down)
        finite = jnp.isfinite(state.J) & jnp.isfinite(state.h)  # the energy is an exact integer sum times J, h
        return (SplitIsingState(black_halo, white, state.J, state.h, mesh, axis_name),
                LatticeInfo(count.astype(jnp.float32) / model.n, finite))

    return Kernel(init, step)
