"""Random energy models on σ ∈ {−1, +1}^n, the correlated REM of the Ising p-spin, and a minimally frustrated funnel.

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

Exact thermodynamics (``density_of_states`` → ``exact_thermodynamics``) streams over all 2^n states in chunks of
2^20 and keeps only 3 local moments of the energies on a grid of width 2^-11 (optionally resolved by the overlap
with a native state); ln Z, U, S, Y = Σp² and F(Q) then follow at any temperature ≥ 0.05 with relative error
< 2·10^-8 from truncating the moment series (see ``DensityOfStates``). ``deepglass bench rem`` times n = 30.
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .hashing import mix32

__all__ = [
    "REM",
    "GREM",
    "IsingPSpin",
    "Funnel",
    "Exact",
    "DensityOfStates",
    "density_of_states",
    "index_words",
    "spins_from_index",
    "overlap",
    "exact_thermodynamics",
    "free_energy_profile",
    "folding_time",
]

_SALT = 0x2E3A  # fold_in salt: model keys are scrambled by threefry before hashing
_C = (0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F, 0x165667B1)
_MAX_ENUM_N = 36
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
    def random(cls, key, n: int) -> "REM":
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
    def random(cls, key, n: int, levels) -> "GREM":
        """A GREM sample; ``levels`` is a list of ``(fraction of spins, variance share)`` pairs, top level first.

        Fractions must sum to 1 and give a whole number ≥ 1 of spins per level (n·x_i within 1e-6 of an
        integer); shares must be > 0 and sum to 1.
        """
        n = _check_n(n)
        try:
            lv = [(float(x), float(a)) for x, a in levels]
        except (TypeError, ValueError):
            raise ValueError(f"levels={levels!r}: must be a list of (fraction of spins, variance share) pairs") from None
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
    def random(cls, key, n: int, p, *, couplings: str | None = None) -> "IsingPSpin":
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
            poly = np.polynomial.polynomial.polymul(
                np.polynomial.polynomial.polypow([1.0, 1.0], m), np.polynomial.polynomial.polypow([1.0, -1.0], self.n - m)
            )
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


# --- exact streaming enumeration ---------------------------------------------------------------------------------


class DensityOfStates(NamedTuple):
    """Exact density of states of one sample, as local moments on a fine energy grid.

    The energy axis is cut into bins of width ``h = 2^-11`` (a power of 2, so the offsets below are exact float32
    numbers for |E| < 64); bin b holds ``moments[..., b, k] = Σ_{E in bin} (E − c_b)^k`` for k = 0, 1, 2, ``c_b``
    its centre. Then ``Σ_{E in bin} e^{−βE} = e^{−βc_b} Σ_k (−β)^k moments_k / k!``; truncating after k = 2
    leaves a relative error below ``(βh/2)^3/3! ≈ 2·10^-8`` for β ≤ 20 (T ≥ 0.05) — below the float32 rounding of
    the energies themselves. Three moments on a fine grid rather than seven on a coarse one: the scatter into the
    histogram costs per moment, and it is the enumeration's bottleneck. Leading axis (optional): the number m of
    spins agreeing with a native state.
    """

    centers: np.ndarray
    moments: np.ndarray
    ground_energy: float
    n: int


class Exact(NamedTuple):
    """Exact thermodynamics of one sample, per temperature (all extensive; divide by n for per-spin values).

    ``log_z``: ln Z; ``energy``: U = ⟨H⟩; ``entropy``: S = ln Z + βU; ``participation``: Y = Σ p_σ² =
    Z(2β)/Z(β)² (the probability that two replicas sit in the same state: E Y = 1 − T/T_c below T_c in the REM,
    0 above as n → ∞ — Derrida & Toulouse 1985, J. Phys. Lett. 46:L223); ``ground_energy``: min H;
    ``log_z_agree[t, m]``: ln of the partition function restricted to states with m spins equal to the native
    state (only when the enumeration was resolved by a native state).
    """

    temperature: np.ndarray
    log_z: np.ndarray
    energy: np.ndarray
    entropy: np.ndarray
    participation: np.ndarray
    ground_energy: float
    log_z_agree: np.ndarray | None


_H = 2.0**-11
_K = 3


@partial(jax.jit, static_argnames=("size", "with_agree"))
def _chunk_energies(model, lo0, hi, size, with_agree):
    e = model.chunk_energies(lo0, hi, size)
    if with_agree:
        lo = lo0 + jnp.arange(size, dtype=jnp.uint32)
        m = model.agreement_from_index(lo, hi)
    else:
        m = jnp.zeros((), jnp.int32)
    return e, m


@partial(jax.jit, static_argnames=("num_bins", "num_agree"))
def _chunk_histogram(e, m, num_bins, num_agree):
    # A separate program from the energies: fused together, XLA recomputes the hash inside every consumer.
    b = jnp.floor(e * jnp.float32(1.0 / _H)).astype(jnp.int32)
    d = e - (b.astype(jnp.float32) + jnp.float32(0.5)) * jnp.float32(_H)  # exact: h is a power of 2
    b0 = jnp.min(b)
    local = b - b0
    powers = jnp.stack([jnp.ones_like(d), d, d * d], axis=-1)
    if num_agree:
        target = jnp.zeros((num_agree, num_bins, _K), jnp.float32).at[m, local].add(powers, mode="drop")
    else:
        target = jnp.zeros((num_bins, _K), jnp.float32).at[local].add(powers, mode="drop")
    return b0, jnp.max(local), jnp.min(e), target


def density_of_states(model, *, native=None, chunk_bits: int = 20) -> DensityOfStates:
    """Enumerate all 2^n states of ``model`` (n ≤ 36), streamed in chunks of 2^chunk_bits: never a 2^n table.

    ``native`` (a ±1 configuration; a Funnel's own by default) resolves the density by agreement with it, from
    which :func:`free_energy_profile` gives F(Q). Chunk histograms are float32 (a bin of width 2^-11 receives at
    most a few hundred of a chunk's 2^20 states: relative rounding ~1e-6 of its own, tiny, moments), combined in
    float64.
    """
    n = _check_n(model.n, _MAX_ENUM_N)
    if not 4 <= chunk_bits <= 24:
        raise ValueError(f"chunk_bits={chunk_bits!r}: must be in [4, 24]")
    if native is not None:
        nat = np.asarray(native)
        if nat.shape != (n,) or not np.all(np.abs(nat) == 1):
            raise ValueError(f"native: must be a ±1 array of shape ({n},), got shape {nat.shape}")
        target = _AgreeView(model, jnp.asarray(nat, jnp.int8))
    elif isinstance(model, Funnel):
        target = model
    else:
        target = None
    with_agree = target is not None
    target = model if target is None else target
    size = 2 ** min(n, chunk_bits)
    num_bins = 2**14
    acc = None  # float64 moments over absolute bins [offset, offset + len)
    offset = 0
    ground = np.inf
    for start in range(0, 2**n, size):
        lo0 = jnp.uint32(start & 0xFFFFFFFF)
        hi = jnp.uint32(start >> 32)
        e, m = _chunk_energies(target, lo0, hi, size, with_agree)
        while True:
            b0, top, emin, hist = _chunk_histogram(e, m, num_bins, n + 1 if with_agree else 0)
            if int(top) < num_bins:
                break
            num_bins = 2 ** int(np.ceil(np.log2(int(top) + 1)))  # wider energy range: recompile once, redo
        b0 = int(b0)
        ground = min(ground, float(emin))
        hist = np.asarray(hist, np.float64)[..., : int(top) + 1, :]
        if acc is None:
            acc, offset = hist, b0
            continue
        lo_new, hi_new = min(offset, b0), max(offset + acc.shape[-2], b0 + hist.shape[-2])
        if lo_new < offset or hi_new > offset + acc.shape[-2]:
            pad = [(0, 0)] * acc.ndim
            pad[-2] = (offset - lo_new, hi_new - offset - acc.shape[-2])
            acc, offset = np.pad(acc, pad), lo_new
        acc[..., b0 - offset : b0 - offset + hist.shape[-2], :] += hist
    centers = (np.arange(acc.shape[-2]) + offset + 0.5) * _H
    return DensityOfStates(centers, acc, ground, n)


def _log_sums(dos: DensityOfStates, betas):
    """ln Σ e^{−βE} and Σ E e^{−βE} / Σ e^{−βE} for each β of ``betas``: arrays of shape (β, *leading axes).

    Only occupied bins are summed, in blocks of 64 temperatures (bins × block float64 temporaries).
    """
    betas = np.atleast_1d(np.asarray(betas, np.float64))
    occupied = np.any(dos.moments[..., 0] > 0, axis=tuple(range(dos.moments.ndim - 2)))
    m = dos.moments[..., occupied, :]  # (..., bins, K)
    c = dos.centers[occupied]
    fact = np.array([math.factorial(i) for i in range(_K)], np.float64)
    log_z, energy = [], []
    for i in range(0, betas.size, 64):
        beta = betas[i : i + 64]  # (B,)
        coef = (-beta[:, None]) ** np.arange(_K) / fact  # (B, K)
        s = np.einsum("...bk,tk->t...b", m, coef)  # Σ_bin e^{−β(E−c)}, truncated after (βh/2)^2
        t = np.einsum("...bk,tk->t...b", m[..., 1:], coef[:, :-1])  # Σ_bin (E−c) e^{−β(E−c)} (≤ 3e-9 in U)
        bc = (-beta[:, None] * c).reshape((beta.size,) + (1,) * (m.ndim - 2) + (c.size,))
        with np.errstate(divide="ignore", invalid="ignore"):
            logw = np.where(s > 0, bc + np.log(np.where(s > 0, s, 1.0)), -np.inf)
            top = np.max(logw, axis=-1, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            z = np.sum(np.exp(logw - top), axis=-1)
            log_z.append(top[..., 0] + np.log(z))
            energy.append(np.sum(np.exp(bc - top) * (c * s + t), axis=-1) / z)
    return np.concatenate(log_z), np.concatenate(energy)


def exact_thermodynamics(model, temperatures, *, native=None, chunk_bits: int = 20) -> Exact:
    """ln Z, U, S and the participation ratio of one sample by exact enumeration (see :func:`density_of_states`).

    ``model`` may be a model or an already computed :class:`DensityOfStates` (then any temperatures cost nothing).
    """
    temps = np.atleast_1d(np.asarray(temperatures, np.float64))
    if temps.ndim != 1 or np.any(~(temps >= 0.05)):
        raise ValueError(f"temperatures={temperatures!r}: must be a list of numbers ≥ 0.05")
    dos = model if isinstance(model, DensityOfStates) else density_of_states(model, native=native,
                                                                           chunk_bits=chunk_bits)
    resolved = dos.moments.ndim == 3
    total = DensityOfStates(dos.centers, dos.moments.sum(axis=0), dos.ground_energy, dos.n) if resolved else dos
    log_z, u = _log_sums(total, 1.0 / temps)
    log_z2, _ = _log_sums(total, 2.0 / temps)
    return Exact(
        temperature=temps,
        log_z=log_z,
        energy=u,
        entropy=log_z + u / temps,
        participation=np.exp(log_z2 - 2.0 * log_z),
        ground_energy=dos.ground_energy,
        log_z_agree=_log_sums(dos, 1.0 / temps)[0] if resolved else None,
    )


@partial(_tree, data=["model", "native"], meta=[])
@dataclasses.dataclass(frozen=True)
class _AgreeView:
    """A model's energies plus the agreement count with a given native state (for F(Q) of any model)."""

    model: Any
    native: jax.Array

    @property
    def n(self):
        return self.model.n

    def energies_from_index(self, lo, hi):
        return self.model.energies_from_index(lo, hi)

    def chunk_energies(self, lo0, hi, size):
        return self.model.chunk_energies(lo0, hi, size)

    def agreement_from_index(self, lo, hi):
        nlo, nhi = index_words(self.native)
        return self.n - _popcount(jnp.asarray(lo, jnp.uint32) ^ nlo) - _popcount(jnp.asarray(hi, jnp.uint32) ^ nhi)


def free_energy_profile(exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    """Landau free energy ``F(Q) = −T ln Z(Q)`` (extensive) per temperature, from an enumeration with a native state.

    Returns ``(q, F)`` with ``q = 2m/n − 1`` for m = 0…n agreeing spins and ``F`` of shape (temperatures, n+1)
    (``+inf`` where no state has that overlap).
    """
    if exact.log_z_agree is None:
        raise ValueError("exact: was computed without a native state; pass native= to exact_thermodynamics")
    n = exact.log_z_agree.shape[1] - 1
    q = 2.0 * np.arange(n + 1) / n - 1.0
    return q, -exact.temperature[:, None] * exact.log_z_agree


# --- folding kinetics ----------------------------------------------------------------------------------------------


def folding_time(key, funnel: Funnel, temperature, *, num_starts: int = 32, max_sweeps: int = 1000,
                 q_fold: float = 1.0, kernel: str = "metropolis"):
    """First-passage times (in sweeps) from random starts to ``Q ≥ q_fold`` under single-spin-flip dynamics.

    Returns ``(times, folded)``: int32 times of shape (num_starts,) — the first sweep after which Q ≥ q_fold, or
    ``max_sweeps`` where it never happened (``folded`` False: a censored time, so means over them are lower
    bounds). ``temperature`` may be traced; ``kernel`` is "metropolis" or "heat_bath".
    """
    from . import kernels  # kernels import this module: imported here, not at the top
    from .driver import run

    if kernel not in ("metropolis", "heat_bath"):
        raise ValueError(f"kernel={kernel!r}: must be 'metropolis' or 'heat_bath'")
    if int(num_starts) < 1 or int(max_sweeps) < 1:
        raise ValueError(f"num_starts={num_starts!r}, max_sweeps={max_sweeps!r}: must be ≥ 1")
    k = getattr(kernels, kernel)(funnel, temperature)
    key_x, key_init, key_run = jax.random.split(key, 3)
    xs = jax.vmap(funnel.random_state)(jax.random.split(key_x, num_starts))
    need = int(math.ceil((float(q_fold) + 1.0) * funnel.n / 2.0 - 1e-9))

    def one(k_init, k_run, x):
        state = k.init(k_init, x)
        _, agree = run(k, k_run, state, int(max_sweeps), observe=lambda s, i: funnel.agreement(s.x))
        hit = agree >= need
        first = jnp.argmax(hit)
        return jnp.where(jnp.any(hit), first + 1, max_sweeps).astype(jnp.int32), jnp.any(hit)

    return jax.vmap(one)(jax.random.split(key_init, num_starts), jax.random.split(key_run, num_starts), xs)
