"""Drive a whole round in one process: every client and the server, with scripted dropouts.

This is the reference wiring of the state machines (the HTTP transport will do the same with
requests) and what the tests and ``bench/secagg_round.py`` run. Time is simulated: when no
message is left in flight the clock jumps to the server's deadline and ``tick`` closes the
stage, so clients listed in ``dropouts`` simply never answer. Masked inputs go to the server as
they are made, so memory stays O(d) beyond the caller's own update vectors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.crypto.shamir import RandomBytes
from califusion.fl.secagg.client import SecAggClient
from califusion.fl.secagg.config import SecAggConfig, Stage
from califusion.fl.secagg.messages import (
    AdvertiseKeys,
    ClientMessage,
    ConsistencyCheck,
    KeysAdvertised,
    MaskedInput,
    ServerMessage,
    SharesForwarded,
    UnmaskRequest,
)
from califusion.fl.secagg.server import SecAggResult, SecAggServer

_ORDER = (
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT,
    Stage.CONSISTENCY_CHECK,
    Stage.UNMASK,
)
_REPLY_STAGE: dict[type, Stage] = {
    KeysAdvertised: Stage.SHARE_KEYS,
    SharesForwarded: Stage.MASKED_INPUT,
    ConsistencyCheck: Stage.CONSISTENCY_CHECK,
    UnmaskRequest: Stage.UNMASK,
}


@dataclass(frozen=True, slots=True, eq=False)
class RoundTrace:
    """The result of a simulated round and where its compute time went (if timed).

    With several workers the accounts overlap (clients compute while the server sums), so
    ``wall_seconds`` — the whole round, start to result — is the round's time.
    """

    result: SecAggResult
    client_seconds: float
    server_seconds: float
    masked_sum_seconds: float
    client_mask_streams: int
    server_mask_streams: int
    wall_seconds: float = 0.0


class _Stopwatch:
    """Adds up the time spent in each account; a no-op without a timer."""

    def __init__(self, timer: Callable[[], float] | None) -> None:
        self.timer = timer
        self.totals = {"client": 0.0, "server": 0.0, "masked-sum": 0.0}

    @contextmanager
    def charge(self, account: str) -> Iterator[None]:
        if self.timer is None:
            yield
            return
        started = self.timer()
        try:
            yield
        finally:
            self.totals[account] += self.timer() - started


def simulate_round(
    config: SecAggConfig,
    updates: Mapping[int, npt.NDArray[np.floating[Any]]],
    *,
    round_id: bytes,
    identities: Mapping[int, Ed25519PrivateKey] | None = None,
    dropouts: Mapping[int, Stage] | None = None,
    pad_key: bytes | None = None,
    rng: RandomBytes = os.urandom,
    timer: Callable[[], float] | None = None,
    workers: int = 1,
) -> RoundTrace:
    """Run one round; ``dropouts[c] = stage`` makes client c fall silent at that stage.

    A client that drops at ``Stage.SHARE_KEYS`` advertised its keys but sends nothing after;
    at ``Stage.CONSISTENCY_CHECK`` it sent its masked input but does not sign the survivor set;
    at ``Stage.UNMASK`` it signed but reveals no shares. Raises what the server
    or a client raises (``SecAggAborted`` below the thresholds). With ``workers`` > 1 the
    clients of a stage compute in that many threads, as separate machines would in parallel
    (AES, BLAKE3 and NumPy release the GIL); the server stays one sequential state machine,
    fed under a lock by the thread that computed each answer, and expands its unmasking
    streams in that many threads.
    """
    silent_from = dict(dropouts or {})
    keys = identities or {pid: Ed25519PrivateKey.generate() for pid in config.participants}
    publics = {pid: key.public_key() for pid, key in keys.items()}
    watch = _Stopwatch(timer)
    began = timer() if timer is not None else 0.0
    now = 0.0
    with watch.charge("server"):
        server = SecAggServer(config, round_id, publics, now, workers=max(1, workers))

    def answers(client: int, stage: Stage) -> bool:
        dropped_at = silent_from.get(client)
        return dropped_at is None or _ORDER.index(dropped_at) > _ORDER.index(stage)

    clients: dict[int, SecAggClient] = {}
    inbox: list[ServerMessage] = []

    def deliver(message: ClientMessage, at: float) -> None:
        account = "masked-sum" if isinstance(message, MaskedInput) else "server"
        with watch.charge(account):
            inbox.extend(server.receive(message, at))

    def join(pid: int) -> AdvertiseKeys:
        clients[pid] = SecAggClient(
            config,
            round_id,
            pid,
            identity=keys[pid],
            peers=publics,
            update=updates[pid],
            pad_key=pad_key,
            rng=rng,
        )
        return clients[pid].start()

    server_lock = threading.Lock()

    def reply(message: ServerMessage) -> None:
        """A client's answer, handed to the server by the thread that computed it (the
        server's state changes under a lock): no third thread wakes up for each of them."""
        replies = clients[message.recipient].handle(message)
        with server_lock:
            for client_message in replies:
                deliver(client_message, now)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        joining = [pid for pid in config.participants if answers(pid, Stage.ADVERTISE_KEYS)]
        with watch.charge("client"):
            advertised = list(pool.map(join, joining))
        for keys_message in advertised:
            deliver(keys_message, now)
        while server.stage not in (Stage.DONE, Stage.ABORTED):
            if not inbox:
                now = server.deadline
                with watch.charge("server"):
                    inbox.extend(server.tick(now))
                continue
            pending = [m for m in inbox if answers(m.recipient, _REPLY_STAGE[type(m)])]
            inbox = []
            # The server takes each reply as soon as it is ready, while the workers compute
            # the next clients' (its own account is charged inside ``deliver``).
            with watch.charge("client"):
                for _ in pool.map(reply, pending):
                    pass
    return RoundTrace(
        result=server.result,
        client_seconds=watch.totals["client"],
        server_seconds=watch.totals["server"] + watch.totals["masked-sum"],
        masked_sum_seconds=watch.totals["masked-sum"],
        client_mask_streams=sum(client.mask_streams for client in clients.values()),
        server_mask_streams=server.mask_streams,
        wall_seconds=timer() - began if timer is not None else 0.0,
    )
