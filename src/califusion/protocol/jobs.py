"""The public job spec and the coordinator's HTTP API shapes.

These are the only types the coordinator and the agents share. Binary values travel as
unpadded base64url strings; blob references are SHA-256 hex digests of the stored ciphertext;
token amounts are integers of the smallest unit.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from califusion.ml.spec import DataSchema, ModelSpec
from califusion.protocol.payout import PayoutSpec
from califusion.protocol.secagg import AggregationMode, SecureAggregationSpec

Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of a blob")]
PrincipalText = Annotated[str, Field(min_length=7, max_length=63, pattern=r"^[a-z2-7-]+$")]
B64 = Annotated[str, Field(max_length=1_000_000, pattern=r"^[A-Za-z0-9_-]*$")]
JobId = Annotated[str, Field(pattern=r"^job-[0-9a-f]{32}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategySpec(_Strict):
    """How the aggregator turns a round's updates into the next global model."""

    name: Literal["fedavg", "fedprox", "fedadam", "fedyogi"] = "fedavg"
    server_learning_rate: float = Field(default=1.0, gt=0, le=100)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.99, ge=0, lt=1)
    tau: float = Field(default=1e-3, gt=0, le=1, description="adaptivity (FedAdam/FedYogi)")


class JobSpec(_Strict):
    """Everything public about a job. No code, only data."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5_000)
    model: ModelSpec
    data_schema: DataSchema
    rounds: int = Field(ge=1, le=10_000)
    trainers_wanted: int = Field(ge=1, le=10_000)
    min_trainers_per_round: int = Field(ge=1, le=10_000)
    round_deadline_seconds: float = Field(default=300.0, gt=0, le=7 * 24 * 3600)
    on_round_shortfall: Literal["retry", "fail"] = "retry"
    max_round_retries: int = Field(default=2, ge=0, le=100)
    aggregation: StrategySpec = StrategySpec()
    aggregation_mode: AggregationMode = Field(
        default="secure",
        description="publisher: the publisher's agent opens each update; secure: the "
        "coordinator sums masked updates (SecAgg+); blind: that sum is also padded",
    )
    secure_aggregation: SecureAggregationSpec = SecureAggregationSpec()
    reward_pool: int = Field(default=0, ge=0, description="smallest token units")
    stake: int = Field(default=0, ge=0, description="smallest token units per trainer")
    price: int | None = Field(default=None, ge=0, description="model access price, if sold")
    payout: PayoutSpec = PayoutSpec()

    @model_validator(mode="after")
    def _coherent(self) -> JobSpec:
        if self.min_trainers_per_round > self.trainers_wanted:
            raise ValueError("min_trainers_per_round cannot exceed trainers_wanted")
        arch = self.model.architecture
        if len(self.data_schema.features) != arch.n_features:
            raise ValueError(
                f"data_schema has {len(self.data_schema.features)} feature columns but the "
                f"model expects n_features={arch.n_features}"
            )
        n_classes = self.data_schema.label.n_classes
        if self.model.task == "classification":
            wanted = getattr(arch, "n_classes", None) or getattr(arch, "n_outputs", None)
            if n_classes != wanted:
                raise ValueError(
                    f"data_schema.label.n_classes ({n_classes}) must equal the model's "
                    f"classes ({wanted})"
                )
        return self


class JobState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    TRAINING = "training"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RoundState(StrEnum):
    COLLECTING = "collecting"  # trainers fetch the model and submit updates
    AGGREGATING = "aggregating"  # closed to updates; the aggregator publishes the result
    CLOSED = "closed"  # result published
    FAILED = "failed"  # too few updates and no retries left


class MemberState(StrEnum):
    PENDING = "pending"  # asked to join; waits for the admission policy / key
    ADMITTED = "admitted"  # job key wrapped to it
    REJECTED = "rejected"


# ---- requests -----------------------------------------------------------------------------


class RegisterPrincipal(_Strict):
    signing_public: B64 = Field(description="raw Ed25519 public key, 32 bytes")
    agreement_public: B64 = Field(description="raw X25519 public key, 32 bytes")
    display_name: str = Field(default="", max_length=100)


class CreateJob(_Strict):
    spec: JobSpec
    initial_model: Digest = Field(description="blob: initial weights sealed under the job key")


class JoinJob(_Strict):
    declared_samples: int = Field(ge=1, le=10**12)


class Admission(_Strict):
    trainer: PrincipalText
    wrapped_key: B64 = Field(description="job key sealed to the trainer's agreement key")


class AdmitTrainers(_Strict):
    admissions: list[Admission] = Field(default_factory=list, max_length=10_000)
    rejections: list[PrincipalText] = Field(default_factory=list, max_length=10_000)


class SubmitUpdate(_Strict):
    attempt: int = Field(ge=0)
    update: Digest = Field(description="blob: update sealed to the aggregator's agreement key")


class RoundMetrics(_Strict):
    loss: float | None = None
    accuracy: float | None = Field(default=None, ge=0, le=1)
    train_loss: float | None = None
    samples: int = Field(default=0, ge=0)


class PublishResult(_Strict):
    attempt: int = Field(ge=0)
    model: Digest = Field(description="blob: next global model sealed under the job key")
    contributors: list[PrincipalText] = Field(max_length=10_000)
    metrics: RoundMetrics


# ---- responses ----------------------------------------------------------------------------


class PrincipalInfo(_Strict):
    principal: PrincipalText
    signing_public: B64
    agreement_public: B64
    display_name: str


class BlobRef(_Strict):
    digest: Digest
    size: int


class MemberInfo(_Strict):
    trainer: PrincipalText
    state: MemberState
    declared_samples: int
    joined_at: float
    rounds_contributed: int


class UpdateInfo(_Strict):
    trainer: PrincipalText
    update: Digest
    submitted_at: float


class RoundInfo(_Strict):
    number: int
    attempt: int
    state: RoundState
    model: Digest = Field(description="global model this round trains from")
    opened_at: float
    deadline: float
    updates_received: int
    result_model: Digest | None = None
    contributors: list[PrincipalText] = Field(default_factory=list)
    metrics: RoundMetrics | None = None


class JobInfo(_Strict):
    job_id: JobId
    publisher: PrincipalText
    aggregator_agreement_public: B64
    spec: JobSpec
    state: JobState
    state_reason: str = ""
    created_at: float
    current_round: int = Field(description="1-based; 0 before training starts")
    rounds_completed: int
    initial_model: Digest
    final_model: Digest | None = None
    members: list[MemberInfo] = Field(default_factory=list)


class JobSummary(_Strict):
    job_id: JobId
    publisher: PrincipalText
    title: str
    state: JobState
    rounds: int
    rounds_completed: int
    trainers_wanted: int
    trainers_admitted: int
    reward_pool: int
    stake: int


class WrappedKey(_Strict):
    job_id: JobId
    wrapped_key: B64
