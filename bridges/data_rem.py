"""Exact landscape of a data-correlated REM: a binary perceptron trained on data, enumerated state by state.

The model (``physics.rem.Perceptron``): weights σ ∈ {±1}^n, energy H(σ) = the number of training errors on P
labelled patterns. Its 2^n energies are correlated through the data, so it sits between the REM (independent
energies, a "golf course": the solutions are needles in a flat landscape) and a funnel (Bryngelson & Wolynes 1987,
PNAS 84:7524: the energy falls toward one native state and T_f/T_g > 1). For n ≤ 26 every statistic below is
exact, from one streaming pass over all states (``physics.rem.energy_chunks``), except the sampled pair
correlation.

* Ground states: the minimum energy, its degeneracy and the first ground states by index (one streaming min).
* Pair correlation at fixed overlap q = σ·τ/n = 1 − 2k/n, over uniform σ and k random flips (one sample):
  ``ρ(q) = Cov(H(σ), H(τ)) / Var H``. References: the REM's ``[q = 1]``, the Ising p-spin's ``q^p`` (exactly
  ``e_p(σ∘τ)/C(n, p)`` at finite n), and for Gardner's problem (random ±1 patterns and labels) the exact finite-n
  disorder average :func:`gardner_correlation`, → ``(2/π) arcsin q`` for n → ∞ (Sheppard's formula).
* Energy vs overlap Q with a reference (a ground state): count, mean, min and max of H over each shell
  ``Q = 2m/n − 1`` (m agreeing spins). A funnel's mean falls toward Q = 1; a golf course's is flat until Q = 1.
* Folding and glass temperatures, as ``runs/jobs/funnel.py`` defines them (its functions are called, not copied):
  the native state is the ground level (every state of the minimum energy: the ground state itself when it is
  unique, as in the REM-plus-native-state model; the whole solution space of a perceptron at zero errors), the
  misfolded ensemble every other state. ``T_f`` = the highest temperature where the native occupancy
  ``p_N(T) = Z_ground/Z`` is ½; ``T_g`` = the peak of the misfolded ensemble's heat capacity dU/dT (on the job's
  grid, rescaled to the energy spread: :func:`funnel_temperatures`). In the REM-plus-native-state model
  ``T_f/T_g > 1`` means the landscape folds before it glasses; but the heat-capacity peak is a glass transition
  only for a REM-like misfolded ensemble: the unfrustrated funnel (:func:`unfrustrated`, independent spins) has
  T_f/T_g ≈ 0.58 at n = 20, so a ratio is read against that value at the same n.

Data: :func:`pool_binarize` reduces 8×8 digits to ``rows × cols ≤ 26`` binary features (area-weighted average
pooling, then a per-feature threshold at the training mean), :func:`digits_perceptron` builds the two-class model.
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from nets import data as nets_data
from physics import rem

__all__ = [
    "GroundStates",
    "OverlapProfile",
    "EnergyCorrelation",
    "FunnelTemperatures",
    "pool_binarize",
    "digits_perceptron",
    "ground_states",
    "energy_vs_overlap",
    "energy_correlation",
    "gardner_correlation",
    "unfrustrated",
    "funnel_temperatures",
    "landscape",
]

_SIDE = 8  # the digits are 8×8 images


class GroundStates(NamedTuple):
    """The minimum energy, how many states have it, and the first ``len(indices)`` of them by state index."""

    energy: float
    degeneracy: int
    indices: np.ndarray  # int64 state indices k (σ_i = +1 where bit i of k is 1)
    states: np.ndarray  # int8 ±1, shape (len(indices), n)


class OverlapProfile(NamedTuple):
    """Energy statistics over each shell of overlap ``q = 2m/n − 1`` with a reference state (m = 0 … n)."""

    q: np.ndarray
    count: np.ndarray  # C(n, m): every state is counted
    mean: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray


class EnergyCorrelation(NamedTuple):
    """Sampled ``ρ(q) = Cov(H(σ), H(τ))/Var H`` at ``q = 2m/n − 1``, m = 0 … n, with delta-method standard errors."""

    q: np.ndarray
    rho: np.ndarray
    stderr: np.ndarray
    num_pairs: int


class FunnelTemperatures(NamedTuple):
    """``T_f``, ``T_g`` and ``T_f/T_g`` (nan when p_N < ½ on the whole grid), with the curves they come from."""

    folding: float
    glass: float
    ratio: float
    temperature: np.ndarray  # grid of the native occupancy
    native_occupancy: np.ndarray  # p_N(T) = Z_ground / Z
    glass_temperature_grid: np.ndarray  # s × the grid of runs/jobs/funnel.py
    misfolded_energy: np.ndarray  # U(T) of the misfolded ensemble on that grid
    ground_energy: float
    degeneracy: int


# --- data -----------------------------------------------------------------------------------------------------


def _area_weights(size_in: int, size_out: int) -> np.ndarray:
    """``(size_out, size_in)`` averaging weights: output cell j covers [j, j+1)·size_in/size_out of the input axis."""
    edges = np.arange(size_out + 1) * (size_in / size_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0.0, None)
    return overlap / (size_in / size_out)


def pool_binarize(images, shape=(4, 5), *, thresholds=None) -> tuple[np.ndarray, np.ndarray]:
    """8×8 images → ``rows·cols`` features ±1: area-weighted average pooling, then ``+1`` where above a threshold.

    Output cell (r, c) averages the input over the rectangle ``[r·8/rows, (r+1)·8/rows) × [c·8/cols, (c+1)·8/cols)``,
    each pixel weighted by the area it shares with it (for 4×4: plain 2×2 block means). A feature is ``+1`` when its
    pooled value exceeds its threshold, else ``−1``; the thresholds default to the per-feature mean over ``images``
    (pass the training thresholds to encode test images the same way). A feature constant over the data set (an
    empty border) becomes a constant input — in a perceptron, a bias.

    Args:
      images: ``(N, 64)`` or ``(N, 8, 8)`` pixel values (row-major), any scale.
      shape: ``(rows, cols)`` with 1 ≤ rows, cols ≤ 8 and rows·cols ≤ 64.
      thresholds: ``(rows·cols,)`` or None.

    Returns:
      ``(features, thresholds)``: int8 ``(N, rows·cols)`` row-major, and the float64 thresholds used.
    """
    x = np.asarray(images, np.float64)
    if x.ndim == 2 and x.shape[1] == _SIDE * _SIDE:
        x = x.reshape(-1, _SIDE, _SIDE)
    if x.ndim != 3 or x.shape[1:] != (_SIDE, _SIDE) or x.shape[0] < 1:
        raise ValueError(f"images: must have shape (N, 64) or (N, 8, 8) with N ≥ 1, got {np.shape(images)}")
    try:
        rows, cols = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape={shape!r}: must be a pair (rows, cols)") from None
    if not (1 <= rows <= _SIDE and 1 <= cols <= _SIDE) or tuple(shape) != (rows, cols):
        raise ValueError(f"shape={shape!r}: rows and cols must be integers in [1, {_SIDE}]")
    pooled = np.einsum("ri,nij,cj->nrc", _area_weights(_SIDE, rows), x, _area_weights(_SIDE, cols))
    pooled = pooled.reshape(x.shape[0], rows * cols)
    if thresholds is None:
        thr = pooled.mean(axis=0)
    else:
        thr = np.asarray(thresholds, np.float64)
        if thr.shape != (rows * cols,):
            raise ValueError(f"thresholds: must have shape ({rows * cols},), got {thr.shape}")
    return np.where(pooled > thr, 1, -1).astype(np.int8), thr


def digits_perceptron(classes=(0, 1), shape=(4, 5), *, split: str = "train", margin: float = 0.0,
                      loss: str = "errors", data_dir=None) -> rem.Perceptron:
    """A binary perceptron on two digit classes (``classes[0]`` → label +1, ``classes[1]`` → −1), n = rows·cols.

    Images of both classes from ``nets.data.digits`` (``split`` "train" or "test"), reduced by
    :func:`pool_binarize` with thresholds from the training images of the two classes. n ≤ 26 keeps the landscape
    enumerable (``shape=(4, 5)``: n = 20, ``(5, 5)``: n = 25, odd, so no pattern lies on a decision boundary).
    """
    try:
        a, b = (int(c) for c in classes)
    except (TypeError, ValueError):
        raise ValueError(f"classes={classes!r}: must be two digit classes") from None
    if a == b or not (0 <= a <= 9 and 0 <= b <= 9):
        raise ValueError(f"classes={classes!r}: must be two different digits in 0..9")
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: must be 'train' or 'test'")
    digits = nets_data.digits(data_dir=data_dir)
    train = digits.train
    keep = (train.y == a) | (train.y == b)
    _, thr = pool_binarize(train.x[keep], shape)
    part = train if split == "train" else digits.test
    keep = (part.y == a) | (part.y == b)
    features, _ = pool_binarize(part.x[keep], shape, thresholds=thr)
    labels = np.where(part.y[keep] == a, 1.0, -1.0)
    return rem.Perceptron(features.astype(np.float32), labels.astype(np.float32), margin, loss)


# --- exact streaming statistics -----------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("max_states",))
def _chunk_minimum(e, max_states):
    low = jnp.min(e)
    at_min = e == low
    (first,) = jnp.nonzero(at_min, size=max_states, fill_value=-1)
    return low, jnp.sum(at_min, dtype=jnp.int32), first


def ground_states(model, *, max_states: int = 64, chunk_bits: int = 20) -> GroundStates:
    """Minimum energy, degeneracy and the first ``max_states`` ground states of ``model`` (n ≤ 36), streamed.

    Degenerate means equal float32 energies: exact for integer energies (error counts); for continuous energies
    the ground state is almost surely unique.
    """
    if isinstance(max_states, bool) or int(max_states) != max_states or int(max_states) < 1:
        raise ValueError(f"max_states={max_states!r}: must be an integer ≥ 1")
    best, count, found = np.inf, 0, []
    for start, e, _ in rem.energy_chunks(model, chunk_bits=chunk_bits):
        low, num, first = (np.asarray(v) for v in _chunk_minimum(e, int(max_states)))
        low = float(low)
        if low > best:
            continue
        if low < best:
            best, count, found = low, 0, []
        count += int(num)
        found.extend(int(start) + int(j) for j in first[first >= 0])
    idx = np.asarray(found[: int(max_states)], np.int64)
    states = np.asarray(rem.spins_from_index(jnp.asarray(idx & 0xFFFFFFFF, jnp.uint32),
                                             jnp.asarray(idx >> 32, jnp.uint32), model.n)).reshape(-1, model.n)
    return GroundStates(best, count, idx, states)


@partial(jax.jit, static_argnames=("num_shells",))
def _shell_extremes(e, m, num_shells):
    return jax.ops.segment_min(e, m, num_shells), jax.ops.segment_max(e, m, num_shells)


def energy_vs_overlap(model, reference, *, chunk_bits: int = 20) -> OverlapProfile:
    """Exact count, mean, min and max of the energy over each shell of overlap with ``reference`` (n ≤ 36).

    ``reference`` is a ±1 configuration of length n (typically a ground state); shell m (overlap ``2m/n − 1``)
    holds the C(n, m) states that agree with it on m spins. Sums are accumulated in float64 (NumPy) per chunk;
    minima and maxima are exact.
    """
    n = model.n
    shells = n + 1
    count = np.zeros(shells, np.int64)
    total = np.zeros(shells, np.float64)
    low = np.full(shells, np.inf)
    high = np.full(shells, -np.inf)
    for _, e, m in rem.energy_chunks(model, native=reference, chunk_bits=chunk_bits):
        lo_c, hi_c = (np.asarray(v, np.float64) for v in _shell_extremes(e, m, shells))
        m_np = np.asarray(m)
        count += np.bincount(m_np, minlength=shells)
        total += np.bincount(m_np, weights=np.asarray(e, np.float64), minlength=shells)
        low, high = np.minimum(low, lo_c), np.maximum(high, hi_c)
    return OverlapProfile(2.0 * np.arange(shells) / n - 1.0, count, total / count, low, high)


# --- sampled pair correlation ----------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("num_pairs",))
def _pair_energies(key, model, num_pairs):
    """``(n+1, num_pairs, 2)`` energies of (σ, τ): σ uniform, τ = σ with k uniformly chosen spins flipped."""
    n = model.n

    def shell(k, key):
        key_state, key_flip = jax.random.split(key)
        sigma = (2 * jax.random.bernoulli(key_state, 0.5, (num_pairs, n)).astype(jnp.int8) - 1).astype(jnp.int8)
        # {i : π(i) < k} for a uniform permutation π (argsort of uniforms) is a uniform k-subset of the spins
        flip = jnp.argsort(jax.random.uniform(key_flip, (num_pairs, n)), axis=-1) < k
        return jnp.stack([sigma, jnp.where(flip, -sigma, sigma)], axis=1)  # (num_pairs, 2, n)

    pairs = jax.vmap(shell)(jnp.arange(n + 1), jax.random.split(key, n + 1))
    return jax.vmap(model.energy)(pairs.reshape(-1, n)).reshape(n + 1, num_pairs, 2)  # one batch: one energy graph


def energy_correlation(key, model, num_pairs: int) -> EnergyCorrelation:
    """Sampled energy correlation ``ρ(q)`` of one sample at every overlap ``q = 1 − 2k/n`` (k = n … 0: ascending q).

    For each k (an independent key each): ``num_pairs`` uniform σ and τ = σ with k distinct random spins flipped;
    with a, b the two energies centred on their pooled mean, ``ρ = mean(a·b) / mean((a² + b²)/2)``. Its standard
    error is the delta method's: ``std(ψ)/√N`` with ``ψ = (a·b − ρ(a² + b²)/2) / mean((a² + b²)/2)``. The shells
    are independent, so a χ² over k against a theory curve is valid. ρ(1) = 1 exactly (stderr 0).
    """
    if isinstance(num_pairs, bool) or int(num_pairs) != num_pairs or int(num_pairs) < 2:
        raise ValueError(f"num_pairs={num_pairs!r}: must be an integer ≥ 2")
    pairs = np.asarray(_pair_energies(key, model, int(num_pairs)), np.float64)
    a, b = pairs[..., 0], pairs[..., 1]
    centre = 0.5 * (a.mean(axis=-1, keepdims=True) + b.mean(axis=-1, keepdims=True))
    a, b = a - centre, b - centre
    cross, square = a * b, 0.5 * (a * a + b * b)
    var = square.mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = cross.mean(axis=-1) / var
        psi = (cross - rho[:, None] * square) / var[:, None]
    stderr = psi.std(axis=-1, ddof=1) / math.sqrt(int(num_pairs))
    q = 1.0 - 2.0 * np.arange(model.n + 1) / model.n
    return EnergyCorrelation(q[::-1], rho[::-1], stderr[::-1], int(num_pairs))  # ascending q, as the profiles


def gardner_correlation(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact disorder-averaged ``ρ(q)`` of Gardner's error count (random ±1 patterns and labels, κ = 0), finite n.

    Per pattern, with the label absorbed and σ = 1 by symmetry: ``u = a + b`` and ``v = a − b``, a the sum of the
    n − k unflipped components, b of the k flipped ones (independent sums of ±1). Errors are ``u ≤ 0`` and ``v ≤ 0``
    (ties are errors), so ``Cov = P(a ≤ −|b|) − p²`` and ``Var = p − p²`` with ``p = P(a + b ≤ 0)``. Distinct
    patterns are independent, so the P-pattern energy has the same ρ. Returns ``(q, ρ)`` at ascending
    ``q = 1 − 2k/n`` (k = n … 0). For n → ∞, ``ρ → (2/π) arcsin q`` (Sheppard 1899: the orthant probability of a
    Gaussian pair), with an O(1/√n) lattice correction.
    """
    if isinstance(n, bool) or int(n) != n or not 1 <= int(n) <= 4096:
        raise ValueError(f"n={n!r}: must be an integer in [1, 4096]")
    n = int(n)

    def sums(m):  # values and probabilities of a sum of m independent ±1
        j = np.arange(m + 1)
        return 2 * j - m, stats.binom.pmf(j, m, 0.5)

    values, probs = sums(n)
    p = float(probs[values <= 0].sum())
    rho = np.empty(n + 1)
    for k in range(n + 1):
        av, ap = sums(n - k)
        bv, bp = sums(k)
        cdf = np.concatenate([[0.0], np.cumsum(ap)])  # cdf[i] = P(a < av[i]); av ascending
        joint = float(np.sum(bp * cdf[np.searchsorted(av, -np.abs(bv), side="right")]))  # Σ_b P(b) P(a ≤ −|b|)
        rho[k] = (joint - p * p) / (p - p * p)
    return (1.0 - 2.0 * np.arange(n + 1) / n)[::-1], rho[::-1]


def unfrustrated(n: int) -> rem.Perceptron:
    """The perfect funnel as a perceptron: the n unit patterns e_i, all labelled +1, so H(σ) = #{i : σ_i = −1}.

    Independent spins, no frustration at all (the Gō-model limit): the energy falls by 1 at every step toward the
    all-(+1) ground state, ρ(q) = q exactly (p = 1), and T_f = 1/ln(1/(2^{1/n} − 1)).
    """
    if isinstance(n, bool) or int(n) != n or not 1 <= int(n) <= 64:
        raise ValueError(f"n={n!r}: must be an integer in [1, 64]")
    return rem.Perceptron(np.eye(int(n), dtype=np.float32), np.ones(int(n), np.float32))


# --- folding vs glass -------------------------------------------------------------------------------------------


def _total(dos: rem.DensityOfStates) -> rem.DensityOfStates:
    """The density of states summed over an overlap resolution (a Funnel's own), if it has one."""
    return dos._replace(moments=dos.moments.sum(axis=0)) if dos.moments.ndim == 3 else dos


def _ground_bin(dos: rem.DensityOfStates) -> int:
    """Index of the enumeration bin holding the ground energy: bin b covers [b·h, (b+1)·h), centres (b + ½)·h."""
    if dos.centers.size == 1:
        return 0
    h = float(dos.centers[1] - dos.centers[0])  # 2^-11: a power of 2, so E/h and the centres are exact
    return int(math.floor(dos.ground_energy / h)) - int(round(dos.centers[0] / h - 0.5))


def _energy_scale(dos: rem.DensityOfStates) -> float:
    """The power of 2 nearest to std(H)/√(n/2) over all states: 1 for the REM family (Var H = n/2)."""
    c, m = dos.centers, dos.moments
    count = m[:, 0].sum()
    mean = (c * m[:, 0] + m[:, 1]).sum() / count
    d = c - mean
    var = (d * d * m[:, 0] + 2.0 * d * m[:, 1] + m[:, 2]).sum() / count
    if not var > 0:
        return 1.0
    return float(2.0 ** round(0.5 * math.log2(var / (dos.n / 2.0))))


def funnel_temperatures(model, *, chunk_bits: int = 20) -> FunnelTemperatures:
    """Folding temperature T_f, glass temperature T_g and T_f/T_g of ``model`` (or of its ``DensityOfStates``).

    Native = the ground level (the states in the 2^-11-wide bin of the minimum energy: exactly the ground level for
    integer energies); misfolded = every other state. Both temperatures use the ``funnel`` job's definitions
    (``physics.rem.folding_temperature``, ``physics.rem.heat_capacity_peak``): T_f the highest T with ``p_N = ½``
    (linear interpolation), nan when the native level never holds half the weight; T_g the peak of ``C = dU/dT``
    of the misfolded ensemble (central differences, parabolic refinement). The job's grid T = 0.10 … 3.00 (step
    0.01) is made for energies of spread √(n/2). For other spreads (P error counts: ~√P/2 … P) T_g is found with
    the energies divided by ``s`` = the power of 2 nearest to std(H)/√(n/2) and multiplied back by s (exact: C
    depends on H/T only); T_f, set by the gaps of the lowest levels rather than by the spread, on the union of the
    job's grid and the job's grid × s. For the REM family s = 1: both are the job's numbers.
    """
    _FINE = rem.TRANSITION_GRID
    dos = _total(model if isinstance(model, rem.DensityOfStates) else rem.density_of_states(model,
                                                                                            chunk_bits=chunk_bits))
    g = _ground_bin(dos)
    degeneracy = int(round(dos.moments[g, 0]))
    s = _energy_scale(dos)
    scaled = dos._replace(centers=dos.centers / s, ground_energy=dos.ground_energy / s,
                          moments=dos.moments / np.asarray([1.0, s, s * s]))  # s a power of 2: exact
    misfolded = scaled.moments.copy()
    misfolded[g] = 0.0
    occupied = np.flatnonzero(misfolded[:, 0] > 0)
    if occupied.size == 0:
        raise ValueError("model: every state has the ground energy; there is no misfolded ensemble")
    lowest = occupied[0]
    mis_ground = scaled.centers[lowest] + misfolded[lowest, 1] / misfolded[lowest, 0]
    mis = rem.exact_thermodynamics(scaled._replace(moments=misfolded, ground_energy=float(mis_ground)), _FINE)
    t_g = s * rem.heat_capacity_peak(_FINE, mis.energy)

    temps = np.union1d(_FINE, s * _FINE)
    native = np.zeros_like(dos.moments)
    native[g] = dos.moments[g]
    occupancy = np.exp(rem.exact_thermodynamics(dos._replace(moments=native), temps).log_z
                       - rem.exact_thermodynamics(dos, temps).log_z)
    t_f = rem.folding_temperature(temps, occupancy)
    return FunnelTemperatures(t_f, t_g, t_f / t_g, temps, occupancy, s * _FINE, s * mis.energy,
                              float(dos.ground_energy), degeneracy)


# --- summary ----------------------------------------------------------------------------------------------------


def landscape(model, temperatures, *, key=None, num_pairs: int = 1024, chunk_bits: int = 20) -> dict:
    """Every landscape statistic above for one model (n ≤ 26 in seconds to a minute), as named NumPy arrays.

    Exact (always): ``temperature``, ``log_z``, ``energy``, ``entropy``, ``participation`` (extensive, from
    ``rem.exact_thermodynamics``); the density of states ``dos_energy`` (mean energy of each occupied 2^-11 bin:
    the level itself for integer energies), ``dos_count``; ``ground_energy``, ``ground_degeneracy``,
    ``ground_state`` (the first by index); ``overlap`` and ``energy_overlap_{count,mean,min,max}`` with that ground
    state; ``folding_temperature``, ``glass_temperature``, ``tf_over_tg``, ``native_occupancy`` on its grid
    ``occupancy_temperature``, and ``tf_over_tg_unfrustrated``, the same ratio for :func:`unfrustrated` at this n
    (the value of a perfect funnel, the yardstick: at finite n it is below 1). Sampled, only with a ``key``:
    ``correlation_q``, ``correlation``, ``correlation_stderr`` (``num_pairs`` per shell) beside
    ``correlation_rem`` (``[q = 1]``), ``correlation_pspin`` (``q^p`` for ``correlation_p`` = 2, 3) and
    ``correlation_gardner``.
    """
    temps = np.atleast_1d(np.asarray(temperatures, np.float64))
    if model.n > 26:
        raise ValueError(f"model: n={model.n}; landscape enumerates 2^n states several times and allows n ≤ 26")
    dos = _total(rem.density_of_states(model, chunk_bits=chunk_bits))
    ex = rem.exact_thermodynamics(dos, temps)
    ground = ground_states(model, max_states=1, chunk_bits=chunk_bits)
    prof = energy_vs_overlap(model, ground.states[0], chunk_bits=chunk_bits)
    fold = funnel_temperatures(dos)
    occupied = dos.moments[:, 0] > 0
    out = {
        "temperature": temps, "log_z": ex.log_z, "energy": ex.energy, "entropy": ex.entropy,
        "participation": ex.participation,
        "dos_energy": dos.centers[occupied] + dos.moments[occupied, 1] / dos.moments[occupied, 0],
        "dos_count": dos.moments[occupied, 0],
        "ground_energy": np.float64(ground.energy), "ground_degeneracy": np.int64(ground.degeneracy),
        "ground_state": ground.states[0],
        "overlap": prof.q, "energy_overlap_count": prof.count, "energy_overlap_mean": prof.mean,
        "energy_overlap_min": prof.minimum, "energy_overlap_max": prof.maximum,
        "folding_temperature": np.float64(fold.folding), "glass_temperature": np.float64(fold.glass),
        "tf_over_tg": np.float64(fold.ratio), "occupancy_temperature": fold.temperature,
        "native_occupancy": fold.native_occupancy,
        "tf_over_tg_unfrustrated": np.float64(funnel_temperatures(unfrustrated(model.n), chunk_bits=chunk_bits).ratio),
    }
    if key is not None:
        corr = energy_correlation(key, model, num_pairs)
        ps = np.asarray([2, 3])
        out.update({
            "correlation_q": corr.q, "correlation": corr.rho, "correlation_stderr": corr.stderr,
            "correlation_rem": (corr.q == 1.0).astype(np.float64),
            "correlation_p": ps, "correlation_pspin": corr.q[None, :] ** ps[:, None],
            "correlation_gardner": gardner_correlation(model.n)[1],
        })
    return out
