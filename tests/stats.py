"""Statistical helpers shared by the tests: χ² goodness of fit and combined p-values (NetKet's sampler test)."""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["boltzmann", "chi2_pvalue", "combined_pvalue", "assert_within"]


def boltzmann(energies, temperature) -> np.ndarray:
    """Exact Boltzmann probabilities e^{-E/T}/Z of enumerated energies (float64, shifted by the minimum)."""
    e = np.asarray(energies, np.float64)
    w = np.exp(-(e - e.min()) / temperature)
    return w / w.sum()


def chi2_pvalue(observed_counts, expected_probs, min_expected: float = 5.0) -> float:
    """p-value of Pearson's χ² test of counts against probabilities; cells with < ``min_expected`` are pooled."""
    obs = np.asarray(observed_counts, dtype=np.float64).ravel()
    p = np.asarray(expected_probs, dtype=np.float64).ravel()
    p = p / p.sum()
    exp = obs.sum() * p
    order = np.argsort(exp)
    small = exp[order] < min_expected
    big = order[~small]
    o = list(obs[big])
    e = list(exp[big])
    if small.any() and exp[order[small]].sum() > 0:  # a pool of impossible cells only (expected 0) adds nothing
        o.append(obs[order[small]].sum())
        e.append(exp[order[small]].sum())
    o, e = np.array(o), np.array(e)
    chi2 = np.sum((o - e) ** 2 / e)
    return float(stats.chi2.sf(chi2, df=len(o) - 1))


def combined_pvalue(pvalues) -> float:
    """Fisher's combination of independent p-values (NetKet combines repeated sampler tests this way)."""
    # An exact 0 (a hopeless fit) would make Fisher's log diverge: clip so the failing values are still reported.
    return float(stats.combine_pvalues(np.clip(np.asarray(pvalues, np.float64), 1e-300, 1.0), method="fisher")[1])


def assert_within(value, expected, stderr, k: float = 3.0, allowance: float = 0.0, what: str = "value"):
    """Assert ``|value - expected| ≤ k·stderr + allowance`` with a message that shows every number."""
    dev = abs(float(value) - float(expected))
    bound = k * float(stderr) + allowance
    assert dev <= bound, (
        f"{what}: {value:.6g} vs theory {expected:.6g}: |Δ| = {dev:.3g} > {k}·{stderr:.3g} + {allowance:.3g}"
    )
