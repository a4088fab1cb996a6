"""Federated learning: server aggregation strategies (and secure aggregation in ``secagg``).

Imports ``califusion.ml``, ``califusion.crypto`` and ``califusion.core`` only; job specs from
``califusion.protocol`` are passed in as plain parameters.
"""

from califusion.fl.strategies import (
    STRATEGIES,
    FedAdam,
    FedAvg,
    FedProx,
    FedYogi,
    Strategy,
    Update,
    strategy_for,
    weighted_mean,
)

__all__ = [
    "STRATEGIES",
    "FedAdam",
    "FedAvg",
    "FedProx",
    "FedYogi",
    "Strategy",
    "Update",
    "strategy_for",
    "weighted_mean",
]
