"""Random energy models on σ ∈ {−1, +1}^n and their exact, enumerated thermodynamics.

* ``models``: REM, GREM, the Ising p-spin (the correlated REM) and the funnel, the hashed normals behind them and
  the state-index helpers (``index_words``, ``spins_from_index``, ``overlap``).
* ``perceptron``: the binary perceptron's training-error landscape on given data, a data-correlated REM.
* ``enumerate``: the streaming enumeration of all 2^n states — density of states, ln Z, U, S, F(Q).
* ``folding``: first-passage (folding) times under single-spin-flip kernels.
* ``transitions``: T_g (heat-capacity peak) and T_f (native occupancy ½) read off exact thermodynamics.

Every public name is re-exported here (``physics.rem.REM`` …), and so are, as ``_X as _X``, the private constants
and compiled chunk programs (``_C``, ``_H``, ``_chunk_energies``, ``_chunk_histogram``) that
``runs/benchmarks/rem.py`` reproduces in NumPy.
"""
from .enumerate import _H as _H
from .enumerate import (
    DensityOfStates,
    Exact,
    density_of_states,
    energy_chunks,
    exact_thermodynamics,
    free_energy_profile,
)
from .enumerate import _chunk_energies as _chunk_energies
from .enumerate import _chunk_histogram as _chunk_histogram
from .folding import folding_time
from .models import _C as _C
from .models import GREM, REM, Funnel, IsingPSpin, index_words, overlap, spins_from_index
from .perceptron import Perceptron
from .transitions import TRANSITION_GRID, folding_temperature, heat_capacity_peak

__all__ = [
    "REM",
    "GREM",
    "IsingPSpin",
    "Funnel",
    "Perceptron",
    "Exact",
    "DensityOfStates",
    "density_of_states",
    "energy_chunks",
    "index_words",
    "spins_from_index",
    "overlap",
    "exact_thermodynamics",
    "free_energy_profile",
    "folding_time",
    "TRANSITION_GRID",
    "heat_capacity_peak",
    "folding_temperature",
]
