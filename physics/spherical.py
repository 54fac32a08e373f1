"""Spherical p-spin glass, with stored (dense) or on-the-fly (hashed) couplings.

Normalization (Crisanti–Sommers, ``../shared/REFERENCES.md``): configurations live on the sphere
``Σ_i s_i² = n`` and, for a mixture ``{p: c_p}`` (a pure model is ``{p: 1}``),

    H(s) = -Σ_p c_p Σ_{i1 ≤ … ≤ ip} K_{i1…ip} s_i1 … s_ip,     K ~ N(0, p! / (Π_a m_a! · 2 n^{p-1})),

with ``m_a`` the multiplicities of the repeated indices of the tuple. For distinct indices this is exactly the CS
coupling ``J ~ N(0, p!/(2 n^{p-1}))``; the repeated-index terms (an O(1/n) part of the energy per spin) make the
covariance exact at every n, by the multinomial theorem:

    E[H(s) H(s')] = n ξ(q),   q = s·s'/n,   ξ(q) = Σ_p c_p² q^p / 2,

so H is the CS Gaussian field itself (ABC/Choromanska use ``√2 H``: see ``physics.theory.pspin_to_abc``).
Equivalently ``H(s) = -Σ_p Σ_{all ordered i} S^{(p)}_{i1…ip} s_i1 … s_ip`` with the symmetric tensor
``S^{(p)} = c_p K_sorted Π m_a! / p!``; then ``∇H = -p S·s^{p-1}`` and ``∇²H = -p(p-1) S·s^{p-2}``.

Couplings are a counter-based hash of (key, sorted index tuple): the normal number of the tuple
``(a_1 ≤ … ≤ a_p)`` is Box–Muller of the two words ``mix32(mix32(c ^ k0) ^ k1)`` and ``mix32(mix32((c + 1) ^ k0)
^ k1)`` (``physics.hashing``), with a per-tuple key ``(k0, k1)`` and an even counter c. Both come from the key
step ``κ((k0, k1), x) = (h(2x), h(2x + 1))``, ``h(y) = mix32(mix32(y ^ k0) ^ k1)``, which is injective in x for
``x < 2^31`` (its first word is a bijection of 2x). With ``σ`` the key words of the degree's disorder key:

- standard counter, wherever it is defined (n ≤ 46,340 and n^{p-2} < 2^31):
  ``(k0, k1) = κ(σ, a_1 n^{p-3} + … + a_{p-2})`` (the lead index; 0 for p = 2) and ``c = 2(a_{p-1} n + a_p)``,
  which fits one uint32 word while ``2(n² - 1) + 1 < 2^32``;
- extended counter, beyond (n ≤ 2^30, any p): the lead is absorbed one index at a time and the tail index
  ``a_{p-1}`` by one more step, ``(k0, k1) = κ(…κ(κ(σ, a_1), a_2)…, a_{p-1})``, and ``c = 2 a_p``. For p = 3 the
  first step is the standard key of the lead ``a_1``, so the extension only moves ``a_{p-1}`` from the counter
  into the key. Past n = 46,340 the standard counter would wrap: two tuples with the same lead whose tails
  ``t = a_{p-1} n + a_p`` differ by 2^31 would get the same counter ``2t mod 2^32``, hence the same coupling.

In the extended scheme, tuples that share ``a_1 … a_{p-2}`` (one parent key) get distinct keys for distinct
``a_{p-1}`` (κ is injective) and distinct counters for distinct ``a_p``: their (key, counter) pairs are all
different; keys of different parents are independent hashes (equal only by a 64-bit collision). The standard scheme
is kept bitwise, so every model with n ≤ 46,340 has the couplings it always had. For p = 3 the extension costs one
more key step (four ``mix32``) per coupling, 12 instead of 8.

``couplings="dense"`` materializes exactly these numbers into ``S`` (n^p floats), so a batch of R replicas is a
GEMM ``(R × n)·(n × n^{p-1})`` when the methods are vmapped; ``couplings="hashed"`` regenerates them on every
evaluation in blocks of ``b^p`` nondecreasing tuples (O(n + b^p) memory), each block serving every vmapped replica
with two GEMMs. For one key both give the same H to rounding.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import hashing

__all__ = ["PSpin", "MAX_N", "random_state", "retract", "project", "tangent_eigenvalues", "hessian_index",
           "estimate_bytes"]

_MAX_N_COUNTER = 46340  # 2(n² - 1) + 1 < 2^32: the standard tail counter fits one uint32 word
_MAX_LEAD = 2**31  # the standard lead index must stay below it (the key step hashes 2·lead + 1 in one word)
# The extended counter: a key step takes 2a + 1 < 2^32 for every index; 2^30 also keeps the int32 block offsets of
# the hashed evaluation (< n + b) from overflowing.
MAX_N = 1 << 30
_COUPLINGS = ("dense", "hashed")
# Couplings per generated block, b^p: on a CPU a block should stay in cache (2^18 floats = 1 MB: measured 2× faster
# than 2^21 at n = 512, R = 64); an accelerator wants large blocks to fill the device (2^24: b = 256 for p = 3).
_BLOCK_ELEMENTS = {"cpu": 1 << 18}
_BLOCK_ELEMENTS_ACCELERATOR = 1 << 24


# --- the sphere ------------------------------------------------------------------------------------------------


def random_state(key: jax.Array, n: int, dtype=jnp.float32) -> jax.Array:
    """A uniform point on the sphere of radius √n: ``√n z/|z|`` with ``z ~ N(0, I_n)``."""
    n = _check_n(n)
    z = jax.random.normal(key, (n,), dtype)
    return z * (jnp.sqrt(jnp.asarray(n, dtype)) / jnp.linalg.norm(z))


def project(s: jax.Array, v: jax.Array) -> jax.Array:
    """Projection of ``v`` onto the tangent space at ``s``: ``v - (s·v / s·s) s``."""
    return v - (jnp.dot(s, v) / jnp.dot(s, s)) * s


def retract(x: jax.Array) -> jax.Array:
    """Back onto the sphere of radius √n: ``√n x/|x|``."""
    n = x.shape[-1]
    return x * (jnp.sqrt(jnp.asarray(n, x.dtype)) / jnp.linalg.norm(x))


# --- validation and memory -------------------------------------------------------------------------------------


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n={n!r}: must be an integer ≥ 2")
    return int(n)


def _mixture(p) -> tuple[tuple[int, ...], tuple[float, ...]]:
    items = dict(p) if isinstance(p, Mapping) else {p: 1.0}
    if not items:
        raise ValueError(f"p={p!r}: an empty mixture; give an int p ≥ 2 or a mapping {{p: c_p}}")
    degrees, weights = [], []
    for deg, c in sorted(items.items()):
        if isinstance(deg, bool) or not isinstance(deg, (int, np.integer)) or not 2 <= deg <= 8:
            raise ValueError(f"p={p!r}: degrees must be integers in 2..8")
        if isinstance(c, bool) or not isinstance(c, (int, float, np.floating, np.integer)) or not (
            math.isfinite(float(c)) and float(c) >= 0
        ):
            raise ValueError(f"p={p!r}: weight c_{deg} = {c!r} must be a finite number ≥ 0")
        if float(c) > 0:
            degrees.append(int(deg))
            weights.append(float(c))
    if not degrees:
        raise ValueError(f"p={p!r}: at least one weight c_p must be > 0")
    return tuple(degrees), tuple(weights)


def _default_block(n: int, p: int) -> int:
    """The hashed tile edge b: the largest power of two with b^p within the backend's block budget, at most n."""
    budget = _BLOCK_ELEMENTS.get(jax.default_backend(), _BLOCK_ELEMENTS_ACCELERATOR)
    b = 1
    while (2 * b) ** p <= budget:
        b *= 2
    return min(b, n)


def estimate_bytes(n: int, p, couplings: str = "dense", replicas: int = 1, block: int | None = None) -> int:
    """Bytes a model and one vmapped evaluation over ``replicas`` configurations need (float32).

    Dense: the tensors ``Σ_p n^p`` plus the per-replica matrices ``S·s^{p-2}`` and one generation slab; hashed:
    a few ``b^p`` blocks of generated couplings plus the per-replica block products, ``b`` the tile edge ``block``
    (``PSpin.random``'s argument) or, when None, the backend's default.
    """
    n = _check_n(n)
    degrees, _ = _mixture(p)
    total = 0
    for deg in degrees:
        if couplings == "dense":
            total += 4 * n**deg + 4 * (replicas + 8) * n ** (deg - 1)
        else:
            b = min(block, n) if block else _default_block(n, deg)
            total += 4 * 8 * b**deg + 4 * replicas * (2 * b ** (deg - 1) + 2 * n)
    return int(total + 4 * replicas * n * 4)


def _memory_budget() -> tuple[int, str]:
    """Usable bytes on the default device: 80% of its memory limit, or half the host RAM on CPU."""
    dev = jax.devices()[0]
    try:
        stats = dev.memory_stats() or {}
    except Exception:  # noqa: BLE001  (backends without memory stats)
        stats = {}
    if "bytes_limit" in stats:
        return int(0.8 * stats["bytes_limit"]), f"{dev.platform} device memory"
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return int(0.5 * ram), "host memory (half of RAM)"


# --- coupling generation ---------------------------------------------------------------------------------------


def _uniform(word: jax.Array) -> jax.Array:
    return (word >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


def _cos_2pi(u: jax.Array) -> jax.Array:
    """``cos(2πu)`` for u ∈ [0, 1) by an odd Taylor polynomial of sin on [-π/2, π/2] (|error| < 1e-7).

    XLA's CPU cosine is a scalar libm call (~20 ns); this is a few vectorized multiply-adds. With
    ``r = |u - ½| - ¼ ∈ [-¼, ¼]``: ``cos(2πu) = -cos(2π|u - ½|) = sin(2πr)``.
    """
    x = jnp.float32(2.0 * math.pi) * (jnp.abs(u - 0.5) - 0.25)
    x2 = x * x
    poly = jnp.float32(-1.0 / 39916800.0)  # -1/11!
    for k in (9, 7, 5, 3):
        poly = poly * x2 + jnp.float32((-1.0) ** ((k - 1) // 2) / math.factorial(k))
    return x + x * x2 * poly


def _standard_counter(n: int, p: int) -> bool:
    """Whether degree p at size n uses the standard counter (module doc): its counter and lead fit uint32."""
    return n <= _MAX_N_COUNTER and n ** (p - 2) < _MAX_LEAD


def _key_step(k0: jax.Array, k1: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``κ((k0, k1), x)``: two hashed words of the counters 2x and 2x + 1 under the key (k0, k1)."""
    u32 = jnp.uint32
    return (hashing.mix32(hashing.mix32((u32(2) * x) ^ k0) ^ k1),
            hashing.mix32(hashing.mix32((u32(2) * x + u32(1)) ^ k0) ^ k1))


def _tuple_words(seed: jax.Array, idx: list[jax.Array], n: int) -> tuple[jax.Array, jax.Array]:
    """The two uint32 words of the sorted index tuples ``idx`` (p broadcastable uint32 arrays): the module doc."""
    u32 = jnp.uint32
    if _standard_counter(n, len(idx)):
        lead = jnp.zeros((), u32)
        for a in idx[:-2]:
            lead = lead * u32(n) + a
        k0, k1 = _key_step(seed[0], seed[1], lead)
        c = u32(2) * (idx[-2] * u32(n) + idx[-1])
    else:
        k0, k1 = seed[0], seed[1]
        for a in idx[:-1]:
            k0, k1 = _key_step(k0, k1, a)
        c = u32(2) * idx[-1]
    return (hashing.mix32(hashing.mix32(c ^ k0) ^ k1), hashing.mix32(hashing.mix32((c + u32(1)) ^ k0) ^ k1))


def _tuple_normal(seed: jax.Array, idx: list[jax.Array], n: int) -> jax.Array:
    """Standard normals for sorted index tuples ``idx`` (p broadcastable uint32 arrays): see the module doc."""
    w1, w2 = _tuple_words(seed, idx, n)
    u1 = 1.0 - _uniform(w1)  # (0, 1]
    u2 = _uniform(w2)
    return jnp.sqrt(-2.0 * jnp.log(u1)) * _cos_2pi(u2)


def _multiplicity_factorials(idx: list[jax.Array]) -> jax.Array:
    """``Π_a m_a!`` for sorted tuples: the product of run counters 1·2·…·m over each run of equal indices."""
    run = jnp.ones((), jnp.float32)
    prod = jnp.ones((), jnp.float32)
    for a, b in zip(idx[:-1], idx[1:]):
        run = jnp.where(a == b, run + 1.0, 1.0)
        prod = prod * run
    return prod


def _sort_network(idx: list[jax.Array]) -> list[jax.Array]:
    idx = list(idx)
    for i in range(len(idx)):
        for j in range(len(idx) - 1 - i):
            lo, hi = jnp.minimum(idx[j], idx[j + 1]), jnp.maximum(idx[j], idx[j + 1])
            idx[j], idx[j + 1] = lo, hi
    return idx


def _coupling_scale(n: int, p: int, weight: float) -> float:
    """``c_p √(p!/(2 n^{p-1}))``: the standard deviation of a distinct-index coupling."""
    return weight * math.sqrt(math.factorial(p) / (2.0 * float(n) ** (p - 1)))


def _dense_tensor(seed: jax.Array, n: int, p: int, weight: float) -> jax.Array:
    """The symmetric tensor ``S = c_p K_sorted Π m! / p!`` of shape (n,)*p, one leading slab at a time."""
    scale = _coupling_scale(n, p, weight) / math.factorial(p)
    rest = [jax.lax.broadcasted_iota(jnp.uint32, (n,) * (p - 1), a) for a in range(p - 1)]

    def slab(i):
        idx = _sort_network([jnp.broadcast_to(i, rest[0].shape)] + rest)
        mult = _multiplicity_factorials(idx)
        # variance p!/(Πm! 2n^{p-1}) for K, times Πm!/p! for S: scale·√(Πm!)·z
        return (scale * jnp.sqrt(mult)) * _tuple_normal(seed, idx, n)

    return jax.lax.map(slab, jnp.arange(n, dtype=jnp.uint32))


def _coupling_block(seed: jax.Array, starts: jax.Array, valid: jax.Array, n: int, p: int, weight: float,
                    b: int) -> jax.Array:
    """The generated couplings of one hashed block, shape (b,)*p: ``c_p K_{i_1…i_p}`` at the global tuple
    ``i_ax = starts[ax] + offset_ax`` where ``i_1 ≤ … ≤ i_p < n`` (and ``valid``), 0 elsewhere."""
    iota = [jax.lax.broadcasted_iota(jnp.uint32, (b,) * p, ax) for ax in range(p)]
    idx = [iota[ax] + starts[ax].astype(jnp.uint32) for ax in range(p)]
    keep = (idx[-1] < jnp.uint32(n)) & valid
    for x, y in zip(idx[:-1], idx[1:]):
        keep = keep & (x <= y)
    scale = _coupling_scale(n, p, weight)
    return jnp.where(keep, scale * jax.lax.rsqrt(_multiplicity_factorials(idx)) * _tuple_normal(seed, idx, n), 0.0)


# --- the model -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PSpin:
    """Spherical p-spin glass (pure or mixed), CS normalization (module docstring).

    Fields: ``tensors`` the dense symmetric coupling tensors, one per degree (empty when hashed); ``seeds`` the
    uint32 key words of each degree's couplings, shape (len(degrees), 2); static ``n``, ``degrees``, ``weights``
    (the c_p), ``couplings`` ("dense" or "hashed") and ``block`` (the hashed tile edge b).

    Methods act on one configuration ``s`` of shape (n,) on the sphere ``Σ s² = n``; batch with ``jax.vmap`` (a
    vmapped dense gradient is one GEMM; a vmapped hashed one generates each block once for all replicas).
    """

    tensors: tuple
    seeds: jax.Array
    n: int
    degrees: tuple
    weights: tuple
    couplings: str
    block: int

    # --- construction ---------------------------------------------------------------------------------------

    @classmethod
    def random(cls, key: jax.Array, n: int, p, *, couplings: str = "dense", block: int | None = None,
               max_bytes: int | None = None) -> PSpin:
        """A disorder sample: couplings drawn from ``key`` (the same numbers for "dense" and "hashed").

        Args:
          key: PRNG key of the disorder (degree p uses ``fold_in(key, p)``).
          n: number of spins, 2 ≤ n ≤ 2^30 (beyond 46,340 the extended coupling counter: module doc).
          p: an int degree in 2..8 or a mapping ``{p: c_p}`` (covariance ``n Σ c_p² q^p / 2``).
          couplings: "dense" (stored, GEMM evaluation) or "hashed" (generated on the fly, O(n) memory).
          block: hashed tile edge b (default: b^p ≈ 2^18 couplings on CPU, 2^24 on an accelerator).
          max_bytes: memory budget for the dense tensors (default: 80% of the device memory, half the host RAM).

        Raises:
          ValueError: a bad argument, or dense couplings that would not fit (use ``couplings="hashed"``).

        Example:
          >>> model = PSpin.random(jax.random.key(0), 64, 3)
          >>> s = model.random_state(jax.random.key(1)); e = model.energy(s) / model.n
        """
        n = _check_n(n)
        degrees, weights = _mixture(p)
        if couplings not in _COUPLINGS:
            raise ValueError(f"couplings={couplings!r}: must be one of {', '.join(map(repr, _COUPLINGS))}")
        if n > MAX_N:
            raise ValueError(f"n={n}, p={p!r}: must be ≤ {MAX_N:,} = 2^30 (the extended coupling counter hashes 2a + 1 "
                             f"in one 32-bit word for every index a)")
        if couplings == "dense":
            need = estimate_bytes(n, p, "dense")
            budget, where = (int(max_bytes), "max_bytes") if max_bytes is not None else _memory_budget()
            if need > budget:
                raise ValueError(
                    f"n={n}, p={p!r}: dense couplings need {need:,} bytes ({need / 2**30:.1f} GiB) but the "
                    f"budget is {budget:,} bytes ({where}); use couplings='hashed' (O(n) memory)"
                )
        if block is None:
            block = max(_default_block(n, d) for d in degrees)
        elif isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= n:
            raise ValueError(f"block={block!r}: must be an integer in 1..n={n}")
        seeds = jnp.stack([jnp.stack(hashing.key_words(jax.random.fold_in(key, d))) for d in degrees])
        if couplings == "dense":
            tensors = tuple(_dense_tensor(seeds[a], n, d, w) for a, (d, w) in enumerate(zip(degrees, weights)))
        else:
            tensors = ()
        return cls(tensors=tensors, seeds=seeds, n=n, degrees=degrees, weights=weights, couplings=couplings,
                   block=int(block))

    def random_state(self, key: jax.Array) -> jax.Array:
        """A uniform point on the sphere of radius √n."""
        return random_state(key, self.n)

    def xi(self, q):
        """The covariance function ``ξ(q) = Σ_p c_p² q^p / 2``: ``E[H(s)H(s')] = n ξ(s·s'/n)``."""
        return sum(0.5 * c * c * q**d for d, c in zip(self.degrees, self.weights))

    # --- energy and derivatives -----------------------------------------------------------------------------

    def _grads(self, s: jax.Array) -> list[jax.Array]:
        """Euclidean gradient of each degree's term (their sum is ∇H)."""
        if self.couplings == "dense":
            out = []
            for d, t in zip(self.degrees, self.tensors):
                a = t
                for _ in range(d - 1):
                    # contract the leading axis (S is symmetric): vmapped over R configurations the first one is
                    # the GEMM (R, n)·(n, n^{p-1}) with a long contiguous output, then cheap fused reductions
                    a = jnp.tensordot(s, a, axes=1)
                out.append(-d * a)
            return out
        return [self._hashed_grad(s, a, d, w) for a, (d, w) in enumerate(zip(self.degrees, self.weights))]

    def energy_and_grad(self, s: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(H(s), ∇H(s))`` in one pass (Euler: ``s·∇H_p = p H_p`` for each homogeneous term)."""
        gs = self._grads(s)
        energy = sum(jnp.dot(s, g) / d for d, g in zip(self.degrees, gs))
        return energy, sum(gs[1:], gs[0])

    def energy(self, s: jax.Array) -> jax.Array:
        """The extensive energy ``H(s)``."""
        return self.energy_and_grad(s)[0]

    def grad(self, s: jax.Array) -> jax.Array:
        """The Euclidean gradient ``∇H(s)`` (in R^n, not projected)."""
        return self.energy_and_grad(s)[1]

    def hessian(self, s: jax.Array) -> jax.Array:
        """The Euclidean Hessian ``∇²H(s)`` (n × n); ``-p(p-1) S·s^{p-2}`` for dense couplings."""
        if self.couplings == "dense":
            out = 0.0
            for d, t in zip(self.degrees, self.tensors):
                a = t
                for _ in range(d - 2):
                    a = jnp.tensordot(s, a, axes=1)
                out = out - d * (d - 1) * a
            return out
        return jax.jacfwd(self.grad)(s)

    def hvp(self, s: jax.Array, v: jax.Array) -> jax.Array:
        """Hessian-vector product ``∇²H(s) v`` (a forward-mode derivative of the gradient; no n×n matrix)."""
        return jax.jvp(self.grad, (s,), (v,))[1]

    def riemannian_grad(self, s: jax.Array) -> jax.Array:
        """Gradient on the sphere: ``P ∇H``, ``P = I - s sᵀ/n``; orthogonal to s."""
        return project(s, self.grad(s))

    def riemannian_hessian(self, s: jax.Array) -> jax.Array:
        """Riemannian Hessian on the tangent space at s, as an n×n matrix: ``P (∇²H - (s·∇H/n) I) P``.

        Its restriction to the tangent space is the Hessian of H on the sphere (the radial term is ``-p e`` for a
        pure p-spin); s itself is an eigenvector of eigenvalue 0, which :func:`tangent_eigenvalues` removes.
        Absil, Mahony, Sepulchre, "Optimization on matrix manifolds" (2008), Eq. 5.15 for the sphere.
        """
        g = self.grad(s)
        radial = jnp.dot(s, g) / self.n
        n = self.n
        proj = jnp.eye(n, dtype=s.dtype) - jnp.outer(s, s) / jnp.dot(s, s)
        return proj @ (self.hessian(s) - radial * jnp.eye(n, dtype=s.dtype)) @ proj

    def riemannian_hvp(self, s: jax.Array, v: jax.Array) -> jax.Array:
        """``P (∇²H - (s·∇H/n) I) P v`` without forming a matrix (for large n: Lanczos, power iteration)."""
        g = self.grad(s)
        pv = project(s, v)
        return project(s, self.hvp(s, pv) - (jnp.dot(s, g) / self.n) * pv)

    # --- hashed evaluation ----------------------------------------------------------------------------------

    def _block_tuples(self, p: int) -> np.ndarray:
        nb = -(-self.n // self.block)
        return np.array(list(itertools.combinations_with_replacement(range(nb), p)), dtype=np.int32)

    def _hashed_grad(self, s: jax.Array, a: int, p: int, weight: float, tuples=None) -> jax.Array:
        """∇ of the degree-p term, regenerating the couplings block by block (two GEMMs per block when vmapped).

        Blocks are nondecreasing p-tuples of index blocks ``I_1 ≤ … ≤ I_p``; inside a block the coupling of the
        global tuple ``(i_1, …, i_p)`` is kept where ``i_1 ≤ … ≤ i_p < n``. The term ``-C s_i1…s_ip`` adds to the
        gradient at each position; ``Y = C·s_{I_p}`` serves positions 1..p-1 and ``W = s_{I_1}·C`` position p.
        ``tuples`` (default: all of them, :meth:`_block_tuples`) restricts the sum to some blocks; rows of -1 are
        padding and add nothing (``physics.spherical_split`` divides the blocks among devices this way).
        """
        n, b = self.n, self.block
        npad = -(-n // b) * b
        seed = self.seeds[a]
        sp = jnp.zeros((npad,), s.dtype).at[:n].set(s)
        letters = "abcdefgh"[:p]

        def body(grad, blocks):
            starts = jnp.maximum(blocks, 0) * b
            c = _coupling_block(seed, starts, blocks[0] >= 0, n, p, weight, b)
            xs = [jax.lax.dynamic_slice(sp, (starts[ax],), (b,)) for ax in range(p)]
            y = jnp.tensordot(c, xs[-1], axes=([p - 1], [0]))
            w = jnp.tensordot(xs[0], c, axes=([0], [0]))
            for pos in range(p):
                if pos < p - 1:
                    src, axes, others = y, letters[: p - 1], [o for o in range(p - 1) if o != pos]
                else:
                    src, axes, others = w, letters[1:], list(range(1, p - 1))
                spec = axes + "".join("," + letters[o] for o in others) + "->" + letters[pos]
                part = jnp.einsum(spec, src, *[xs[o] for o in others]) if others else src
                cur = jax.lax.dynamic_slice(grad, (starts[pos],), (b,))
                grad = jax.lax.dynamic_update_slice(grad, cur - part, (starts[pos],))
            return grad, None

        tuples = jnp.asarray(self._block_tuples(p)) if tuples is None else tuples
        grad, _ = jax.lax.scan(body, jnp.zeros((npad,), s.dtype), tuples)
        return grad[:n]


jax.tree_util.register_dataclass(
    PSpin, data_fields=["tensors", "seeds"], meta_fields=["n", "degrees", "weights", "couplings", "block"]
)


# --- landscape -------------------------------------------------------------------------------------------------


def tangent_eigenvalues(model: PSpin, s: jax.Array) -> jax.Array:
    """The n-1 eigenvalues of the Riemannian Hessian on the tangent space at s (ascending).

    A Householder reflection maps s/|s| to a basis vector; deleting that row and column of the reflected
    ``riemannian_hessian`` leaves the tangent-space matrix exactly (no spurious zero eigenvalue).
    """
    h = model.riemannian_hessian(s)
    n = model.n
    u = s / jnp.linalg.norm(s)
    sign = jnp.where(u[-1] >= 0, 1.0, -1.0).astype(s.dtype)
    v = u.at[-1].add(sign)  # reflection sending u to -sign e_n
    q = jnp.eye(n, dtype=s.dtype) - 2.0 * jnp.outer(v, v) / jnp.dot(v, v)
    m = q @ h @ q
    return jnp.linalg.eigvalsh(m[: n - 1, : n - 1])


def hessian_index(model: PSpin, s: jax.Array, tol: float = 0.0) -> jax.Array:
    """Number of tangent Hessian eigenvalues below ``-tol`` (the index of a critical point)."""
    return jnp.sum(tangent_eigenvalues(model, s) < -tol)
