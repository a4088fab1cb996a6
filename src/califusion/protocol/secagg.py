"""Secure aggregation over HTTP: the job's parameters and the API shapes of a SecAgg+ round.

A job in ``secure`` or ``blind`` mode runs one SecAgg+ session per round attempt on the
coordinator (``/v1/jobs/{id}/rounds/{n}/secagg/...``). Trainers fetch the session, post their
protocol messages (bytes of ``fl.secagg.wire``, base64url; a masked vector goes as a blob and
the message names its digest) and poll their inbox. The session's parameters are a pure
function of the job spec and the participants (:func:`plan_arguments`), so a trainer recomputes
them instead of trusting the coordinator's copy.

What is summed: trainer k adds ``(n_k / n_max) · (w_k − w_global)``, where n_k is the number of
samples it declared when it joined and n_max the largest declared count among the round's
participants. The coordinator's modular sum therefore dequantizes to Σ_k (n_k/n_max)·Δ_k, and
a member divides by Σ_{k ∈ contributors} n_k/n_max (public) to get FedAvg's weighted mean
update. Each coordinate is clipped to ±``clip`` before quantization; with no clipping the mean
is within ``n · step / (2 · Σ n_k/n_max)`` per coordinate of plaintext FedAvg, where
``step = 2·clip / (2^b − 1)`` and b is the largest bit width whose n-fold sum cannot wrap modulo
2^32 (or 2^64): see ``fl.secagg.quantize``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from califusion.ml.weights import parameter_count

if TYPE_CHECKING:
    from califusion.protocol.jobs import JobSpec

B64 = Annotated[str, Field(max_length=4_000_000, pattern=r"^[A-Za-z0-9_-]*$")]
AggregationMode = Literal["publisher", "secure", "blind"]
# The advertise stage also covers local training, so it gets this many stage timeouts.
ADVERTISE_WINDOW_STAGES = 3
# The five stages (the advertise window counting ADVERTISE_WINDOW_STAGES) take at most 7 of 8
# parts of the round deadline.
_DEFAULT_STAGE_FRACTION = 8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecureAggregationSpec(_Strict):
    """Parameters of SecAgg+ for a job in secure or blind mode."""

    clip: float = Field(
        default=10.0,
        gt=0,
        le=1e9,
        description="bound on each coordinate of a trainer's sample-weighted update",
    )
    modulus_bits: Literal[32, 64] = 32
    max_dropout: float = Field(
        default=0.3, ge=0, lt=0.5, description="fraction of trainers that may drop per round"
    )
    max_corruption: float = Field(
        default=0.0,
        ge=0,
        le=0.3,
        description="fraction of trainers that may collude with the coordinator: raises the "
        "thresholds (and k) so that they, with the coordinator, learn nothing more",
    )
    neighbours: int | None = Field(
        default=None, ge=1, description="k; default planned from n, max_dropout, max_corruption"
    )
    dense: bool = Field(default=False, description="all-to-all (SecAgg) instead of SecAgg+")
    stage_timeout_seconds: float | None = Field(
        default=None, gt=0, description="default: round deadline / 8"
    )


def stage_timeout(spec: JobSpec) -> float:
    configured = spec.secure_aggregation.stage_timeout_seconds
    return configured or spec.round_deadline_seconds / _DEFAULT_STAGE_FRACTION


def session_start(spec: JobSpec, opened_at: float) -> float:
    """The server's start time: the advertise stage then closes at most
    ``ADVERTISE_WINDOW_STAGES`` stage timeouts after the round opened."""
    return opened_at + (ADVERTISE_WINDOW_STAGES - 1) * stage_timeout(spec)


def plan_arguments(spec: JobSpec, participants: int) -> dict[str, Any]:
    """Keyword arguments of ``SecAggConfig.plan`` for a round of ``participants`` trainers.

    The dropout tolerance is capped at what the round can survive anyway: it needs
    ``min_trainers_per_round`` contributors, so more than ``n − min`` dropouts fail it, and
    even the all-to-all graph with an honest-majority threshold (t = ⌊(n−1)/2⌋ + 1 of n − 1
    neighbours) loses a client's secrets past ``n − 1 − t`` dropouts (none for n ≤ 3: in
    such small rounds every participant must finish).
    """
    secure = spec.secure_aggregation
    n = participants
    needed = min(n, spec.min_trainers_per_round)
    dense_slack = max(0, (n - 1) - ((n - 1) // 2 + 1))
    tolerable = min(n - needed, dense_slack) / n if n else 0.0
    return {
        "dimension": parameter_count(spec.model),
        "clip": secure.clip,
        "max_dropout": min(secure.max_dropout, tolerable),
        "dense": secure.dense,
        "degree": secure.neighbours,
        "modulus_bits": secure.modulus_bits,
        "stage_timeout": stage_timeout(spec),
        "min_contributors": spec.min_trainers_per_round,
        "max_corruption": secure.max_corruption,
    }


class SecAggParticipant(_Strict):
    client: int = Field(ge=0, description="the trainer's id in the protocol")
    principal: str
    signing_public: B64
    declared_samples: int = Field(ge=1)


class SecAggSession(_Strict):
    """One round attempt's SecAgg+ session, as anyone in the job sees it."""

    job_id: str
    round: int
    attempt: int
    mode: Literal["secure", "blind"]
    round_id: B64
    config: dict[str, Any]
    start: float
    participants: list[SecAggParticipant]
    stage: str
    deadline: float
    you: int | None = Field(default=None, description="the caller's client id, if it takes part")
    abort_reason: str = ""
    result: str | None = Field(default=None, description="blob: the modular sum, once done")
    contributors: list[int] = Field(default_factory=list)
    dropped: list[int] = Field(default_factory=list)


class PostSecAggMessage(_Strict):
    attempt: int = Field(ge=0)
    message: B64


class SecAggInbox(_Strict):
    """The session's stage and every server message released to the caller so far."""

    attempt: int
    stage: str
    deadline: float
    messages: list[B64] = Field(default_factory=list, max_length=16)
    abort_reason: str = ""


class SecAggEventInfo(_Strict):
    at: float
    body: B64 = ""


class SecAggEvidence(_Strict):
    """What a member needs to recompute a finished round (``califusion job verify``)."""

    transcript: str = Field(description="canonical JSON, as signed")
    signature: B64
    events: list[SecAggEventInfo]


class CoordinatorInfo(_Strict):
    """The coordinator's service identity: it signs round transcripts."""

    principal: str
    signing_public: B64
