"""Samplers and dynamics, each a ``Kernel(init, step)`` (see ``physics.kernels.base``).

``metropolis``, ``heat_bath`` and ``wolff`` pick their algorithm from the model's type (checkerboard sweeps for
lattice models, single-spin flips for the REM family, a constrained random walk on the sphere for the spherical
p-spin). ``parallel_tempering`` composes a replica-exchange move with any of them.

Batches and multi-spin coding. ``metropolis(model, T, replicas=R)`` and ``heat_bath(model, T, replicas=R)`` are R
independent chains as one kernel (state ``.x`` ``(R, *shape)`` int8, ``.energy`` ``(R,)``), the batch
:func:`batched` builds. For an ``EdwardsAnderson`` whose couplings carry a leading sample axis,
``(S, d, *shape)``, the batch is R chains of each of the S samples: ``.x`` ``(S, R, *shape)``, ``.energy``
``(S, R)``. A batch of Metropolis or heat-bath chains is run 32 per uint32 word by the multi-spin kernels
(``physics.kernels.multispin``: ``multispin_metropolis``/``multispin_ea_metropolis``, resp.
``multispin_heat_bath``/``multispin_ea_heat_bath``) when the model allows it: ``packing="auto"`` (the default)
selects them for

* a 2D or 3D ``Ising`` model with h = 0 (any J), or an ``EdwardsAnderson`` model (one sample or a batch of
  samples) with ±1 couplings and h = 0, every side even,
* a number of chains (R, or S·R) that is a multiple of 32: C chains are C/32 words, ``jax.vmap``-ed;

and runs the plain kernel otherwise (h ≠ 0, Gaussian couplings, a batch that does not fill words, and whenever h
or the couplings are traced, so that the conditions cannot be checked). ``packing="plain"`` forces the plain kernel
(the very program ``batched(metropolis(model, T), R)``, resp. ``heat_bath``, runs); ``packing="multispin"`` demands the
packed one and raises ``ValueError`` saying why where it cannot be honoured (there, traced h and couplings are taken
to be 0 and ±1: the caller's promise). A packed batch's state is a :class:`MultispinBatchState` (the marker of the
selection) with the plain batch's ``.x`` and ``.energy``; its ``info`` has one entry per word (the acceptance of
the word's 32 chains), not one per chain.

Chain c of the flattened batch (row-major over ``(S, R)``) is bit ``c // W`` of word ``c % W`` (W words): chains
next to each other — the replica pairs 2k, 2k+1 whose overlap the ``ising`` job records — sit in different words
whenever there are two or more, so a pair's overlap never depends on two bits of one word, which share their
random words (the price of multi-spin coding; ``physics.kernels.multispin`` measures no correlation between them).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..lattice import EdwardsAnderson, Ising
from . import discrete as _discrete  # noqa: F401  (registers the REM-family kernels)
from . import lattice as _lattice  # noqa: F401  (registers the lattice kernels)
from . import sphere as _sphere  # noqa: F401  (registers the spherical kernels)
from .base import Kernel, batched, check_temperature, dispatch, register
from .multispin import REPLICAS as _WORD_BITS
from .multispin import (
    RULE_BUILDERS,
    MultispinState,
    multispin_ea_heat_bath,
    multispin_ea_metropolis,
    multispin_heat_bath,
    multispin_metropolis,
)
from .multispin_tempering import MultispinPTInfo, MultispinPTState, multispin_parallel_tempering
from .sphere import *  # noqa: F401,F403
from .sphere import __all__ as _sphere_all
from .split import SplitIsingState, split_metropolis
from .split_generic import SplitLatticeState, split_checkerboard
from .tempering import PTInfo, PTState, parallel_tempering

PACKINGS = ("auto", "plain", "multispin")


def metropolis(model, temperature, *args, replicas: int | None = None, packing: str = "auto", **kwargs) -> Kernel:
    """Metropolis kernel for ``model`` at ``temperature``; with ``replicas``, a batch of independent chains.

    One step is one sweep of n attempted single-spin moves on lattices and REM-family models, and one global
    constrained move (``step_size`` required) on the sphere.

    ``replicas=R``: R chains (R per sample for an ``EdwardsAnderson`` with a leading sample axis), run 32 per word
    by multi-spin coding where the model allows it; ``packing`` is ``"auto"``, ``"plain"`` or ``"multispin"``
    (module docstring). Without ``replicas``: one chain, the plain kernel.

    A concrete temperature must be a finite number > 0 (≥ 0 on the sphere, where T = 0 accepts only downhill
    moves); ``ValueError`` names it otherwise. Traced temperatures (inside ``jit``/``vmap``) are not checked.
    """
    return _select("metropolis", model, temperature, args, kwargs, replicas, packing)


def heat_bath(model, temperature, *args, replicas: int | None = None, packing: str = "auto", **kwargs) -> Kernel:
    """Heat-bath (Glauber) kernel for ``model`` at ``temperature`` (one step = one sweep).

    ``replicas=R`` makes a batch as for :func:`metropolis`, packed 32 chains per word by the multi-spin heat bath
    (``multispin_heat_bath``, ``multispin_ea_heat_bath``) under the same conditions, with the same ``packing``.

    A concrete temperature must be a finite number > 0 (``ValueError`` otherwise); traced ones are not checked.
    """
    return _select("heat_bath", model, temperature, args, kwargs, replicas, packing)


def wolff(model, temperature, *args, **kwargs) -> Kernel:
    """Wolff single-cluster kernel for a ferromagnetic Ising model (one step = one cluster flip)."""
    builder = dispatch("wolff", model)
    check_temperature(temperature, allow_zero=getattr(builder, "zero_temperature", False))
    return builder(model, temperature, *args, **kwargs)


# --- batches: the plain path and the multi-spin path ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MultispinBatchState:
    """A batch of chains run by multi-spin coding: ``words`` is a :class:`MultispinState` with a leading word axis
    (W words of 32 chains), ``chains`` the batch's shape, ``(R,)`` or ``(S, R)``.

    ``.x`` (``(*chains, *shape)`` int8) and ``.energy`` (``(*chains,)`` float32, exact integers times |J|) are those
    of the plain batch; chain c (row-major) is bit ``c // W`` of word ``c % W``. One batch per object: under further
    batch axes read them inside ``jax.vmap``.
    """

    words: MultispinState
    chains: tuple[int, ...]

    @property
    def x(self):
        per_word = jax.vmap(lambda w: w.x)(self.words)  # (W, 32, *shape)
        return words_to_chains(per_word, self.chains)

    @property
    def energy(self):
        return words_to_chains(jax.vmap(lambda w: w.energy)(self.words), self.chains)


jax.tree_util.register_dataclass(MultispinBatchState, data_fields=["words"], meta_fields=["chains"])


def chains_to_words(a, chains: tuple[int, ...]):
    """``(*chains, *rest)`` per-chain values to ``(W, 32, *rest)``: chain c to bit ``c // W`` of word ``c % W``."""
    count = math.prod(chains)
    flat = a.reshape(_WORD_BITS, count // _WORD_BITS, *a.shape[len(chains):])
    return jnp.swapaxes(flat, 0, 1)


def words_to_chains(a, chains: tuple[int, ...]):
    """Inverse of :func:`chains_to_words`."""
    return jnp.swapaxes(a, 0, 1).reshape(*chains, *a.shape[2:])


def _is_tracer(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def _sample_axis(model) -> bool:
    """An ``EdwardsAnderson`` whose couplings carry a leading sample axis: ``(S, d, *shape)``."""
    return isinstance(model, EdwardsAnderson) and len(model.couplings.shape) == len(model.shape) + 2


def _why_not_packed(name: str, model, chains: tuple[int, ...], *, trust_traced: bool) -> str | None:
    """Why this batch cannot run on the multi-spin kernels (None: it can). Traced h or couplings cannot be checked:
    refused unless ``trust_traced`` (``packing="multispin"``: the caller promises h = 0 and ±1 bonds)."""
    if name not in RULE_BUILDERS:
        return f"multi-spin coding exists only for {' and '.join(RULE_BUILDERS)}, not {name}"
    if not isinstance(model, (Ising, EdwardsAnderson)):
        return f"model={type(model).__name__}: multi-spin coding needs a lattice Ising or EdwardsAnderson model"
    if len(model.shape) not in (2, 3) or any(s % 2 for s in model.shape):
        return f"shape={model.shape}: multi-spin coding needs a 2D or 3D lattice with even sides"
    if _is_tracer(model.h):
        if not trust_traced:
            return "h is traced: h = 0 cannot be checked"
    elif not np.all(np.asarray(model.h) == 0):
        return f"h={model.h!r}: multi-spin coding needs h = 0"
    if isinstance(model, EdwardsAnderson):
        if _is_tracer(model.couplings):
            if not trust_traced:
                return "the couplings are traced: ±1 bonds cannot be checked"
        elif not np.all(np.abs(np.asarray(model.couplings)) == 1):
            return "couplings: multi-spin coding needs ±1 bonds (these are not, e.g. Gaussian)"
    if math.prod(chains) % _WORD_BITS:
        return (f"{' × '.join(map(str, chains))} = {math.prod(chains)} chains: multi-spin coding needs a multiple of "
                f"{_WORD_BITS}")
    return None


def _select(name, model, temperature, args, kwargs, replicas, packing) -> Kernel:
    if packing not in PACKINGS:
        raise ValueError(f"packing={packing!r}: must be one of {', '.join(map(repr, PACKINGS))}")
    builder = dispatch(name, model)
    check_temperature(temperature, allow_zero=getattr(builder, "zero_temperature", False))
    if replicas is None:
        if packing == "multispin":
            raise ValueError("packing='multispin': packs a batch of chains; give replicas (a multiple of 32 chains)")
        if _sample_axis(model):
            raise ValueError(f"model couplings.shape={model.couplings.shape}: a batch of samples needs replicas")
        return builder(model, temperature, *args, **kwargs)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"replicas={replicas!r}: must be an integer ≥ 1")
    samples = (model.couplings.shape[0],) if _sample_axis(model) else ()
    chains = (*samples, replicas)
    if packing != "plain":
        reason = _why_not_packed(name, model, chains, trust_traced=packing == "multispin")
        if packing == "multispin" and reason is not None:
            raise ValueError(f"packing='multispin': {reason}")
        if reason is None:
            if args or kwargs:
                raise ValueError(f"packing={packing!r}: the multi-spin kernels take no extra arguments "
                                 f"({', '.join(map(repr, (*args, *kwargs)))})")
            return _multispin_batch(name, model, temperature, chains)
    return _plain_batch(builder, model, temperature, args, kwargs, replicas)


def _plain_batch(builder, model, temperature, args, kwargs, replicas) -> Kernel:
    """``batched(builder(model, T), R)``, vmapped over the sample axis of a batch of EdwardsAnderson samples."""
    if not _sample_axis(model):
        return batched(builder(model, temperature, *args, **kwargs), replicas)

    def one(couplings):
        sample = dataclasses.replace(model, couplings=couplings)
        return batched(builder(sample, temperature, *args, **kwargs), replicas)

    samples = model.couplings.shape[0]

    def init(key, xs):
        return jax.vmap(lambda c, k, x: one(c).init(k, x))(model.couplings, jax.random.split(key, samples), xs)

    def step(key, states):
        return jax.vmap(lambda c, k, s: one(c).step(k, s))(model.couplings, jax.random.split(key, samples), states)

    return Kernel(init, step)


def word_bonds(model, chains: tuple[int, ...]):
    """What each word's kernel of a packed batch is built from, stacked over the W words to ``jax.vmap`` over:
    ``(W, 32, d, *shape)`` ±1 bonds for ``EdwardsAnderson`` (a sample's R replicas share its couplings; chains as in
    :func:`chains_to_words`), and for ``Ising`` a ``(W,)`` placeholder (every word has the model's bonds)."""
    words = math.prod(chains) // _WORD_BITS
    if isinstance(model, Ising):
        return jnp.zeros((words,), jnp.float32)
    couplings = jnp.asarray(model.couplings, jnp.float32)
    if not _sample_axis(model):
        couplings = couplings[None]
    per_chain = jnp.repeat(couplings, chains[-1], axis=0).reshape(*chains, *couplings.shape[1:])
    return chains_to_words(per_chain, chains)


def _multispin_batch(name, model, temperature, chains: tuple[int, ...]) -> Kernel:
    """The batch as ``C/32`` multi-spin words, one ``jax.vmap`` over them; each word draws its own split key."""
    words = math.prod(chains) // _WORD_BITS
    per_word = word_bonds(model, chains)
    ising_builder, ea_builder = RULE_BUILDERS[name]
    if isinstance(model, Ising):
        word_kernel = ising_builder(model, temperature)

        def kernel_of(_):
            return word_kernel
    else:
        def kernel_of(bonds):
            return ea_builder(bonds, temperature)

    def init(key, xs):
        xs = jnp.asarray(xs)
        expected = (*chains, *model.shape)
        if xs.shape != expected:
            raise ValueError(f"xs.shape={xs.shape}: expected {expected} (one configuration per chain)")
        keys = jax.random.split(key, words)
        states = jax.vmap(lambda b, k, x: kernel_of(b).init(k, x))(per_word, keys, chains_to_words(xs, chains))
        return MultispinBatchState(states, chains)

    def step(key, state):
        keys = jax.random.split(key, words)
        states, info = jax.vmap(lambda b, k, s: kernel_of(b).step(k, s))(per_word, keys, state.words)
        return MultispinBatchState(states, chains), info

    return Kernel(init, step)


__all__ = [
    "Kernel",
    "batched",
    "register",
    "check_temperature",
    "dispatch",
    "metropolis",
    "heat_bath",
    "wolff",
    "PACKINGS",
    "MultispinBatchState",
    "chains_to_words",
    "word_bonds",
    "words_to_chains",
    "parallel_tempering",
    "PTState",
    "PTInfo",
    "split_metropolis",
    "multispin_metropolis",
    "multispin_ea_metropolis",
    "multispin_heat_bath",
    "multispin_ea_heat_bath",
    "multispin_parallel_tempering",
    "MultispinPTState",
    "MultispinPTInfo",
    "SplitIsingState",
    "split_checkerboard",
    "SplitLatticeState",
    *_sphere_all,
]
