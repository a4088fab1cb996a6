"""SecAgg+ servers in memory, kept in step with their event logs in the database.

Each active session has one :class:`LiveSession` per coordinator process: the pure server, the
messages it released (by recipient, as wire bytes), the commitments it accepted and the running
digest of its log. The database is the source of truth. Before any use, under the job's row
lock, :meth:`SessionEngine.live` applies the events logged since the cached copy was made — all
of them after a restart, none in the usual case, the few another worker added when several
share one database. :meth:`SessionEngine.record` applies one new input and logs it in the same
transaction. If anything fails the cached copy may be ahead of the database, so the caller
evicts it (:meth:`SessionEngine.evict`) and the next use rebuilds it from the log.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.coordinator.db.secagg_models import SecAggEventRow, SecAggSessionRow
from califusion.coordinator.db.secagg_repository import SecAggRepository, SessionKey
from califusion.core.errors import CaliFusionError
from califusion.fl.secagg import (
    AdvertiseKeys,
    Applied,
    Commitment,
    ConsistencySignature,
    Event,
    MaskedInputRef,
    SecAggConfig,
    SecAggServer,
    ShareKeys,
    UnmaskShares,
    WireClientMessage,
    apply_event,
    decode_client,
    encode_server,
)
from califusion.fl.secagg.replay import LOG_GENESIS, FetchVector
from califusion.storage.blobs import BlobStore

_KIND: dict[type, str] = {
    AdvertiseKeys: "advertise-keys",
    ShareKeys: "share-keys",
    MaskedInputRef: "masked-input",
    ConsistencySignature: "consistency",
    UnmaskShares: "unmask",
}


# The unmask stage expands its mask streams on every core (AES and NumPy release the GIL).
_UNMASK_WORKERS = max(1, os.cpu_count() or 1)


@dataclass
class LiveSession:
    key: SessionKey
    config: SecAggConfig
    server: SecAggServer
    seq: int = 0
    log_digest: bytes = LOG_GENESIS
    outbox: dict[int, list[bytes]] = field(default_factory=dict)
    commitments: dict[int, Commitment] = field(default_factory=dict)
    blobs: dict[int, bytes] = field(default_factory=dict)  # each accepted input's blob address


def key_of(row: SecAggSessionRow) -> SessionKey:
    return (row.job_id, row.round_number, row.attempt)


def identities_of(row: SecAggSessionRow) -> dict[int, Ed25519PublicKey]:
    return {
        client: Ed25519PublicKey.from_public_bytes(bytes.fromhex(p["signing_public"]))
        for client, p in enumerate(row.participants)
    }


class SessionEngine:
    """The live sessions of one coordinator process (at most ``capacity``, least recently
    used first out)."""

    def __init__(self, blobs: BlobStore, capacity: int = 32) -> None:
        self._blobs = blobs
        self._capacity = capacity
        self._live: OrderedDict[SessionKey, LiveSession] = OrderedDict()
        self._lock = threading.Lock()

    def fetcher(self, config: SecAggConfig) -> FetchVector:
        def fetch(ref: MaskedInputRef) -> npt.NDArray[np.unsignedinteger[Any]]:
            data = self._blobs.get(ref.blob.hex())  # the store re-checks the address
            return np.frombuffer(data, dtype=config.dtype)

        return fetch

    def live(self, repo: SecAggRepository, row: SecAggSessionRow) -> LiveSession:
        """The session's server, brought up to date with its log."""
        key = key_of(row)
        with self._lock:
            live = self._live.pop(key, None)
        if live is None:
            config = SecAggConfig.from_dict(row.config)
            server = SecAggServer(
                config, row.round_id, identities_of(row), row.start, workers=_UNMASK_WORKERS
            )
            live = LiveSession(key, config, server)
        try:
            for logged in repo.events(key, after=live.seq):
                self._apply(live, Event(logged.at, logged.body))
        except CaliFusionError as error:
            raise CaliFusionError(
                f"the event log of round {key[1]} attempt {key[2]} of {key[0]} does not "
                f"replay: {error}"
            ) from error
        with self._lock:
            self._live[key] = live
            while len(self._live) > self._capacity:
                self._live.popitem(last=False)
        return live

    def record(
        self, repo: SecAggRepository, row: SecAggSessionRow, live: LiveSession, event: Event
    ) -> Applied:
        """Apply a new input and log it; a rejected message raises and logs nothing."""
        applied, message = self._apply(live, event)
        repo.add_event(
            SecAggEventRow(
                job_id=row.job_id,
                round_number=row.round_number,
                attempt=row.attempt,
                seq=live.seq,
                at=event.at,
                kind="tick" if message is None else _KIND[type(message)],
                sender=None if message is None else message.sender,
                body=event.body,
                blob=message.blob.hex() if isinstance(message, MaskedInputRef) else None,
            )
        )
        row.stage = live.server.stage.value
        row.deadline = live.server.deadline
        row.events = live.seq
        return applied

    def evict(self, key: SessionKey) -> None:
        with self._lock:
            self._live.pop(key, None)

    def _apply(self, live: LiveSession, event: Event) -> tuple[Applied, WireClientMessage | None]:
        message = None if event.is_tick else decode_client(event.body)
        applied = apply_event(live.server, event, self.fetcher(live.config))
        live.seq += 1
        live.log_digest = event.chain(live.log_digest)
        if isinstance(message, MaskedInputRef):
            live.commitments[message.sender] = Commitment(
                message.sender, message.digest, message.signature
            )
            live.blobs[message.sender] = message.blob
        for out in applied.out:
            live.outbox.setdefault(out.recipient, []).append(encode_server(out))
        return applied, message
