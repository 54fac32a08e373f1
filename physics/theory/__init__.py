"""Exact and published results as plain functions (see ``../shared/REFERENCES.md`` for sources and conventions).

Each family lives in its own private module and is re-exported here:
``_ising`` (Onsager, Yang, Kaufman's finite torus, Binder crossing), ``_pspin`` (spherical p-spin, CS units),
``_rem`` (REM, GREM, Bryngelson–Wolynes), ``_networks`` (mean-field signal propagation, random-matrix laws).
"""
from ._ising import *  # noqa: F401,F403
from ._ising import __all__ as _ising_all
from ._mixed import *  # noqa: F401,F403
from ._mixed import __all__ as _mixed_all
from ._networks import *  # noqa: F401,F403
from ._networks import __all__ as _networks_all
from ._pspin import *  # noqa: F401,F403
from ._pspin import __all__ as _pspin_all
from ._rem import *  # noqa: F401,F403
from ._rem import __all__ as _rem_all

__all__ = [*_ising_all, *_pspin_all, *_rem_all, *_networks_all, *_mixed_all]
