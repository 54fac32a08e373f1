"""One 2D or 3D Ising / Edwards–Anderson lattice split into slabs along its first axis over devices: the generic
checkerboard Metropolis and heat bath with two halo slices on each side.

The lattice ``(L0, L1[, L2])`` is sharded along axis 0 over one axis of a device mesh (``jax.shard_map``): device
``d`` of ``D`` owns the slices ``r0 = d·m … r1 - 1`` (``m = L0/D``, even, so every slab starts on an even slice and
local checkerboard parity is global parity).

Halo slices. A sweep updates the even sublattice (Σ coordinates even), then the odd one, each site from its local
field ``f_i = Σ_mu J_mu(i) s_{i+e_mu} + J_mu(i-e_mu) s_{i-e_mu} + h`` (``physics.lattice.local_field``). At the start
of a sweep each device receives its neighbours' two boundary slices (``lax.ppermute`` over a ring, which closes the
torus), giving it the slices ``r0 - 2 … r1 + 1``. It updates the even sites of ``r0 - 1 … r1`` — its own slab and
the two halo slices, exactly as their owners do, with the same global random numbers — and then the odd sites of
its own slab, whose neighbours ``r0 - 1`` and ``r1`` are now current. So one exchange per sweep suffices (the same
trade as the packed 2D split, ``physics.kernels.split``). The bonds a device needs, ``J_mu`` on the slices
``r0 - 2 … r1 + 1``, are laid out once when the kernel is built.

Bitwise equality with one device. Every per-site number is the one-device generic kernel's
(:func:`~physics.kernels.lattice.generic_metropolis`, :func:`~physics.kernels.lattice.lattice_heat_bath`): the
uniform ``hashing.uniform01(key, i)`` with ``i`` the site's *global* C-order flat index, the local field summed in
``local_field``'s order (``((0 + J_0 s_+) + (J_0 s)_-) + … + h``), and the same acceptance expressions
(Metropolis ``u < exp(-β · 2 s f)``, heat bath ``s = +1`` iff ``u < sigmoid(2 β f)``). A split run therefore gives
the one-device run's configurations and acceptances bit for bit, on any number of devices.

Energy and magnetization are computed when read (the sweep does no reduction but the acceptance count): each
device sums the bonds ``J_mu(i) s_i s_{i+e_mu}`` of its slab (the slice ``r1`` arrives by one ``ppermute``) and its
spins, and ``lax.psum`` adds the slabs. The one-device kernel sums the same bond terms in another order (over the
whole lattice, or as a running sum of each half-sweep's ``ΔE``). The two agree bit for bit whenever every partial
sum is exact (Ising and ±J couplings with ``J``, ``h`` integers or halves and fewer than 2^22 sites); for Gaussian
couplings they differ by float32 rounding, each within ``(n - 1)·2^-24·Σ|term|`` of the exact sum.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .. import hashing
from ..lattice import EdwardsAnderson, Ising
from .base import Kernel, check_temperature
from .lattice import LatticeInfo, _require_even
from .split import _ring_exchange, mesh_axis, row_split_counts

__all__ = ["SplitLatticeState", "split_checkerboard"]

ALGORITHMS = ("metropolis", "heat_bath")


@dataclasses.dataclass(frozen=True)
class SplitLatticeState:
    """A lattice configuration sharded in slabs along axis 0, with the couplings and field that give its energy.

    ``x`` is the int8 ±1 lattice ``(*batch, L0, …)`` laid out with ``NamedSharding(mesh, P(*batch_nones,
    axis_name, None, …))``. ``couplings`` is ``J`` (shape ``batch``) for ``Ising`` and the bonds ``(*batch, d, L0,
    …)`` sharded the same way along ``L0`` for ``EdwardsAnderson``; ``h`` has the batch shape. ``mesh`` and
    ``axis_name`` are static. ``.energy`` (``E = -Σ_<ij> J_ij s_i s_j - h Σ s``, float32) and ``.magnetization``
    (``Σ s``, int32, extensive) are per-slab sums added across devices with ``psum`` (see the module docstring for
    how the energy's rounding compares with one device's).

    Under ``kernels.batched`` every chain carries its own copy of the couplings (``vmap`` batches every output):
    ``4 d`` bytes per site per chain beside the spins' one.
    """

    x: jax.Array
    couplings: jax.Array
    h: jax.Array
    mesh: Mesh
    axis_name: str

    @property
    def _dims(self) -> int:
        return self.x.ndim - self.h.ndim

    def _slab(self, ndim: int, leading: int = 0) -> P:
        """The spec of an array with ``ndim`` axes: batch axes unsplit, ``leading`` unsplit axes after them (the
        bond direction), then the split axis."""
        batch = self.h.ndim
        return P(*(None,) * (batch + leading), self.axis_name, *(None,) * (ndim - batch - leading - 1))

    def _sums(self) -> tuple[jax.Array, jax.Array]:
        axis, dims = self.axis_name, self._dims
        uniform = self.couplings.ndim < self.x.ndim
        devices = int(self.mesh.shape[axis])
        row = -dims  # the split axis, counted from the end

        def local(x, couplings, h):
            to_previous = [(d, (d - 1) % devices) for d in range(devices)]
            below = jax.lax.ppermute(jax.lax.slice_in_dim(x, 0, 1, axis=row), axis, to_previous)
            s = x.astype(jnp.float32)
            m = x.shape[row]
            below_s = below.astype(jnp.float32)
            terms = jnp.zeros(x.shape, jnp.float32)
            for mu in range(dims):
                if mu == 0:  # the neighbour of the slab's last slice is the next device's first
                    neighbour = jnp.concatenate([jax.lax.slice_in_dim(s, 1, m, axis=row), below_s], axis=row)
                else:
                    neighbour = jnp.roll(s, -1, axis=row + mu)
                c = (couplings.reshape(couplings.shape + (1,) * dims) if uniform
                     else jnp.take(couplings, mu, axis=row - 1))
                terms = terms + c * s * neighbour
            bonds = jnp.sum(terms, axis=tuple(range(row, 0)))
            spins = jnp.sum(x.astype(jnp.int32), axis=tuple(range(row, 0)))
            return jax.lax.psum(bonds, axis), jax.lax.psum(spins, axis)

        x_spec = self._slab(self.x.ndim)
        c_spec = P(*(None,) * self.h.ndim) if uniform else self._slab(self.couplings.ndim, leading=1)
        h_spec = P(*(None,) * self.h.ndim)
        return jax.shard_map(local, mesh=self.mesh, in_specs=(x_spec, c_spec, h_spec), out_specs=(h_spec, h_spec))(
            self.x, self.couplings, self.h)

    @property
    def energy(self) -> jax.Array:
        bonds, spins = self._sums()
        return -bonds - self.h * spins.astype(jnp.float32)

    @property
    def magnetization(self) -> jax.Array:
        return self._sums()[1]


jax.tree_util.register_dataclass(SplitLatticeState, data_fields=["x", "couplings", "h"],
                                 meta_fields=["mesh", "axis_name"])


def _split_axis(model, mesh, axis_name, algorithm) -> tuple[str, int]:
    """Check the arguments; return the mesh axis the slabs are split over and its device count."""
    if not isinstance(model, (Ising, EdwardsAnderson)):
        raise ValueError(f"model={type(model).__name__}: split_checkerboard splits a lattice model; allowed: "
                         "physics.lattice.Ising or physics.lattice.EdwardsAnderson (2D or 3D)")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}: allowed: {ALGORITHMS!r} (Wolff clusters and parallel "
                         "tempering have no split version)")
    _require_even(model.shape, "split_checkerboard")
    axis_name, devices = mesh_axis(mesh, axis_name)
    rows = model.shape[0]
    if rows % (2 * devices):
        raise ValueError(
            f"model.shape[0]={rows}: the first axis must split into slabs of an even number of slices over the "
            f"{devices} devices of mesh axis {axis_name!r}, i.e. be divisible by 2 × {devices} = {2 * devices}; "
            f"allowed device counts for {rows} slices: {row_split_counts(rows)}"
        )
    return axis_name, devices


def _metropolis(x, field, u, beta):
    de = 2.0 * x.astype(jnp.float32) * field
    return jnp.where(u < jnp.exp(-beta * de), -x, x)


def _heat_bath(x, field, u, beta):
    return jnp.where(u < jax.nn.sigmoid(2.0 * beta * field), 1, -1).astype(x.dtype)


def split_checkerboard(model, temperature, mesh: Mesh, axis_name: str | None = None,
                       algorithm: str = "metropolis") -> Kernel:
    """Checkerboard Metropolis or heat bath on one lattice split in slabs along axis 0 over ``mesh[axis_name]``.

    The generic one-device kernels' algorithm, random numbers and float arithmetic
    (:func:`~physics.kernels.lattice.generic_metropolis`: flip with probability ``min(1, e^{-ΔE/T})``,
    ``ΔE = 2 s_i f_i``; :func:`~physics.kernels.lattice.lattice_heat_bath`: ``P(s_i = +1) = 1/(1 + e^{-2 f_i/T})``,
    Glauber 1963; one sweep per step), so a run gives the one-device run's configurations bit for bit: those of
    ``kernels.metropolis`` on 3D Ising and on Edwards–Anderson lattices, of ``kernels.heat_bath`` on all of them,
    and of ``lattice.generic_metropolis`` on 2D Ising (whose ``kernels.metropolis`` is the packed kernel, split by
    ``kernels.split_metropolis``). Each sweep exchanges two boundary slices with each ring neighbour.

    Args:
      model: ``physics.lattice.Ising`` or ``EdwardsAnderson``, 2D or 3D, every side even, ``L0`` divisible by
        ``2 D`` for ``D`` devices on the split axis.
      temperature: ``T > 0``, possibly traced.
      mesh: a ``jax.sharding.Mesh``; the lattice is replicated over its other axes, if any.
      axis_name: the mesh axis the slabs are split over (may be omitted for a 1-D mesh).
      algorithm: ``"metropolis"`` or ``"heat_bath"``.

    Returns:
      ``Kernel(init, step)``: ``init(key, x)`` takes an ``L0 × …`` ±1 lattice and returns a
      :class:`SplitLatticeState`; ``step(key, state)`` does one sweep and returns a ``LatticeInfo`` (the flip
      count summed with ``psum``).

    Example:
      >>> mesh = jax.make_mesh((4,), ("rows",))
      >>> model = EdwardsAnderson.random(jax.random.key(0), (64, 64, 64), "pm1", h=0.5)
      >>> kernel = split_checkerboard(model, 1.2, mesh, algorithm="heat_bath")
      >>> state, energies = physics.run(kernel, key, kernel.init(key, x0), 100)
    """
    check_temperature(temperature)
    axis_name, devices = _split_axis(model, mesh, axis_name, algorithm)
    shape = model.shape
    dims, rows = len(shape), shape[0]
    m = rows // devices
    stride = int(np.prod(shape[1:]))
    beta = 1.0 / jnp.asarray(temperature, jnp.float32)
    h = jnp.asarray(model.h, jnp.float32)
    uniform = isinstance(model, Ising)
    couplings = jnp.asarray(model.J if uniform else model.couplings, jnp.float32)
    update = _metropolis if algorithm == "metropolis" else _heat_bath
    # within a slice: C-order flat index and coordinate parity, the same for every slice (NumPy: no backend at import)
    rest_index = np.arange(stride, dtype=np.uint32).reshape(shape[1:])
    rest_parity = (np.indices(shape[1:]).sum(axis=0) % 2).astype(np.uint32)
    slab = P(axis_name, *(None,) * (dims - 1))
    bond_slab = P(None, axis_name, *(None,) * (dims - 1))
    scalar = P()

    def field(c, s):
        """``local_field`` on a block of slices, term for term; the first and last slices wrap within the block
        and are wrong (they are never kept)."""
        f = jnp.zeros(s.shape, jnp.float32)
        for mu in range(dims):
            c_mu = c if uniform else c[mu]
            f = f + c_mu * jnp.roll(s, -1, axis=mu) + jnp.roll(c_mu * s, 1, axis=mu)
        return f

    def sweep(key, x, c, h, beta):
        above, below = _ring_exchange(x[:2], x[-2:], axis_name, devices)
        block = jnp.concatenate([above, x, below])  # global slices r0-2 … r1+1 (mod L0)
        row0 = jax.lax.axis_index(axis_name).astype(jnp.uint32) * jnp.uint32(m)
        global_rows = (row0 + jnp.uint32(rows - 2) + jnp.arange(m + 4, dtype=jnp.uint32)) % jnp.uint32(rows)
        global_rows = global_rows.reshape((m + 4,) + (1,) * (dims - 1))
        u = hashing.uniform01(key, global_rows * jnp.uint32(stride) + jnp.asarray(rest_index))
        parity = (global_rows + jnp.asarray(rest_parity)) % jnp.uint32(2)
        flipped = jnp.zeros((), jnp.int32)
        for colour in range(2):  # even sublattice first, as checkerboard_masks orders them
            f = field(c, block.astype(jnp.float32)) + h
            new = jnp.where(parity == jnp.uint32(colour), update(block, f, u, beta), block)
            flipped = flipped + jnp.sum((new != block)[2:m + 2], dtype=jnp.int32)
            block = new
        return block[2:m + 2], jax.lax.psum(flipped, axis_name)

    c_spec = scalar if uniform else bond_slab
    sharded_sweep = jax.shard_map(sweep, mesh=mesh, in_specs=(scalar, slab, c_spec, scalar, scalar),
                                  out_specs=(slab, scalar))
    explicit = dict(zip(mesh.axis_names, mesh.axis_types))[axis_name] == jax.sharding.AxisType.Explicit

    def laid_out(a, spec):
        """``a`` laid out as ``spec`` (a no-op when it already is), eagerly or inside ``jit``."""
        sharding = NamedSharding(mesh, spec)
        if not isinstance(a, jax.core.Tracer):
            return jax.device_put(a, sharding)
        return jax.sharding.reshard(a, sharding) if explicit else jax.lax.with_sharding_constraint(a, sharding)

    def with_halos(c):
        above, below = _ring_exchange(c[:, :2], c[:, -2:], axis_name, devices)
        return jnp.concatenate([above, c, below], axis=1)

    if uniform:
        bonds, state_couplings = couplings, couplings
    else:
        state_couplings = laid_out(couplings, bond_slab)
        bonds = jax.shard_map(with_halos, mesh=mesh, in_specs=bond_slab, out_specs=bond_slab)(state_couplings)
    finite = jnp.isfinite(h) & jnp.all(jnp.isfinite(couplings))

    def init(key, x):
        """The state of lattice ``x`` (``model.shape``, ±1); an ``x`` already sharded in slabs is never gathered."""
        del key
        x = jnp.asarray(x)
        if x.shape != shape:
            raise ValueError(f"x.shape={x.shape!r}: must be the model's shape {shape!r}")
        return SplitLatticeState(laid_out(x.astype(jnp.int8), slab), state_couplings, h, mesh, axis_name)

    def step(key, state):
        x, count = sharded_sweep(key, state.x, bonds, h, beta)
        info = LatticeInfo(count.astype(jnp.float32) / model.n, finite)
        return SplitLatticeState(x, state.couplings, state.h, mesh, axis_name), info

    return Kernel(init, step)
