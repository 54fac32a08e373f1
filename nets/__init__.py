"""Networks: pure MLPs (``mlp``), datasets and generators (``data``), the optax training loop (``train``) and
HDF5 input/output of networks and histories (``io``) and restricted Boltzmann machines (``rbm``).

Public names: ``mlp.init``, ``mlp.apply``, ``data.digits``, ``data.infinite_digits``, ``train.fit``,
``train.fit_many`` and the re-exports below.
"""
from . import data, io, mlp, rbm, train
from .data import Digits, Labelled, digits, infinite_digits
from .mlp import MLP
from .train import History, Stream, TrainConfig, Trainer, fit, fit_many, outcome

__all__ = [
    "data",
    "io",
    "mlp",
    "rbm",
    "train",
    "Digits",
    "Labelled",
    "digits",
    "infinite_digits",
    "MLP",
    "History",
    "Stream",
    "TrainConfig",
    "Trainer",
    "fit",
    "fit_many",
    "outcome",
]
