"""A round as a log of events, and rebuilding the server from it.

The server is a pure state machine, so its state after a sequence of inputs is a function of
those inputs. A host that logs every input it applied — each client message that was accepted
(as the bytes of ``wire.py``) and each deadline that closed a stage — can therefore rebuild
the server after a crash by applying the log again (:func:`replay`), and anyone holding the
log can recompute the round (``audit.py``). Masked vectors are not in the log: a masked input
is logged as its :class:`MaskedInputRef` and its vector fetched again by digest.

A tick is logged only when it changed something, so replaying it at its logged time closes the
same stage with the same deadlines as the first time.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.fl.secagg.config import SecAggConfig, Stage
from califusion.fl.secagg.errors import SecAggAborted
from califusion.fl.secagg.messages import ClientMessage, ServerMessage
from califusion.fl.secagg.server import SecAggServer
from califusion.fl.secagg.wire import MaskedInputRef, WireClientMessage, decode_client

FetchVector = Callable[[MaskedInputRef], npt.NDArray[np.unsignedinteger[Any]]]
"""Returns the vector a masked-input reference names (checked against its digest)."""

_TIME = struct.Struct(">d")
LOG_GENESIS = hashlib.sha256(b"califusion/secagg/event-log/v1").digest()


@dataclass(frozen=True, slots=True)
class Event:
    """A client message (its wire bytes) received at ``at``, or, with ``body`` empty, a tick."""

    at: float
    body: bytes = b""

    @property
    def is_tick(self) -> bool:
        return not self.body

    def chain(self, previous: bytes) -> bytes:
        """The log digest after this event: SHA-256(previous ‖ time ‖ body)."""
        return hashlib.sha256(previous + _TIME.pack(self.at) + self.body).digest()


def log_digest(events: Iterable[Event]) -> bytes:
    """The digest of a whole log; the round transcript signs it."""
    digest = LOG_GENESIS
    for event in events:
        digest = event.chain(digest)
    return digest


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event did: the messages it released and whether it aborted the round."""

    out: list[ServerMessage]
    aborted: SecAggAborted | None = None


def resolve(message: WireClientMessage, fetch: FetchVector) -> ClientMessage:
    """The full client message: a masked-input reference gets its vector."""
    return message.attach(fetch(message)) if isinstance(message, MaskedInputRef) else message


def apply_event(server: SecAggServer, event: Event, fetch: FetchVector) -> Applied:
    """Apply one event. A message the server rejects raises (the event is not applied); a
    stage that closes with too few clients is an abort the server has recorded — that is
    returned, not raised, because the event did happen."""
    before = server.stage
    try:
        if event.is_tick:
            return Applied(server.tick(event.at))
        return Applied(server.receive(resolve(decode_client(event.body), fetch), event.at))
    except SecAggAborted as aborted:
        if before is Stage.ABORTED or server.stage is not Stage.ABORTED:
            raise  # rejected, not a new abort
        return Applied([], aborted)


def replay(
    config: SecAggConfig,
    round_id: bytes,
    identities: Mapping[int, Ed25519PublicKey],
    start: float,
    events: Iterable[Event],
    *,
    fetch: FetchVector,
) -> tuple[SecAggServer, dict[int, list[ServerMessage]]]:
    """The server after ``events``, and every message it released, by recipient."""
    server = SecAggServer(config, round_id, identities, start)
    outbox: dict[int, list[ServerMessage]] = {}
    for event in events:
        for message in apply_event(server, event, fetch).out:
            outbox.setdefault(message.recipient, []).append(message)
    return server, outbox
