"""Bridges between networks and glasses: landscape probes of networks, and maps of networks and data into models.

Probes (issue "Bridges I"): ``spectra`` (weight-matrix spectra, a JAX-native WeightWatcher), ``hessian`` (Lanczos,
stochastic Lanczos quadrature and Hutchinson for loss Hessians and the p-spin's Riemannian Hessian), ``paths``
(linear paths, filter-normalized planes, Bézier mode connectivity), ``overlaps`` (permutation-aligned overlaps, P(q)),
``chaos`` (mean-field signal propagation: the order-to-chaos line), ``information`` (mutual information vs
distance). Maps (issue "Bridges II"): ``maps`` (Choromanska's H-spin glass, covariance matching to a mixed spherical
model, Hopfield couplings, the regression landscape), ``data_rem`` (the binary perceptron's error landscape as a
data-correlated REM, enumerated exactly).
"""
from . import chaos, data_rem, hessian, information, maps, overlaps, paths, spectra

__all__ = ["chaos", "data_rem", "hessian", "information", "maps", "overlaps", "paths", "spectra"]
