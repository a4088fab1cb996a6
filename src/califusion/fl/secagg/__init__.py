"""Secure aggregation (SecAgg+, Bell et al. 2020, over Bonawitz et al. 2017) as pure state machines.

A round: advertise keys → share keys (Shamir shares of the self-mask seed and of the pairwise
mask key, to k neighbours) → masked input (fixed-point mod 2^32 or 2^64, AES-CTR masks) →
consistency check (survivors sign the survivor set; no client unmasks without a majority's
signatures over the set it signed, so a lying server cannot show clients different sets) →
unmask (survivors reveal self-mask shares of survivors and key shares of the dropped). The
server learns only the sum of the survivors' quantized inputs; in blind mode not even that.

``SecAggClient`` and ``SecAggServer`` take messages in and return messages out, with time as a
parameter; ``simulate_round`` wires them in one process. ``wire`` turns messages into bytes,
``replay`` rebuilds a server from its logged inputs, ``transcript`` is the aggregator's signed
account of a round and ``audit`` recomputes a round from it.
"""

from califusion.fl.secagg.audit import Audit, Finding, audit_round
from califusion.fl.secagg.client import SecAggClient
from califusion.fl.secagg.commitment import COMMITMENTS, vector_digest
from califusion.fl.secagg.config import ROUND_ID_BYTES, SecAggConfig, Stage, session_round_id
from califusion.fl.secagg.consistency import check_certificate
from califusion.fl.secagg.errors import (
    DoubleRevealRefused,
    DuplicateMessage,
    LateMessage,
    ProtocolViolation,
    ReplayedMessage,
    SecAggAborted,
    WrongRound,
)
from califusion.fl.secagg.graph import (
    NeighbourGraph,
    consistency_threshold,
    corruption_threshold,
    honest_majority_threshold,
    plan_degree,
)
from califusion.fl.secagg.messages import (
    AdvertiseKeys,
    ClientMessage,
    ConsistencyCheck,
    ConsistencySignature,
    EncryptedShare,
    KeysAdvertised,
    MaskedInput,
    RevealedShare,
    ServerMessage,
    ShareKeys,
    SharesForwarded,
    UnmaskRequest,
    UnmaskShares,
    survivor_view,
)
from califusion.fl.secagg.pad import pad_seed, remove_pad
from califusion.fl.secagg.quantize import Quantizer, bits_for, clip_by_norm
from califusion.fl.secagg.replay import Applied, Event, apply_event, log_digest, replay
from califusion.fl.secagg.server import SecAggResult, SecAggServer
from califusion.fl.secagg.simulation import RoundTrace, simulate_round
from califusion.fl.secagg.transcript import (
    Commitment,
    Transcript,
    sign_transcript,
    verify_transcript,
)
from califusion.fl.secagg.wire import (
    MaskedInputRef,
    WireClientMessage,
    decode_client,
    decode_server,
    encode_client,
    encode_server,
)

__all__ = [
    "COMMITMENTS",
    "ROUND_ID_BYTES",
    "AdvertiseKeys",
    "Applied",
    "Audit",
    "ClientMessage",
    "Commitment",
    "ConsistencyCheck",
    "ConsistencySignature",
    "DoubleRevealRefused",
    "DuplicateMessage",
    "EncryptedShare",
    "Event",
    "Finding",
    "KeysAdvertised",
    "LateMessage",
    "MaskedInput",
    "MaskedInputRef",
    "NeighbourGraph",
    "ProtocolViolation",
    "Quantizer",
    "ReplayedMessage",
    "RevealedShare",
    "RoundTrace",
    "SecAggAborted",
    "SecAggClient",
    "SecAggConfig",
    "SecAggResult",
    "SecAggServer",
    "ServerMessage",
    "ShareKeys",
    "SharesForwarded",
    "Stage",
    "Transcript",
    "UnmaskRequest",
    "UnmaskShares",
    "WireClientMessage",
    "WrongRound",
    "apply_event",
    "audit_round",
    "bits_for",
    "check_certificate",
    "clip_by_norm",
    "consistency_threshold",
    "corruption_threshold",
    "decode_client",
    "decode_server",
    "encode_client",
    "encode_server",
    "honest_majority_threshold",
    "log_digest",
    "pad_seed",
    "plan_degree",
    "remove_pad",
    "replay",
    "session_round_id",
    "sign_transcript",
    "simulate_round",
    "survivor_view",
    "vector_digest",
    "verify_transcript",
]
