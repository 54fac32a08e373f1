"""The REM-family models on σ ∈ {−1, +1}^n: REM, GREM, the Ising p-spin (a correlated REM) and a funnel.

Normalization (the p-spin CS convention, ``../shared/REFERENCES.md``): every model has ``E[H(σ)] = 0`` and
``Var H(σ) = n/2``; correlated models have ``Cov(H(σ), H(τ)) = n ξ(q)`` with ``q = σ·τ/n``:

* ``REM``: ``ξ(q) = ½ [q = 1]`` — 2^n independent ``N(0, n/2)`` energies (Derrida 1981, PRB 24:2613).
* ``GREM``: a tree of K levels; level i holds ``n_i`` spins and a share ``a_i`` of the variance; two states whose
  spins agree on the first ``n_1 + … + n_j`` spins (and not on level j+1) have covariance ``(n/2) Σ_{i≤j} a_i``
  (Derrida 1985; Derrida & Gardner 1986).
* ``IsingPSpin``: ``H = −Σ_{i1<…<ip} J σ_i1…σ_ip``, ``J ~ N(0, w_p p!/(2 n^{p−1}))``, so
  ``Cov = (w_p p!/(2 n^{p−1})) e_p(σ∘τ) = n w_p q^p/2 + O(1)`` (``e_p`` the elementary symmetric polynomial);
  a mixture ``{p: w_p}`` has ``ξ(q) = Σ w_p q^p/2``.
* ``Funnel``: any of the above biased toward a native state σ*:
  ``H_F(σ) = (1 − g(Q)) H(σ) − n·depth·g(Q)``, ``Q = σ·σ*/n``, with ``g(1) = 1`` — the mean energy falls and the
  ruggedness shrinks toward the native state (Bryngelson & Wolynes 1987, PNAS 84:7524; Onuchic, Luthey-Schulten &
  Wolynes 1997). ``shape="native"``: ``g = [Q = 1]``, the REM-plus-native-state model (native energy −n·depth
  exactly); ``shape="power"``: ``g = max(Q, 0)^exponent``.

State indexing (``all_energies``, the enumeration): configuration index ``k`` ↔ ``σ_i = +1`` where bit i of k is 1,
else −1 (spin 0 is the least significant bit). REM energies are a counter-based hash of (key, k): no 2^n table,
any n ≤ 64; the index is carried as two uint32 words ``(lo, hi)``. States 2j and 2j+1 share one Box–Muller pair
(``r cos θ``, ``r sin θ``: independent normals from one hash). For n ≤ 33 distinct pairs get distinct hash inputs
through bijections, so energies are exactly independent draws; beyond (never enumerable) the joint 64-bit hash of
two pairs collides with probability ~2^−64.

Exact thermodynamics by streaming enumeration lives in ``physics.rem.enumerate``; dynamics that use these
models (``folding_time``) in ``physics.rem.folding``, so that this module imports no kernel.
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..hashing import mix32

__all__ = [
    "REM",
    "GREM",
    "IsingPSpin",
    "Funnel",
    "index_words",
    "spins_from_index",
    "overlap",
]

_SALT = 0x2E3A  # fold_in salt: model keys are scrambled by threefry before hashing
_C = (0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F, 0x165667B1)
_MAX_TABLE_N = 24


def _u32(c):
    return jnp.uint32(c)


def _key_words(key) -> jax.Array:
    """Well-mixed uint32[2] words for a model: ``key_data(fold_in(key, salt))`` (typed or raw keys)."""
    if not jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    return jax.random.key_data(jax.random.fold_in(key, _SALT)).reshape(-1).astype(jnp.uint32)[:2]


def _check_n(n, upper=64):
    if isinstance(n, bool) or int(n) != n or not 1 <= int(n) <= upper:
        raise ValueError(f"n={n!r}: must be an integer in [1, {upper}]")
    return int(n)


def index_words(x) -> tuple[jax.Array, jax.Array]:
    """The configuration index of ``x`` (±1, shape (n,)) as uint32 words ``(lo, hi)``: bit i ↔ ``x_i = +1``."""
    x = jnp.asarray(x)
    n = x.shape[-1]
    i = np.arange(n)
    bits = (x > 0).astype(jnp.uint32) << jnp.asarray(i % 32, jnp.uint32)
    lo = jnp.sum(jnp.where(jnp.asarray(i < 32), bits, _u32(0)), axis=-1, dtype=jnp.uint32)
    hi = jnp.sum(jnp.where(jnp.asarray(i >= 32), bits, _u32(0)), axis=-1, dtype=jnp.uint32)
    return lo, hi


def spins_from_index(lo, hi, n: int) -> jax.Array:
    """±1 (int8) configurations of shape ``lo.shape + (n,)`` from index words (the inverse of ``index_words``)."""
    i = np.arange(n)
    lo = jnp.asarray(lo, jnp.uint32)[..., None]
    hi = jnp.asarray(hi, jnp.uint32)[..., None]
    word = jnp.where(jnp.asarray(i < 32), lo, hi)
    bit = (word >> jnp.asarray(i % 32, jnp.uint32)) & _u32(1)
    return (2 * bit.astype(jnp.int8) - 1).astype(jnp.int8)


def _popcount(x):
    return jax.lax.population_count(x).astype(jnp.int32)


def _pair_words(words, hi):
    """The per-``hi`` words ``(a, b)`` of the pair hash (scalars in a chunk: hashed once, not per state)."""
    k0, k1 = words[0], words[1]
    hi = jnp.asarray(hi, jnp.uint32)
    return mix32(hi ^ k1), mix32(hi ^ k0 ^ _u32(_C[0])) ^ _u32(_C[1])


def _sincos_quarter(w):
    """``(cos θ, sin θ)`` of the uniform angle ``θ = (q + f − ½)·π/2`` coded by the uint32 word ``w``.

    ``q`` = the top 2 bits (the quadrant), ``f`` = the next 24 bits; θ is uniform on a full period (24 bits per
    quadrant). On the reduced angle ``φ = (f − ½)·π/2 ∈ [−π/4, π/4)`` the Taylor polynomials (to φ^9 and φ^10) are
    exact to < 2·10^-9, below float32 rounding; the quadrant rotates ``(cos φ, sin φ)`` by qπ/2. XLA's own cos/sin
    cost 5× the whole hash on a CPU.
    """
    f = jnp.float32
    q = w >> 30
    phi = (((w >> 6) & _u32(0xFFFFFF)).astype(f) * f(2.0**-24) - f(0.5)) * f(np.pi / 2)
    p2 = phi * phi
    s = phi * (f(1) + p2 * (f(-1 / 6) + p2 * (f(1 / 120) + p2 * (f(-1 / 5040) + p2 * f(1 / 362880)))))
    c = f(1) + p2 * (f(-0.5) + p2 * (f(1 / 24) + p2 * (f(-1 / 720) + p2 * (f(1 / 40320) + p2 * f(-1 / 3628800)))))
    swap = (q & _u32(1)) == _u32(1)  # quadrants 1, 3: cos θ = ∓sin φ, sin θ = ±cos φ
    a = jnp.where(swap, s, c)
    b = jnp.where(swap, c, s)
    neg_a = ((q ^ (q >> 1)) & _u32(1)) == _u32(1)  # q = 1, 2
    neg_b = (q >> 1) == _u32(1)  # q = 2, 3
    return jnp.where(neg_a, -a, a), jnp.where(neg_b, -b, b)


def _pair_normals(k0, pair_lo, a, b):
    """Two independent standard normals ``(g_even, g_odd)`` for each pair index (Box–Muller, 48-bit radius).

    ``x = mix(j_lo ^ k0)``, ``y = mix(x ^ a)``, ``z = mix(x ^ b)`` with ``(a, b)`` the hashed high word (see
    :func:`_pair_words`): for fixed high word y and z are bijections of the pair index, and two pairs collide only
    if both y and z collide. Three more rounds give the words of the radius (48 bits: |g| up to 8.2, beyond the
    extreme of 2^36 draws) and the angle; ``(r cos θ, r sin θ)`` are independent N(0, 1) (Box & Muller 1958), so a
    pair of states costs one hash, one log and one polynomial sincos.
    """
    f = jnp.float32
    x = mix32(pair_lo ^ k0)
    y = mix32(x ^ a)
    z = mix32(x ^ b)
    w1 = mix32(y ^ _u32(_C[2]))
    w2 = mix32(z ^ _u32(_C[3]))
    w3 = mix32(y ^ z ^ _u32(_C[4]))
    u1 = (w1 >> 8).astype(f) * f(2.0**-24) + (w2 >> 8).astype(f) * f(2.0**-48) + f(2.0**-49)
    r = jnp.sqrt(f(-2.0) * jnp.log(jnp.minimum(u1, f(1.0))))
    c, s = _sincos_quarter(w3)
    return r * c, r * s


def _pair_index(lo, hi):
    """The 63-bit pair index ``k >> 1`` of state index ``k = (hi, lo)`` as words, and the parity ``k & 1``."""
    lo = jnp.asarray(lo, jnp.uint32)
    hi = jnp.asarray(hi, jnp.uint32)
    return (lo >> 1) | (hi << 31), hi >> 1, (lo & _u32(1)) == _u32(1)


def _hashed_normal(words, lo, hi):
    """A standard normal for each state index ``(lo, hi)`` under model key ``words``.

    States ``2j`` and ``2j + 1`` share one Box–Muller pair (:func:`_pair_normals`): the even state takes
    ``r cos θ``, the odd one ``r sin θ`` — independent normals, half the hashing. The streaming enumeration
    (:func:`_rem_chunk`) computes both at once with the same operations, so the numbers agree bit for bit.
    """
    plo, phi_, odd = _pair_index(lo, hi)
    a, b = _pair_words(words, phi_)
    g_even, g_odd = _pair_normals(words[0], plo, a, b)
    return jnp.where(odd, g_odd, g_even)


def _tree(cls, data, meta):
    return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)


class _SpinModel:
    """Shared methods: ``random_state``, ``energies_from_index`` (vmapped ``energy``), ``all_energies``."""

    n: int

    def random_state(self, key) -> jax.Array:
        """A uniformly random configuration (int8 ±1, shape (n,))."""
        return (2 * jax.random.bernoulli(key, 0.5, (self.n,)).astype(jnp.int8) - 1).astype(jnp.int8)

    def energies_from_index(self, lo, hi) -> jax.Array:
        """Energies of the configurations with index words ``(lo, hi)`` (any batch shape)."""
        x = spins_from_index(lo, hi, self.n)
        flat = x.reshape(-1, self.n)
        return jax.vmap(self.energy)(flat).reshape(jnp.shape(lo))

    def all_energies(self) -> jax.Array:
        """All 2^n energies, entry k ↔ σ_i = +1 where bit i of k is 1 (n ≤ 24; use ``exact_thermodynamics`` above)."""
        if self.n > _MAX_TABLE_N:
            raise ValueError(
                f"n={self.n}: all_energies stores 2^n numbers and allows n ≤ {_MAX_TABLE_N}; "
                f"use rem.exact_thermodynamics, which streams over the states"
            )
        k = jnp.arange(2**self.n, dtype=jnp.uint32)
        return jax.jit(self.energies_from_index)(k, jnp.zeros_like(k))

    def chunk_energies(self, lo0, hi, size: int) -> jax.Array:
        """Energies of the ``size`` consecutive states from index ``(hi, lo0)`` (no wrap of the low word)."""
        lo = lo0 + jnp.arange(size, dtype=jnp.uint32)
        return self.energies_from_index(lo, jnp.full((size,), hi, jnp.uint32))


@partial(_tree, data=["words"], meta=["n"])
@dataclasses.dataclass(frozen=True)
class REM(_SpinModel):
    """Random energy model: ``H(σ) = √(n/2) g(σ)`` with independent standard normals g hashed from (key, σ).

    Derrida, PRB 24:2613 (1981). ``words`` (uint32[2]) is the disorder; ``n ≤ 64`` is static.

    Example:
      >>> model = REM.random(jax.random.key(0), 20)
      >>> model.energy(model.random_state(jax.random.key(1)))
    """

    words: jax.Array
    n: int

    @classmethod
    def random(cls, key, n: int) -> REM:
        """A REM sample of n spins (n ≤ 64); its energies are a function of (key, σ) only."""
        return cls(_key_words(key), _check_n(n))

    @property
    def scale(self) -> float:
        return math.sqrt(self.n / 2.0)

    def energy(self, x) -> jax.Array:
        """Extensive energy of one configuration x (±1, shape (n,))."""
        lo, hi = index_words(x)
        return jnp.float32(self.scale) * _hashed_normal(self.words, lo, hi)

    def energies_from_index(self, lo, hi) -> jax.Array:
        return jnp.float32(self.scale) * _hashed_normal(self.words, lo, hi)

    def chunk_energies(self, lo0, hi, size: int) -> jax.Array:
        """Energies of ``size`` (even) consecutive states from an even index: one Box–Muller pair per two states."""
        plo, phi_, _ = _pair_index(lo0, hi)
        a, b = _pair_words(self.words, phi_)  # scalars: the high word is hashed once per chunk
        g_even, g_odd = _pair_normals(self.words[0], plo + jnp.arange(size // 2, dtype=jnp.uint32), a, b)
        scale = jnp.float32(self.scale)
        return jnp.stack([scale * g_even, scale * g_odd], axis=-1).reshape(size)


def _level_words(words, level):
    return jnp.stack([mix32(words[0] ^ _u32((level + 1) * _C[0] & 0xFFFFFFFF)),
                      mix32(words[1] + _u32((level + 1) * _C[2] & 0xFFFFFFFF))])


def _prefix_mask(m):
    """uint32 masks (lo, hi) keeping the first m bits of a 64-bit index."""
    lo = 0xFFFFFFFF if m >= 32 else (1 << m) - 1
    hi = 0 if m <= 32 else (0xFFFFFFFF if m >= 64 else (1 << (m - 32)) - 1)
    return _u32(lo), _u32(hi)


@partial(_tree, data=["words", "shares"], meta=["n", "counts"])
@dataclasses.dataclass(frozen=True)
class GREM(_SpinModel):
    """Generalized REM on a tree: ``H(σ) = Σ_i √(a_i n/2) g_i(σ_1 … σ_{m_i})``, ``m_i = n_1 + … + n_i``.

    Level i has ``α_i^n = 2^{n_i}`` branches per node (per-spin ``ln α_i = (n_i/n) ln 2``) and variance share
    ``a_i`` (Σ a_i = 1); ``g_i`` is a standard normal hashed from (key, i, the first m_i spins). Derrida,
    J. Phys. Lett. 46:L401 (1985); Derrida & Gardner, J. Phys. C 19:2253 (1986).
    """

    words: jax.Array
    shares: jax.Array
    n: int
    counts: tuple

    @classmethod
    def random(cls, key, n: int, levels) -> GREM:
        """A GREM sample; ``levels`` is a list of ``(fraction of spins, variance share)`` pairs, top level first.

        Fractions must sum to 1 and give a whole number ≥ 1 of spins per level (n·x_i within 1e-6 of an
        integer); shares must be > 0 and sum to 1.
        """
        n = _check_n(n)
        try:
            lv = [(float(x), float(a)) for x, a in levels]
        except (TypeError, ValueError):
            raise ValueError(
                f"levels={levels!r}: must be a list of (fraction of spins, variance share) pairs"
            ) from None
        if not lv:
            raise ValueError(f"levels={levels!r}: needs at least one level")
        counts = [x * n for x, _ in lv]
        if any(abs(c - round(c)) > 1e-6 or round(c) < 1 for c in counts) or sum(round(c) for c in counts) != n:
            raise ValueError(
                f"levels={levels!r}: fractions × n={n} must be whole numbers ≥ 1 of spins summing to n (got {counts})"
            )
        shares = [a for _, a in lv]
        if any(not a > 0 for a in shares) or abs(sum(shares) - 1.0) > 1e-6:
            raise ValueError(f"levels={levels!r}: variance shares must be > 0 and sum to 1 (got {shares})")
        return cls(_key_words(key), jnp.asarray(shares, jnp.float32), n, tuple(int(round(c)) for c in counts))

    @property
    def log_branchings(self) -> np.ndarray:
        """Per-spin ``ln α_i = (n_i/n) ln 2`` (for ``theory.grem_free_energy``)."""
        return np.asarray(self.counts, np.float64) / self.n * np.log(2.0)

    def energies_from_index(self, lo, hi) -> jax.Array:
        lo = jnp.asarray(lo, jnp.uint32)
        hi = jnp.asarray(hi, jnp.uint32)
        total = jnp.zeros(lo.shape, jnp.float32)
        m = 0
        for level, c in enumerate(self.counts):
            m += c
            mlo, mhi = _prefix_mask(m)
            g = _hashed_normal(_level_words(self.words, level), lo & mlo, hi & mhi)
            total = total + jnp.sqrt(self.shares[level] * jnp.float32(self.n / 2.0)) * g
        return total

    def energy(self, x) -> jax.Array:
        """Extensive energy of one configuration x (±1, shape (n,))."""
        return self.energies_from_index(*index_words(x))


def _combinations(n, p):
    return np.array(list(__import__("itertools").combinations(range(n), p)), dtype=np.int32).reshape(-1, p)


@partial(_tree, data=["words", "indices", "couplings", "variances"], meta=["n", "ps", "hashed"])
@dataclasses.dataclass(frozen=True)
class IsingPSpin(_SpinModel):
    """Ising p-spin glass, the correlated REM: ``H(σ) = −Σ_p Σ_{i1<…<ip} J σ_i1…σ_ip``.

    ``J ~ N(0, w_p p!/(2 n^{p−1}))`` so ``Cov(H(σ), H(τ)) = n Σ_p w_p q^p / 2`` to leading order in n (exactly
    ``Σ_p w_p p!/(2n^{p−1}) e_p(σ∘τ)``, see :meth:`covariance`); p → ∞ is the REM (Derrida 1981, §III). With
    ``couplings="hashed"`` each J is generated from (key, p, combination index) when the energy is evaluated, so
    only the index table is stored. Gardner, Nucl. Phys. B 257:747 (1985) for the Ising p-spin.
    """

    words: jax.Array
    indices: tuple
    couplings: tuple
    variances: jax.Array
    n: int
    ps: tuple
    hashed: bool

    @classmethod
    def random(cls, key, n: int, p, *, couplings: str | None = None) -> IsingPSpin:
        """An Ising p-spin sample; ``p`` an int ≥ 2 or a mapping ``{p: w_p}`` (ξ(q) = Σ w_p q^p/2).

        ``couplings``: ``"dense"`` (default for every p ≤ 4: the J are stored) or ``"hashed"`` (default above).
        The table of combinations (C(n, p) rows) must hold ≤ 2·10^7 entries in all.
        """
        n = _check_n(n, 4096)  # no state index is hashed here: n is limited only by the coupling table
        weights = dict(p) if isinstance(p, dict) else {p: 1.0}
        for pp, w in weights.items():
            if isinstance(pp, bool) or not isinstance(pp, (int, np.integer)) or not 2 <= pp <= n:
                raise ValueError(f"p={p!r}: each p must be an integer in [2, n={n}]")
            if not float(w) > 0:
                raise ValueError(f"p={p!r}: each weight w_p must be > 0")
        ps = tuple(sorted(int(q) for q in weights))
        if couplings is None:
            couplings = "dense" if max(ps) <= 4 else "hashed"
        if couplings not in ("dense", "hashed"):
            raise ValueError(f"couplings={couplings!r}: must be 'dense' or 'hashed'")
        total = sum(math.comb(n, q) for q in ps)
        if total > 2 * 10**7:
            raise ValueError(f"n={n}, p={p!r}: {total} couplings exceed the 2·10^7 limit; use a smaller n or p")
        words = _key_words(key)
        var = jnp.asarray([float(weights[q]) * math.factorial(q) / (2.0 * n ** (q - 1)) for q in ps], jnp.float32)
        idx = tuple(jnp.asarray(_combinations(n, q)) for q in ps)
        if couplings == "dense":
            keys = jax.random.split(jax.random.wrap_key_data(words), len(ps))
            js = tuple(jnp.sqrt(var[i]) * jax.random.normal(keys[i], (idx[i].shape[0],)) for i in range(len(ps)))
        else:
            js = tuple(jnp.zeros((0,), jnp.float32) for _ in ps)
        return cls(words, idx, js, var, n, ps, couplings == "hashed")

    def _couplings(self, i):
        if not self.hashed:
            return self.couplings[i]
        c = jnp.arange(self.indices[i].shape[0], dtype=jnp.uint32)
        w = _level_words(self.words, i)
        return jnp.sqrt(self.variances[i]) * _hashed_normal(w, c, jnp.zeros_like(c))

    def energy(self, x) -> jax.Array:
        """Extensive energy of one configuration x (±1, shape (n,))."""
        xf = jnp.asarray(x).astype(jnp.float32)
        e = jnp.zeros((), jnp.float32)
        for i in range(len(self.ps)):
            e = e - jnp.sum(self._couplings(i) * jnp.prod(xf[self.indices[i]], axis=-1))
        return e

    def covariance(self, q) -> np.ndarray:
        """Exact ``Cov(H(σ), H(τ))`` at overlap q (for n q ≡ n mod 2): ``Σ_p v_p e_p(σ∘τ)``.

        ``e_p`` of a ±1 vector with m entries +1 is the x^p coefficient of ``(1+x)^m (1−x)^{n−m}``.
        """
        q = np.atleast_1d(np.asarray(q, np.float64))
        out = np.zeros(q.shape)
        for j, qq in enumerate(q):
            m = int(round(self.n * (1 + qq) / 2))
            pp = np.polynomial.polynomial
            poly = pp.polymul(pp.polypow([1.0, 1.0], m), pp.polypow([1.0, -1.0], self.n - m))
            out[j] = sum(float(self.variances[i]) * poly[p] for i, p in enumerate(self.ps))
        return out


_SHAPES = ("native", "power")


@partial(_tree, data=["base", "native", "depth", "exponent"], meta=["shape"])
@dataclasses.dataclass(frozen=True)
class Funnel(_SpinModel):
    """A minimally frustrated landscape: ``H_F(σ) = (1 − g(Q)) H_base(σ) − n·depth·g(Q)``, ``Q = σ·σ*/n``.

    ``shape="native"``: ``g = [σ = σ*]`` — the REM-plus-native-state model of Bryngelson & Wolynes (PNAS 84:7524,
    1987): the native state sits at −n·depth, every other state keeps its base energy (stability gap per spin
    ``depth`` below the misfolded mean 0). ``shape="power"``: ``g = max(Q, 0)^exponent`` — a funnel whose mean
    energy ``−n·depth·g(Q)`` falls and ruggedness ``(1 − g)√(n/2)`` shrinks toward the native state (Onuchic,
    Luthey-Schulten & Wolynes, Annu. Rev. Phys. Chem. 48:545, 1997).

    Args:
      base: a REM, GREM or IsingPSpin.
      native: the native configuration σ* (±1, shape (n,)).
      depth: the stability gap per spin (the native energy is −n·depth).
      shape: "native" or "power"; exponent: the power (> 0) for shape "power".
    """

    base: Any
    native: jax.Array
    depth: jax.Array
    exponent: jax.Array = 1.0
    shape: str = "native"

    def __post_init__(self):
        # Validation runs only on concrete inputs (pytree unflattening inside jit passes tracers or objects).
        if isinstance(self.native, (np.ndarray, jax.Array)) and not isinstance(self.native, jax.core.Tracer):
            n = self.base.n
            nat = np.asarray(self.native)
            if nat.shape != (n,) or not np.all(np.abs(nat) == 1):
                raise ValueError(f"native: must be a ±1 array of shape ({n},), got shape {nat.shape}")
            if self.shape not in _SHAPES:
                raise ValueError(f"shape={self.shape!r}: must be one of {_SHAPES}")
            if not np.ndim(self.depth) == 0:
                raise ValueError(f"depth={self.depth!r}: must be a scalar")
            if not float(self.exponent) > 0:
                raise ValueError(f"exponent={self.exponent!r}: must be > 0")
            object.__setattr__(self, "native", jnp.asarray(nat, jnp.int8))
            object.__setattr__(self, "depth", jnp.asarray(self.depth, jnp.float32))
            object.__setattr__(self, "exponent", jnp.asarray(self.exponent, jnp.float32))

    @property
    def n(self) -> int:
        return self.base.n

    def _g(self, agree):
        """Funnel weight g(Q) from the number of spins agreeing with the native state."""
        if self.shape == "native":
            return (agree == self.n).astype(jnp.float32)
        q = (2 * agree - self.n).astype(jnp.float32) / jnp.float32(self.n)
        return jnp.maximum(q, 0.0) ** self.exponent

    def _combine(self, base_energy, agree):
        g = self._g(agree)
        return (1.0 - g) * base_energy - jnp.float32(self.n) * self.depth * g

    def agreement(self, x) -> jax.Array:
        """Number of spins of x equal to the native state's (Q = 2·agreement/n − 1)."""
        return jnp.sum(jnp.asarray(x) == self.native, axis=-1, dtype=jnp.int32)

    def energy(self, x) -> jax.Array:
        """Extensive energy of one configuration x (±1, shape (n,))."""
        return self._combine(self.base.energy(x), self.agreement(x))

    def agreement_from_index(self, lo, hi) -> jax.Array:
        nlo, nhi = index_words(self.native)
        return self.n - _popcount(jnp.asarray(lo, jnp.uint32) ^ nlo) - _popcount(jnp.asarray(hi, jnp.uint32) ^ nhi)

    def energies_from_index(self, lo, hi) -> jax.Array:
        return self._combine(self.base.energies_from_index(lo, hi), self.agreement_from_index(lo, hi))

    def chunk_energies(self, lo0, hi, size: int) -> jax.Array:
        lo = lo0 + jnp.arange(size, dtype=jnp.uint32)
        return self._combine(self.base.chunk_energies(lo0, hi, size), self.agreement_from_index(lo, hi))


def overlap(x, y) -> jax.Array:
    """Overlap ``q = x·y/n`` of two ±1 configurations (last axis)."""
    x = jnp.asarray(x).astype(jnp.float32)
    y = jnp.asarray(y).astype(jnp.float32)
    return jnp.mean(x * y, axis=-1)
