"""Round parameters every party of a SecAgg+ round agrees on, and the protocol's stages."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from califusion.core.errors import InvalidInput
from califusion.fl.secagg.graph import NeighbourGraph, honest_majority_threshold, plan_degree
from califusion.fl.secagg.quantize import Quantizer

ROUND_ID_BYTES = 16


class Stage(enum.StrEnum):
    """Stages of a round, in order; a dropout is named by the stage whose message is missing."""

    ADVERTISE_KEYS = "advertise-keys"
    SHARE_KEYS = "share-keys"
    MASKED_INPUT = "masked-input"
    UNMASK = "unmask"
    DONE = "done"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class SecAggConfig:
    """Public parameters of one round.

    ``participants`` are the client ids admitted to the round (sorted); ``degree`` is k, the
    number of neighbours of each client (``len(participants) - 1`` for the dense graph);
    ``threshold`` is t, the Shamir threshold within a neighbourhood; ``min_survivors`` is the
    fewest clients the server continues with at any stage; ``dimension`` is the length of
    every update; ``stage_timeout`` the seconds the server waits at each stage.
    """

    participants: tuple[int, ...]
    dimension: int
    degree: int
    threshold: int
    min_survivors: int
    quantizer: Quantizer
    stage_timeout: float = 60.0

    def __post_init__(self) -> None:
        n = len(self.participants)
        if n < 2 or list(self.participants) != sorted(set(self.participants)):
            raise InvalidInput("participants are at least two distinct ids in ascending order")
        if any(pid < 0 or pid >= 2**63 for pid in self.participants):
            raise InvalidInput("participant ids are non-negative 63-bit integers")
        if self.dimension < 1:
            raise InvalidInput(f"dimension must be positive, got {self.dimension}")
        if not 1 <= self.degree <= n - 1:
            raise InvalidInput(f"degree must be in 1..{n - 1}, got {self.degree}")
        if not 1 <= self.threshold <= self.degree:
            raise InvalidInput(f"threshold must be in 1..{self.degree}, got {self.threshold}")
        if not self.threshold + 1 <= self.min_survivors <= n:
            raise InvalidInput(
                f"min_survivors must be in {self.threshold + 1}..{n}, got {self.min_survivors}"
            )
        if self.quantizer.max_contributors < n:
            raise InvalidInput(
                f"the quantizer sums at most {self.quantizer.max_contributors} updates "
                f"without overflow; this round has {n} participants"
            )
        if not self.stage_timeout > 0:
            raise InvalidInput("stage_timeout must be positive")

    @classmethod
    def plan(
        cls,
        participants: Iterable[int],
        dimension: int,
        *,
        clip: float,
        max_dropout: float = 0.1,
        dense: bool = False,
        modulus_bits: int = 32,
        norm_clip: float | None = None,
        stochastic: bool = False,
        stage_timeout: float = 60.0,
        failure_bits: int = 20,
        min_survivors: int | None = None,
    ) -> SecAggConfig:
        """Parameters for ``participants`` that survive a ``max_dropout`` fraction of dropouts.

        The degree comes from :func:`plan_degree` (or the dense graph), the threshold is an
        honest majority of each neighbourhood, and by default the server continues while at
        least t + 1 clients remain (a client and t neighbours: the fewest that can finish);
        pass a larger ``min_survivors`` to refuse aggregates over too few clients.
        """
        ids = tuple(sorted(set(participants)))
        n = len(ids)
        if dense:
            degree = n - 1
            threshold = honest_majority_threshold(degree)
        else:
            degree, threshold = plan_degree(n, max_dropout, failure_bits=failure_bits)
        return cls(
            participants=ids,
            dimension=dimension,
            degree=degree,
            threshold=threshold,
            min_survivors=threshold + 1 if min_survivors is None else min_survivors,
            quantizer=Quantizer.for_clients(
                n,
                clip,
                modulus_bits=modulus_bits,
                norm_clip=norm_clip,
                stochastic=stochastic,
            ),
            stage_timeout=stage_timeout,
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        """Words of the modular sum: uint32 for 2^32, uint64 for 2^64."""
        return self.quantizer.dtype

    def graph(self, round_id: bytes) -> NeighbourGraph:
        return NeighbourGraph(self.participants, self.degree, round_id)
