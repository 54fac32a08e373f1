"""Networks and glasses side by side: normalized energies, spreads, slopes, a minimal-frustration score, and the
rule that turns measured numbers into the verdicts of the essay's claims.

Pure NumPy functions of measured numbers. The measurements (training, descents, exact enumerations, mutual
information) are in :mod:`bridges.compare_panels`; the job that schedules them and writes the report is
``runs/jobs/compare.py`` (job kind ``compare``).

**Normalized energy.** A point reached by local search from a random start, on either side, is placed on

    ε = (E - E_floor) / (E_start - E_floor),       0 at the floor, 1 at a random start:

* glass (spherical p-spin, CS units): E = e, the energy per spin; ``E_floor = E_0``, the n → ∞ ground state
  (``physics.theory.pspin_ground_state_energy``); ``E_start = 0``, the mean energy of a uniform random state. So
  ``ε = 1 - e/E_0``; the threshold ``E_th`` (where descent from a random start ends as n → ∞) sits at
  ``ε_th = 1 - E_th/E_0`` (0.0145 for p = 3: the band [E_0, E_th] is thin, which is why it is not the unit);
* network: E = the training loss (cross-entropy, no weight decay), floor 0 (reached only by a perfect, infinitely
  confident fit), ``E_start`` = the mean training loss of the same networks at initialization.

What is compared across the two sides is not ε itself but its **spread** over independent starts (seeds; disorder
samples × replicas) and how that spread scales with size, ``spread ∝ size^s`` (Choromanska et al. 2015,
arXiv:1412.0233, Fig. 1–2: the losses of the minima found concentrate as the network grows, as the energies of
a glass's minima concentrate with n).

**Spread.** The sample standard deviation (ddof = 1) and its standard error for normal data,
``sd / √(2(N - 1))`` (delta method on ``(N-1)s²/σ² ~ χ²_{N-1}``: ``Var s ≈ σ²/(2(N-1))``).

**Slopes.** Weighted least squares ``y = a + b x`` with known errors σ_i: ``b`` and its standard error from
``(XᵀWX)⁻¹``, W = diag(1/σ²); without errors, ordinary least squares with the residual variance. ``log_slope``
fits ``ln y`` against ``ln x`` with ``σ_ln y = σ_y / y``.

**Correlation.** Pearson's r with Fisher's ``z = atanh r``, whose standard error is ``1/√(N - 3)`` for bivariate
normal data (Fisher 1921): the verdict tests z against 0.

**Minimal-frustration score** (Bryngelson & Wolynes 1987, PNAS 84:7524, applied to sampled minima). Of M minima
found from independent starts the lowest is the native state, the other M - 1 the misfolded ensemble: a REM of
``S_0 = ln(M - 1)`` states with mean Ē, ruggedness ``ΔE`` (std, ddof = 1) and stability gap ``δE = Ē - E_native``.
Bryngelson–Wolynes: ``T_g = ΔE/√(2 S_0)`` and ``T_f/T_g + T_g/T_f = √(2/S_0) δE/ΔE``. Writing

    g = δE / (ΔE √(2 S_0)),      T_f/T_g = g + √(g² - 1)  (g ≥ 1),   no folding transition for g < 1,

g is the native gap in units of the gap that the misfolded REM would open below its mean by itself (its expected
ground state lies ``√(2 S_0) ΔE`` below Ē). The best of M draws from one distribution — a rugged glass or a golf
course seen through M samples — gives g ≈ 1 (Gaussian draws: 1.05 at M = 8, 0.87 at M = 64 and 401, means over
2000 draws); a funnel whose best minimum lies far below the rest gives g ≫ 1. Its error bar is a bootstrap of the
misfolded ensemble (the M - 1 others resampled with replacement, the native held fixed).

**Verdicts.** Each claim is reduced to a number of "evidence" whose sign says which way the data point, with a
standard error: ``supported`` when it exceeds ``+2`` standard errors, ``not supported`` below ``-2``, else
``inconclusive`` (NaN: inconclusive). A decay comparison uses the AIC difference instead (> 10 decisive, Burnham &
Anderson 2002). A claim with several parts is supported (not supported) only when every part is; a claim whose
panel did not run is ``not measured``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from physics import theory

__all__ = [
    "SYSTEMS",
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INCONCLUSIVE",
    "NOT_MEASURED",
    "CLAIMS",
    "Slope",
    "Correlation",
    "FrustrationScore",
    "ClaimRow",
    "glass_normalized_energy",
    "network_normalized_energy",
    "glass_threshold_normalized",
    "nanmean",
    "spread",
    "slope",
    "log_slope",
    "correlation",
    "frustration_score",
    "verdict",
    "aic_verdict",
    "combine",
    "difference",
    "format_value",
    "claim_funnel",
    "claim_temperature",
    "claim_rg",
    "claim_order_chaos",
    "claim_spread",
    "claim_low_index",
    "claim_long_range",
]

SYSTEMS = ("network", "glass")
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_MEASURED = "supported", "not supported", "inconclusive", "not measured"
SIGMAS = 2.0  # the evidence must exceed this many standard errors
DECISIVE_AIC = 10.0  # an AIC difference above this is decisive (Burnham & Anderson 2002, §2.6)

# The essay's claims, one row each in the report (id, text).
CLAIMS = (
    ("funnel", "a net trained on well-labelled data is a funnel, not a glass"),
    ("temperature", "regularization acts as temperature"),
    ("rg", "layers act as RG steps"),
    ("order_chaos", "good nets sit between order and chaos"),
    ("spread", "the spread of the minima shrinks with size"),
    ("low_index", "low-index critical points lie near the bottom"),
    ("long_range", "the data have long-range correlations"),
)


class Slope(NamedTuple):
    """A fitted slope, its standard error, and the number of points used."""

    value: float
    stderr: float
    num_points: int


class Correlation(NamedTuple):
    """Pearson ``r``, Fisher ``z = atanh r`` and ``z_stderr = 1/√(N-3)``, over ``num_points`` pairs."""

    r: float
    z: float
    z_stderr: float
    num_points: int


class FrustrationScore(NamedTuple):
    """Bryngelson–Wolynes reading of M sampled minima (module docstring): the gap ratio ``g`` with its bootstrap
    ``g_stderr``, ``tf_over_tg`` (nan when g < 1: no folding transition), the native energy, the misfolded mean,
    ruggedness and entropy ``S_0 = ln(M - 1)``."""

    g: float
    g_stderr: float
    tf_over_tg: float
    native: float
    mean: float
    ruggedness: float
    entropy: float


class ClaimRow(NamedTuple):
    """One row of the report's table."""

    claim: str
    observable: str
    network: str
    glass: str
    verdict: str


# --- normalizations ---------------------------------------------------------------------------------------------


def _pure_p(p) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 2 <= int(p) <= 8:
        raise ValueError(f"p={p!r}: must be a pure p-spin degree, an integer in 2..8")
    return int(p)


def glass_normalized_energy(energy_per_spin, p: int):
    """``ε = 1 - e/E_0``: 0 at the p-spin ground state (n → ∞, CS units), 1 at a random state (mean energy 0)."""
    e0 = theory.pspin_ground_state_energy(_pure_p(p))
    return 1.0 - np.asarray(energy_per_spin, np.float64) / e0


def glass_threshold_normalized(p: int) -> float:
    """``ε_th = 1 - E_th/E_0``: where the threshold energy sits on the normalized scale (0.0145 for p = 3)."""
    p = _pure_p(p)
    return 1.0 - theory.pspin_threshold_energy(p) / theory.pspin_ground_state_energy(p)


def network_normalized_energy(loss, initial_loss):
    """``ε = L / L_0``: 0 at zero training loss, 1 at the mean loss ``L_0`` of the networks at initialization."""
    l0 = float(initial_loss)
    if not l0 > 0:
        raise ValueError(f"initial_loss={initial_loss!r}: must be > 0 (a loss at initialization)")
    return np.asarray(loss, np.float64) / l0


# --- statistics -------------------------------------------------------------------------------------------------


def nanmean(values, axis=None):
    """Mean of the finite entries along ``axis``; NaN (without a warning) where there are none."""
    x = np.asarray(values, np.float64)
    ok = np.isfinite(x)
    count = np.sum(ok, axis=axis)
    total = np.sum(np.where(ok, x, 0.0), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def spread(values, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``(sd, stderr)`` over ``axis`` ignoring NaN: sample std (ddof 1) and ``sd/√(2(N-1))`` (NaN for N < 2)."""
    x = np.asarray(values, np.float64)
    count = np.sum(np.isfinite(x), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(x, axis=axis) / count
        dev = np.where(np.isfinite(x), x - np.expand_dims(mean, axis), 0.0)
        sd = np.where(count >= 2, np.sqrt(np.sum(dev * dev, axis=axis) / np.maximum(count - 1, 1)), np.nan)
        err = np.where(count >= 2, sd / np.sqrt(2.0 * np.maximum(count - 1, 1)), np.nan)
    return sd, err


def slope(x, y, stderr=None) -> Slope:
    """Least-squares slope of ``y = a + b x`` (weighted by ``1/stderr²`` when given) and its standard error.

    Points with a non-finite x, y or error are dropped. With errors the parameter covariance is ``(XᵀWX)⁻¹`` (errors
    known); without, ordinary least squares with the residual variance ``Σ r²/(N - 2)``. Fewer than 2 points (3
    without errors) give NaN.
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x, y: shapes {x.shape} and {y.shape} must be equal")
    if stderr is None:
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        n = x.size
        if n < 3 or np.ptp(x) == 0:
            return Slope(math.nan, math.nan, n)
        xc = x - x.mean()
        b = float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))
        resid = y - y.mean() - b * xc
        return Slope(b, float(math.sqrt(np.dot(resid, resid) / (n - 2) / np.dot(xc, xc))), n)
    s = np.asarray(stderr, np.float64).ravel()
    if s.shape != x.shape:
        raise ValueError(f"stderr: shape {s.shape} must equal that of x, {x.shape}")
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(s) & (s > 0)
    x, y, s = x[keep], y[keep], s[keep]
    n = x.size
    if n < 2 or np.ptp(x) == 0:
        return Slope(math.nan, math.nan, n)
    w = 1.0 / (s * s)
    xm = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    b = float(np.sum(w * (x - xm) * y) / sxx)
    return Slope(b, float(math.sqrt(1.0 / sxx)), n)


def log_slope(x, y, stderr=None) -> Slope:
    """Slope of ``ln y`` against ``ln x`` (a power law ``y ∝ x^b``), errors ``stderr/y``; points ≤ 0 dropped."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    ok = (x > 0) & (y > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lx, ly = np.where(ok, np.log(np.where(ok, x, 1.0)), np.nan), np.where(ok, np.log(np.where(ok, y, 1.0)), np.nan)
        err = None if stderr is None else np.asarray(stderr, np.float64).ravel() / np.where(ok, y, np.nan)
    return slope(lx, ly, err)


def correlation(x, y) -> Correlation:
    """Pearson r of the finite pairs, with Fisher's ``z = atanh r`` and ``1/√(N - 3)`` (NaN for N < 4)."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x, y: shapes {x.shape} and {y.shape} must be equal")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = x.size
    if n < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(math.nan, math.nan, math.nan, n)
    xc, yc = x - x.mean(), y - y.mean()
    r = float(np.dot(xc, yc) / math.sqrt(np.dot(xc, xc) * np.dot(yc, yc)))
    r = min(max(r, -1.0 + 1e-15), 1.0 - 1e-15)
    return Correlation(r, math.atanh(r), 1.0 / math.sqrt(n - 3), n)


def _gap_ratio(native: float, rest: np.ndarray) -> tuple[float, float, float, float]:
    mean, rugged = float(rest.mean()), float(rest.std(ddof=1))
    s0 = math.log(rest.size)
    if not rugged > 0:
        return math.nan, mean, rugged, s0
    return (mean - native) / (rugged * math.sqrt(2.0 * s0)), mean, rugged, s0


def frustration_score(energies, *, num_bootstrap: int = 200, seed: int = 0) -> FrustrationScore:
    """Bryngelson–Wolynes gap ratio g of M ≥ 4 sampled minima (NaN dropped) and its bootstrap error (docstring).

    The bootstrap resamples the misfolded ensemble (the M - 1 others, with replacement) with the native state held
    fixed: the error is that of the REM's mean and ruggedness estimated from M - 1 draws. (Resampling all M would
    leave the native out of a third of the resamples, turning an outlier's g into a bimodal mixture.) ``seed``
    seeds the resampling (a NumPy generator), so the result is a fixed function of its inputs.
    """
    e = np.asarray(energies, np.float64).ravel()
    e = e[np.isfinite(e)]
    if e.size < 4:
        return FrustrationScore(*(math.nan,) * 7)
    native = float(e.min())
    rest = np.delete(e, int(np.argmin(e)))
    g, mean, rugged, s0 = _gap_ratio(native, rest)
    rng = np.random.default_rng(seed)
    boot = np.array([_gap_ratio(native, rng.choice(rest, rest.size, replace=True))[0]
                     for _ in range(int(num_bootstrap))])
    boot = boot[np.isfinite(boot)]
    err = float(boot.std(ddof=1)) if boot.size >= 2 else math.nan
    ratio = g + math.sqrt(g * g - 1.0) if g >= 1.0 else math.nan
    return FrustrationScore(float(g), err, float(ratio), native, mean, rugged, s0)


# --- verdicts ---------------------------------------------------------------------------------------------------


def verdict(evidence, stderr, *, sigmas: float = SIGMAS) -> str:
    """``supported`` if ``evidence > sigmas·stderr``, ``not supported`` if ``< -sigmas·stderr``, else inconclusive.

    ``evidence`` is signed so that positive values favour the claim. A NaN evidence or error is inconclusive; an
    exact number (stderr 0) decides by its sign.
    """
    v, s = float(evidence), float(stderr)
    if not (math.isfinite(v) and math.isfinite(s)) or s < 0:
        return INCONCLUSIVE
    if v > sigmas * s and v != 0:
        return SUPPORTED
    if v < -sigmas * s and v != 0:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def aic_verdict(delta_aic, *, decisive: float = DECISIVE_AIC) -> str:
    """For a signed AIC difference (positive favours the claim): decisive above ``decisive`` either way."""
    d = float(delta_aic)
    if not math.isfinite(d):
        return INCONCLUSIVE
    return SUPPORTED if d > decisive else NOT_SUPPORTED if d < -decisive else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """A claim made of parts: supported (not supported) when every measured part is; ``not measured`` when none is."""
    measured = [v for v in verdicts if v != NOT_MEASURED]
    if not measured:
        return NOT_MEASURED
    if all(v == SUPPORTED for v in measured):
        return SUPPORTED
    if all(v == NOT_SUPPORTED for v in measured):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def difference(a: float, a_err: float, b: float, b_err: float) -> tuple[float, float]:
    """``(a - b, √(a_err² + b_err²))`` for independent estimates."""
    return float(a) - float(b), math.hypot(float(a_err), float(b_err))


def format_value(value, stderr=None, digits: int = 3) -> str:
    """``"v ± e"`` with ``digits`` significant digits (``"n/a"`` for NaN or None)."""
    if value is None:
        return "n/a"
    v = float(value)
    if math.isinf(v) or abs(v) >= 1e12:  # a divergent depth scale (on the critical line) prints as ∞
        return "∞" if v > 0 else "-∞"
    if not math.isfinite(v):
        return "n/a"
    if stderr is None or not math.isfinite(float(stderr)) or abs(v) >= 1e12:
        return f"{v:.{digits}g}"
    return f"{v:.{digits}g} ± {float(stderr):.2g}"


# --- the claims table -------------------------------------------------------------------------------------------
# Each builder takes the measured numbers (None where the panel did not run) and returns one row of the table. The
# rule of each is in its docstring and, in words, in the row's "observable" column of the report.


def _pm(pair) -> str:
    return "n/a" if pair is None else format_value(pair[0], pair[1])


def claim_funnel(*, perceptron: dict | None = None, network_g=None, glass_g=None) -> ClaimRow:
    """Funnel, not glass. Two parts, both must agree:

    * data (exact): T_f/T_g of the binary perceptron on digits minus the larger of the glassy controls (shuffled
      labels, random inputs), mean ± stderr over class pairs → :func:`verdict` (a teacher's labels, a planted
      funnel, are shown as the positive reference, not used as a control);
    * landscape (sampled): the networks' gap ratio g - 1 (g > 1: the best minimum is a native state below the REM
      of the others) → :func:`verdict`. The glass's g is shown beside it (a glass should give g ≲ 1).

    ``perceptron`` maps data set names to ``(mean, stderr)``; ``network_g``, ``glass_g`` are ``(g, stderr)``.
    """
    parts = []
    text = []
    controls = {k: v for k, v in (perceptron or {}).items() if k in ("shuffled", "random")}
    if perceptron and "digits" in perceptron and controls:
        worst = max(controls, key=lambda k: controls[k][0] if math.isfinite(controls[k][0]) else -math.inf)
        d, e = difference(*perceptron["digits"], *controls[worst])
        parts.append(verdict(d, e))
        text.append("perceptron T_f/T_g: " + ", ".join(f"{k} {_pm(v)}" for k, v in perceptron.items()))
    else:
        parts.append(NOT_MEASURED)
    if network_g is not None:
        parts.append(verdict(network_g[0] - 1.0, network_g[1]))
        text.append(f"nets g = {_pm(network_g)}")
    else:
        parts.append(NOT_MEASURED)
    return ClaimRow(CLAIMS[0][1], "T_f/T_g digits − max(shuffled, random) > 0 and nets gap ratio g − 1 > 0, each by 2σ",
                    "; ".join(text) or "n/a", f"p-spin g = {_pm(glass_g)}" if glass_g is not None else "n/a",
                    combine(parts))


def claim_temperature(*, learning_rate: Slope | None = None, weight_decay: Slope | None = None,
                      glass: Slope | None = None) -> ClaimRow:
    """Regularization as temperature: the networks' normalized training loss must rise with the regularization as a
    glass's energy rises with T — the slopes of ε against log10(learning rate) (the SGD temperature η/B) and against
    log10(weight decay), each by 2σ (both must agree). The glass's de/dT is shown beside them."""
    parts = [NOT_MEASURED if s is None else verdict(s.value, s.stderr) for s in (learning_rate, weight_decay)]
    net = (f"dε/dlog η = {_pm(None if learning_rate is None else learning_rate[:2])}; "
           f"dε/dlog λ = {_pm(None if weight_decay is None else weight_decay[:2])}")
    glass_text = "n/a" if glass is None else f"de/dT = {_pm(glass[:2])}"
    return ClaimRow(CLAIMS[1][1], "slope of the normalized training loss vs log η and vs log λ > 0 by 2σ", net,
                    glass_text, combine(parts))


def claim_rg() -> ClaimRow:
    """Layers as RG steps: not measured by this job (the ``rbm_rg`` job measures it)."""
    return ClaimRow(CLAIMS[2][1], "panel 7 (RBM couplings vs block-spin flow): not in this job; see the rbm_rg job",
                    "not measured", "not measured", NOT_MEASURED)


def claim_order_chaos(*, critical=None, ordered=None, depths=None, xi_c=None, failure_depth=None) -> ClaimRow:
    """Between order and chaos: plain networks initialized on the order-to-chaos line train better than the same
    networks initialized in the ordered phase — final training accuracy averaged over the depths, critical minus
    ordered, by 2σ (``critical``, ``ordered``: ``(mean over depths, stderr)``, the seeds of each depth independent).
    The mean-field depth scale ξ_c of the ordered initialization and the measured failure depth of the plain ordered
    networks are shown beside it. (The average over depths rather than the deepest depth alone: at a depth where
    both initializations fail, or both train, one depth says nothing.)"""
    observable = "training accuracy averaged over depths, critical − ordered init, > 0 by 2σ"
    if critical is None or ordered is None:
        return ClaimRow(CLAIMS[3][1], observable, "n/a", "n/a", NOT_MEASURED)
    d, e = difference(*critical, *ordered)
    span = "" if depths is None else f" (depths {min(depths)}–{max(depths)})"
    net = f"plain{span}: critical {_pm(critical)} vs ordered {_pm(ordered)}"
    theory_text = f"mean-field ξ_c = {format_value(xi_c)}; plain failure depth {format_value(failure_depth)}"
    return ClaimRow(CLAIMS[3][1], observable, net, theory_text, verdict(d, e))


def claim_spread(*, network: Slope | None = None, glass: Slope | None = None) -> ClaimRow:
    """Minima concentrate: the exponent s of the networks' spread of ε ∝ width^s must be negative by 2σ; the glass's
    exponent (n^s, s ≈ -1/2 expected) is shown beside it."""
    part = NOT_MEASURED if network is None else verdict(-network.value, network.stderr)
    return ClaimRow(CLAIMS[4][1], "exponent s of spread(ε) ∝ size^s < 0 by 2σ",
                    "n/a" if network is None else f"s = {_pm(network[:2])}",
                    "n/a" if glass is None else f"s = {_pm(glass[:2])}", part)


def claim_low_index(*, network: Correlation | None = None, glass: Correlation | None = None) -> ClaimRow:
    """Low index near the bottom: over the points reached along the descent (every stage, size and start), the
    Hessian index must rise with the normalized energy — Fisher z of their correlation > 0 by 2σ (networks); the
    glass's correlation is shown beside it."""
    part = NOT_MEASURED if network is None else verdict(network.z, network.z_stderr)

    def text(c):
        return "n/a" if c is None else f"r(ε, index) = {format_value(c.r)} (z = {_pm((c.z, c.z_stderr))})"

    return ClaimRow(CLAIMS[5][1], "correlation of Hessian index with ε > 0 by 2σ (Fisher z)", text(network),
                    text(glass), part)


def claim_long_range(*, digits=None, controls: dict | None = None) -> ClaimRow:
    """Long-range correlations of the data: the digits' pixel I(d) must favour a power law over an exponential by
    ΔAIC > 10 (``digits = (winner, delta_aic)``; the signed difference AIC_exp - AIC_pow decides). The sequence
    controls (Markov: exponential expected; PCFG: power law) are shown beside it."""
    if digits is None:
        part, net = NOT_MEASURED, "n/a"
    else:
        winner, delta = digits
        signed = float(delta) if winner == "power_law" else -float(delta)
        part, net = aic_verdict(signed), f"digits pixels: {winner} by ΔAIC {format_value(delta)}"
    ctrl = "n/a" if not controls else "; ".join(f"{k}: {w} by ΔAIC {format_value(d)}" for k, (w, d) in
                                                 controls.items())
    return ClaimRow(CLAIMS[6][1], "I(d) power law vs exponential, ΔAIC > 10", net, f"controls: {ctrl}", part)
