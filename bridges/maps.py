"""Network → glass maps (one import for the three families; each lives in its own module).

* :mod:`bridges.choromanska` — a ReLU network and its data → the H-spin spherical glass of Choromanska et al. 2015
  (``choromanska``, ``path_energy``, ``expected_loss``, ``activation_rate``).
* :mod:`bridges.covariance` — a loss as a random field on the sphere → the mixed p-spin with the same covariance
  ξ(q), an isotropy test and the mixed-model theory (``match_covariance`` and its parts).
* :mod:`bridges.hopfield` — stored patterns → the Hopfield network (a ``physics.pairwise.Pairwise`` model) and
  recall; linear-regression data → the spherical 2-spin (``hopfield``, ``retrieval``, ``regression_landscape``).
"""
from .choromanska import *  # noqa: F401,F403
from .choromanska import __all__ as _choromanska_all
from .covariance import *  # noqa: F401,F403
from .covariance import __all__ as _covariance_all
from .hopfield import *  # noqa: F401,F403
from .hopfield import __all__ as _hopfield_all

__all__ = [*_choromanska_all, *_covariance_all, *_hopfield_all]
