"""Round parameters every party of a SecAgg+ round agrees on, and the protocol's stages."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from califusion.core.errors import InvalidInput
from califusion.crypto.prg import GCM_KEYSTREAM, LEGACY_CTR, check_prg
from califusion.fl.secagg.commitment import BLAKE3, LEGACY_SHA256, check_commitment
from califusion.fl.secagg.graph import (
    NeighbourGraph,
    consistency_threshold,
    corruption_threshold,
    plan_degree,
)
from califusion.fl.secagg.quantize import Quantizer

ROUND_ID_BYTES = 16


class Stage(enum.StrEnum):
    """Stages of a round, in order; a dropout is named by the stage whose message is missing."""

    ADVERTISE_KEYS = "advertise-keys"
    SHARE_KEYS = "share-keys"
    MASKED_INPUT = "masked-input"
    CONSISTENCY_CHECK = "consistency"
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
    every update; ``stage_timeout`` the seconds the server waits at each stage;
    ``max_corruption`` the fraction of clients that may collude with the server, which raises
    the signatures the consistency check needs (:attr:`consistency_threshold`);
    ``commitment`` the hash masked inputs are committed with (``commitment.py``) and ``prg``
    the stream masks are expanded from (``crypto.prg``). Parameters stored before either field
    existed mean the first protocol's SHA-256 and AES-256-CTR (:meth:`from_dict`).
    """

    participants: tuple[int, ...]
    dimension: int
    degree: int
    threshold: int
    min_survivors: int
    quantizer: Quantizer
    stage_timeout: float = 60.0
    max_corruption: float = 0.0
    commitment: str = BLAKE3
    prg: str = GCM_KEYSTREAM

    def __post_init__(self) -> None:
        check_commitment(self.commitment)
        check_prg(self.prg)
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
        if self.consistency_threshold > n:
            raise InvalidInput(
                f"{n} clients cannot out-vote a server colluding with "
                f"{self.max_corruption:.0%} of them in the consistency check"
            )

    @property
    def consistency_threshold(self) -> int:
        """Signatures over one survivor set a client needs before it reveals any share."""
        return consistency_threshold(len(self.participants), self.max_corruption)

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
        degree: int | None = None,
        min_contributors: int = 0,
        max_corruption: float = 0.0,
    ) -> SecAggConfig:
        """Parameters for ``participants`` that survive a ``max_dropout`` fraction of dropouts.

        The degree comes from :func:`plan_degree` (or the dense graph), the threshold is an
        honest majority of each neighbourhood, and by default the server continues while at
        least t + 1 clients remain (a client and t neighbours: the fewest that can finish);
        pass a larger ``min_survivors`` to refuse aggregates over too few clients.
        ``degree`` overrides the planned k (an even number below n − 1, or n − 1 for the dense
        graph; larger values mean dense), e.g. to compare with another system at its own k;
        the round then tolerates only the dropouts that k happens to allow.
        ``min_contributors`` raises the default ``min_survivors`` to that many (at most n):
        the fewest contributors a caller accepts a sum from. ``max_corruption`` is the
        fraction of clients that may collude with the server: the threshold then also covers
        their shares (and the planned k grows to keep the round correct and the honest
        clients connected); 0 means an honest majority of each neighbourhood.
        """
        ids = tuple(sorted(set(participants)))
        n = len(ids)
        if degree is not None or dense:
            degree = n - 1 if degree is None else min(degree, n - 1)
            threshold = corruption_threshold(n, degree, max_corruption)
            if threshold > degree:
                raise InvalidInput(
                    f"{degree} neighbours cannot hide a client from a server colluding with "
                    f"{max_corruption:.0%} of the clients; plan the degree instead"
                )
        else:
            degree, threshold = plan_degree(
                n, max_dropout, failure_bits=failure_bits, max_corruption=max_corruption
            )
        return cls(
            participants=ids,
            dimension=dimension,
            degree=degree,
            threshold=threshold,
            min_survivors=(
                max(threshold + 1, min(n, min_contributors))
                if min_survivors is None
                else min_survivors
            ),
            quantizer=Quantizer.for_clients(
                n,
                clip,
                modulus_bits=modulus_bits,
                norm_clip=norm_clip,
                stochastic=stochastic,
            ),
            stage_timeout=stage_timeout,
            max_corruption=max_corruption,
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        """Words of the modular sum: uint32 for 2^32, uint64 for 2^64."""
        return self.quantizer.dtype

    def graph(self, round_id: bytes) -> NeighbourGraph:
        return NeighbourGraph(self.participants, self.degree, round_id)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, for storing a round's parameters and sending them to clients."""
        q = self.quantizer
        data: dict[str, Any] = {
            "participants": list(self.participants),
            "dimension": self.dimension,
            "degree": self.degree,
            "threshold": self.threshold,
            "min_survivors": self.min_survivors,
            "stage_timeout": self.stage_timeout,
            "max_corruption": self.max_corruption,
            "quantizer": {
                "clip": q.clip,
                "bits": q.bits,
                "modulus_bits": q.modulus_bits,
                "norm_clip": q.norm_clip,
                "stochastic": q.stochastic,
            },
        }
        # Parameters signed before these fields existed keep their exact form, so their
        # transcripts still verify: the first protocol's choice is the field's absence.
        if self.commitment != LEGACY_SHA256:
            data["commitment"] = self.commitment
        if self.prg != LEGACY_CTR:
            data["prg"] = self.prg
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecAggConfig:
        """Inverse of :meth:`to_dict`; malformed data is :class:`InvalidInput`."""
        try:
            q = data["quantizer"]
            return cls(
                participants=tuple(int(pid) for pid in data["participants"]),
                dimension=int(data["dimension"]),
                degree=int(data["degree"]),
                threshold=int(data["threshold"]),
                min_survivors=int(data["min_survivors"]),
                stage_timeout=float(data["stage_timeout"]),
                max_corruption=float(data.get("max_corruption", 0.0)),
                quantizer=Quantizer(
                    clip=float(q["clip"]),
                    bits=int(q["bits"]),
                    modulus_bits=int(q["modulus_bits"]),
                    norm_clip=None if q["norm_clip"] is None else float(q["norm_clip"]),
                    stochastic=bool(q["stochastic"]),
                ),
                commitment=str(data.get("commitment", LEGACY_SHA256)),
                prg=str(data.get("prg", LEGACY_CTR)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed secure-aggregation parameters: {exc}") from None


def session_round_id(*labels: str | int) -> bytes:
    """A round id bound to what the round is (job, round number, attempt): every party
    derives the same one and a message signed for one round cannot be replayed in another."""
    encoded = [str(label).encode("utf-8") for label in labels]
    material = b"".join(len(raw).to_bytes(4, "big") + raw for raw in encoded)
    return hashlib.sha256(b"califusion/secagg/round-id/v1\x00" + material).digest()[:ROUND_ID_BYTES]
