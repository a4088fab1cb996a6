"""A hand-cranked round: the tests step clients and server one stage at a time.

``simulate_round`` runs a whole round; this harness stops between stages so a test can drop,
tamper with, replay or forge individual messages on the way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.fl.secagg import (
    ClientMessage,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    ServerMessage,
)

_KEYS: dict[int, Ed25519PrivateKey] = {}


def identity(pid: int) -> Ed25519PrivateKey:
    """Identity keys are long-lived; reuse them across tests to save time."""
    if pid not in _KEYS:
        _KEYS[pid] = Ed25519PrivateKey.generate()
    return _KEYS[pid]


def updates_for(
    config: SecAggConfig, seed: int = 0, scale: float = 0.5
) -> dict[int, npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return {
        pid: rng.normal(0.0, scale, config.dimension).astype(np.float32)
        for pid in config.participants
    }


def expected_total(
    config: SecAggConfig,
    updates: dict[int, npt.NDArray[np.float32]],
    contributors: Iterable[int],
) -> npt.NDArray[np.unsignedinteger[Any]]:
    total = np.zeros(config.dimension, dtype=config.dtype)
    for pid in contributors:
        total += config.quantizer.quantize(updates[pid])
    return total


@dataclass
class Harness:
    config: SecAggConfig
    round_id: bytes = field(default_factory=lambda: os.urandom(16))
    pad_key: bytes | None = None
    now: float = 0.0
    workers: int = 1

    def __post_init__(self) -> None:
        self.updates = updates_for(self.config)
        self.publics = {pid: identity(pid).public_key() for pid in self.config.participants}
        self.server = SecAggServer(
            self.config, self.round_id, self.publics, self.now, workers=self.workers
        )
        self.clients = {
            pid: SecAggClient(
                self.config,
                self.round_id,
                pid,
                identity=identity(pid),
                peers=self.publics,
                update=self.updates[pid],
                pad_key=self.pad_key,
            )
            for pid in self.config.participants
        }

    def send(self, messages: Sequence[ClientMessage]) -> list[ServerMessage]:
        """Deliver client messages; if the stage stays open, let its deadline pass."""
        out: list[ServerMessage] = []
        for message in messages:
            out += self.server.receive(message, self.now)
        if not out:
            self.now = self.server.deadline
            out = self.server.tick(self.now)
        return out

    def advertise(self, silent: Iterable[int] = ()) -> list[ServerMessage]:
        skip = set(silent)
        return self.send([c.start() for pid, c in self.clients.items() if pid not in skip])

    def replies(
        self, messages: Sequence[ServerMessage], silent: Iterable[int] = ()
    ) -> list[ClientMessage]:
        skip = set(silent)
        out: list[ClientMessage] = []
        for message in messages:
            if message.recipient not in skip:
                out += self.clients[message.recipient].handle(message)
        return out

    def step(
        self, messages: Sequence[ServerMessage], silent: Iterable[int] = ()
    ) -> list[ServerMessage]:
        return self.send(self.replies(messages, silent))

    def finish(self, messages: Sequence[ServerMessage]) -> None:
        """Answer every server message until the round ends (no dropouts)."""
        while messages:
            messages = self.step(messages)
