"""The server side of a SecAgg+ round, as a sans-I/O state machine.

``receive(message, now)`` takes one client message and returns the server messages to send
when that completes a stage; ``tick(now)`` closes a stage whose deadline has passed (the
clients that did not answer are the dropouts). Time is only ever a parameter.

Sets, after Bonawitz et al.: U1 advertised keys, U2 shared keys, U3 sent a masked input;
dropped = U2 − U3; U4 signed (U3, dropped) in the consistency check (``consistency.py``) and
is asked to unmask, with the signatures. Masked inputs are summed as they arrive (O(d)
memory). At the end the server reconstructs b_u for u in U3 and s_u^SK for u in dropped and
checks them (``unmasking.py``), and removes the self masks and the dropped clients' pairwise
masks with one streamed PRG pass (its streams dealt out to ``workers`` threads). A masked
input is added and hashed in one pass (:func:`add_and_hash`), the digest feeding the check of
the client's signature.
A stage closes with fewer than ``min_survivors`` clients, or with a client whose secrets can
no longer be reconstructed by t neighbours, aborts the round: :class:`SecAggAborted` names
the stage and the counts, the running sum is erased and no unmask request is sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.core.errors import (
    BadSignature,
    CaliFusionError,
    IllegalTransition,
    InvalidInput,
    UnknownPrincipal,
)
from califusion.crypto.prg import MaskArray, accumulate
from califusion.crypto.shamir import Share
from califusion.fl.secagg.commitment import new_hasher
from califusion.fl.secagg.config import ROUND_ID_BYTES, SecAggConfig, Stage
from califusion.fl.secagg.consistency import check_recoverable
from califusion.fl.secagg.errors import (
    DuplicateMessage,
    LateMessage,
    ProtocolViolation,
    SecAggAborted,
    WrongRound,
)
from califusion.fl.secagg.messages import (
    AdvertiseKeys,
    ClientMessage,
    ConsistencyCheck,
    ConsistencySignature,
    EncryptedShare,
    KeysAdvertised,
    MaskedInput,
    ServerMessage,
    ShareKeys,
    SharesForwarded,
    UnmaskRequest,
    UnmaskShares,
    survivor_view,
    verify,
)
from califusion.fl.secagg.unmasking import unmasking_streams

_CHUNK_BYTES = 1024 * 1024  # per hash update and modular add: few GIL hand-overs
_ORDER = (
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT,
    Stage.CONSISTENCY_CHECK,
    Stage.UNMASK,
)
_STAGE_OF: dict[type, Stage] = {
    AdvertiseKeys: Stage.ADVERTISE_KEYS,
    ShareKeys: Stage.SHARE_KEYS,
    MaskedInput: Stage.MASKED_INPUT,
    ConsistencySignature: Stage.CONSISTENCY_CHECK,
    UnmaskShares: Stage.UNMASK,
}


@dataclass(frozen=True, slots=True, eq=False)
class SecAggResult:
    """The exact modular sum of the contributors' quantized (and, in blind mode, padded) inputs."""

    round_id: bytes
    total: MaskArray
    contributors: frozenset[int]
    dropped: frozenset[int]


def add_and_hash(total: MaskArray, vector: MaskArray, commitment: str) -> bytes:
    """``total += vector`` (mod 2^w) and the commitment digest of ``vector``, in one pass: each
    1 MiB chunk is hashed right after it is added, while it is in cache. The server's ingest
    kernel; both calls release the GIL.

    Why not hash in a second thread while this one adds: measured with SHA-256, a chunk that
    the other core (or no core) just touched hashed at ~1.15 GB/s against ~2 GB/s from this
    core's cache right after the add (``bench/results/secagg_round.md``), and a round's
    clients keep the other cores busy anyway.
    """
    hasher = new_hasher(commitment)
    step = _CHUNK_BYTES // vector.itemsize
    for low in range(0, vector.size, step):
        block, part = total[low : low + step], vector[low : low + step]
        np.add(block, part, out=block)
        hasher.update(part.data.cast("B"))
    return hasher.digest()


class SecAggServer:
    """The server of one round; ``identities`` are the clients' Ed25519 public keys.

    ``workers`` threads expand the unmasking streams (each over its own part of the vector;
    AES and NumPy release the GIL), so the last stage uses every core it is given.
    """

    def __init__(
        self,
        config: SecAggConfig,
        round_id: bytes,
        identities: Mapping[int, Ed25519PublicKey],
        now: float,
        *,
        workers: int = 1,
    ) -> None:
        if len(round_id) != ROUND_ID_BYTES:
            raise ProtocolViolation(f"a round id is {ROUND_ID_BYTES} bytes")
        missing = set(config.participants) - set(identities)
        if missing:
            raise UnknownPrincipal(f"no identity key for clients {sorted(missing)[:5]}")
        if workers < 1:
            raise InvalidInput(f"workers must be at least 1, got {workers}")
        self.config = config
        self.round_id = round_id
        self.workers = workers
        self.stage = Stage.ADVERTISE_KEYS
        self.deadline = now + config.stage_timeout
        self.mask_streams = 0
        self._identities = identities
        self._graph = config.graph(round_id)
        self._expected: set[int] = set(config.participants)
        self._keys: dict[int, AdvertiseKeys] = {}
        self._shares: dict[int, ShareKeys] = {}
        self._masked: set[int] = set()
        self._unmasked: set[int] = set()
        self._survivors: frozenset[int] = frozenset()
        self._dropped: frozenset[int] = frozenset()
        self._view = b""
        self._signatures: dict[int, ConsistencySignature] = {}
        self._self_mask_shares: dict[int, list[Share]] = {}
        self._key_shares: dict[int, list[Share]] = {}
        self._total: MaskArray = np.zeros(config.dimension, dtype=config.dtype)
        self._aborted: SecAggAborted | None = None
        self._result: SecAggResult | None = None

    @property
    def aborted(self) -> SecAggAborted | None:
        """Why the round aborted, once it has."""
        return self._aborted

    @property
    def survivor_set(self) -> tuple[frozenset[int], frozenset[int]]:
        """(U3, U2 − U3) as announced for the consistency check (empty before it)."""
        return self._survivors, self._dropped

    @property
    def consistency_signatures(self) -> tuple[ConsistencySignature, ...]:
        """The survivors' signatures over :attr:`survivor_set`, by client."""
        return tuple(self._signatures[c] for c in sorted(self._signatures))

    @property
    def result(self) -> SecAggResult:
        if self._aborted is not None:
            raise self._aborted
        if self._result is None:
            raise IllegalTransition(f"the round is still at stage {self.stage}")
        return self._result

    def receive(self, message: ClientMessage, now: float) -> list[ServerMessage]:
        """Check and record one client message; returns messages if it completed the stage."""
        if self._aborted is not None:
            raise self._aborted
        if message.round_id != self.round_id:
            raise WrongRound(f"message from client {message.sender} is for another round")
        identity = self._identities.get(message.sender)
        if identity is None:
            raise UnknownPrincipal(f"client {message.sender} is not in this round")
        if not isinstance(message, MaskedInput):
            verify(message, identity)  # a masked input is verified while it is summed
        stage = _STAGE_OF[type(message)]
        if message.sender in self._senders(stage):
            raise DuplicateMessage(f"client {message.sender} already sent its {stage} message")
        if stage is not self.stage:
            if self.stage is Stage.DONE or _ORDER.index(stage) < _ORDER.index(self.stage):
                raise LateMessage(f"{stage} closed before client {message.sender} answered")
            raise ProtocolViolation(f"{stage} message while the round is at {self.stage}")
        if message.sender not in self._expected:
            raise ProtocolViolation(f"client {message.sender} is not part of {stage}")
        if isinstance(message, AdvertiseKeys):
            self._on_advertise(message)
        elif isinstance(message, ShareKeys):
            self._on_share_keys(message)
        elif isinstance(message, MaskedInput):
            self._on_masked_input(message, identity)
        elif isinstance(message, ConsistencySignature):
            self._on_consistency(message)
        else:
            self._on_unmask(message)
        if self._senders(stage) >= self._expected:
            return self._close(now)
        return []

    def tick(self, now: float) -> list[ServerMessage]:
        """Close the current stage if its deadline has passed."""
        if self.stage in (Stage.DONE, Stage.ABORTED) or now < self.deadline:
            return []
        return self._close(now)

    # -- recording ---------------------------------------------------------------------------
    def _senders(self, stage: Stage) -> AbstractSet[int]:
        if stage is Stage.ADVERTISE_KEYS:
            return self._keys.keys()
        if stage is Stage.SHARE_KEYS:
            return self._shares.keys()
        if stage is Stage.CONSISTENCY_CHECK:
            return self._signatures.keys()
        return self._masked if stage is Stage.MASKED_INPUT else self._unmasked

    def _on_advertise(self, message: AdvertiseKeys) -> None:
        if len(message.cipher_public) != 32 or len(message.mask_public) != 32:
            raise ProtocolViolation(f"client {message.sender} advertised malformed keys")
        self._keys[message.sender] = message

    def _on_share_keys(self, message: ShareKeys) -> None:
        sender = message.sender
        wanted = sorted(set(self._graph.neighbours(sender)) & set(self._keys))
        recipients = [sealed.recipient for sealed in message.shares]
        if sorted(recipients) != wanted or any(s.sender != sender for s in message.shares):
            raise ProtocolViolation(f"client {sender} must send one share to each neighbour")
        if len(message.self_mask_commitment) != 32:
            raise ProtocolViolation(f"client {sender} sent a malformed commitment")
        self._shares[sender] = message

    def _on_masked_input(self, message: MaskedInput, identity: Ed25519PublicKey) -> None:
        """Add the vector into the running sum and hash it in the same pass, then check the
        signature over that digest, and take the vector back out if it fails."""
        vector = np.ascontiguousarray(message.masked)
        if vector.dtype != self.config.dtype or vector.shape != (self.config.dimension,):
            raise ProtocolViolation(
                f"masked input of client {message.sender} must be {self.config.dimension} "
                f"words of {self.config.dtype}"
            )
        digest = add_and_hash(self._total, vector, self.config.commitment)
        try:
            verify(message, identity, payload=message.payload(digest))
        except BadSignature:
            np.subtract(self._total, vector, out=self._total)
            raise
        self._masked.add(message.sender)

    def _on_consistency(self, message: ConsistencySignature) -> None:
        if not hmac.compare_digest(message.view, self._view):
            raise ProtocolViolation(
                f"client {message.sender} signed another survivor set than the one announced"
            )
        self._signatures[message.sender] = message

    def _on_unmask(self, message: UnmaskShares) -> None:
        sender = message.sender
        neighbours = set(self._graph.neighbours(sender))
        parsed: list[tuple[dict[int, list[Share]], int, Share]] = []
        for revealed, owners, store in (
            (message.self_mask_shares, self._survivors, self._self_mask_shares),
            (message.key_shares, self._dropped, self._key_shares),
        ):
            if sorted(r.owner for r in revealed) != sorted(neighbours & owners):
                raise ProtocolViolation(f"client {sender} revealed the wrong set of shares")
            for item in revealed:
                share = Share.from_bytes(item.share)
                if share.index != self._graph.share_index(item.owner, sender):
                    raise ProtocolViolation(f"client {sender} revealed a share at a wrong index")
                parsed.append((store, item.owner, share))
        for store, owner, share in parsed:
            store.setdefault(owner, []).append(share)
        self._unmasked.add(sender)

    # -- stage transitions -------------------------------------------------------------------
    def _close(self, now: float) -> list[ServerMessage]:
        stage = self.stage
        try:
            if stage is Stage.ADVERTISE_KEYS:
                out = self._close_advertise()
            elif stage is Stage.SHARE_KEYS:
                out = self._close_share_keys()
            elif stage is Stage.MASKED_INPUT:
                out = self._close_masked_input()
            elif stage is Stage.CONSISTENCY_CHECK:
                out = self._close_consistency()
            else:
                out = self._close_unmask()
        except SecAggAborted as aborted:
            self._abort(aborted)
            raise
        except CaliFusionError as error:
            failure = SecAggAborted(str(stage), str(error))
            self._abort(failure)
            raise failure from error
        self.deadline = now + self.config.stage_timeout
        return out

    def _abort(self, aborted: SecAggAborted) -> None:
        self.stage = Stage.ABORTED
        self._aborted = aborted
        self._total.fill(0)  # nothing partial survives an abort

    def _require(self, stage: Stage, present: Iterable[int]) -> set[int]:
        clients = set(present)
        if len(clients) < self.config.min_survivors:
            raise SecAggAborted(
                str(stage),
                f"only {len(clients)} of {len(self.config.participants)} clients remain, "
                f"at least {self.config.min_survivors} needed",
                remaining=len(clients),
                required=self.config.min_survivors,
                participants=len(self.config.participants),
            )
        return clients

    def _with_enough_neighbours(self, clients: set[int]) -> set[int]:
        """Drop, until none is left, clients with fewer than t neighbours still present.

        Such a client's secrets could not be reconstructed, so it is treated as a dropout
        before it masks anything.
        """
        threshold = self.config.threshold
        changed = True
        while changed:
            changed = False
            for client in sorted(clients):
                if len(clients.intersection(self._graph.neighbours(client))) < threshold:
                    clients.discard(client)
                    changed = True
        return clients

    def _close_advertise(self) -> list[ServerMessage]:
        present = self._require(Stage.ADVERTISE_KEYS, self._keys)
        eligible = self._require(Stage.ADVERTISE_KEYS, self._with_enough_neighbours(present))
        self.stage, self._expected = Stage.SHARE_KEYS, eligible
        return [
            KeysAdvertised(
                self.round_id,
                client,
                tuple(self._keys[j] for j in self._graph.neighbours(client) if j in present),
            )
            for client in sorted(eligible)
        ]

    def _close_share_keys(self) -> list[ServerMessage]:
        shared = self._with_enough_neighbours(self._require(Stage.SHARE_KEYS, self._shares))
        shared = self._require(Stage.SHARE_KEYS, shared)
        inbox: dict[int, list[EncryptedShare]] = {client: [] for client in shared}
        for sender in sorted(shared):
            for sealed in self._shares[sender].shares:
                if sealed.recipient in inbox:
                    inbox[sealed.recipient].append(sealed)
        self._shares = {client: self._shares[client] for client in shared}
        self.stage, self._expected = Stage.MASKED_INPUT, shared
        return [
            SharesForwarded(self.round_id, client, tuple(inbox[client]))
            for client in sorted(shared)
        ]

    def _close_masked_input(self) -> list[ServerMessage]:
        survivors = self._require(Stage.MASKED_INPUT, self._masked)
        self._check_recoverable(Stage.MASKED_INPUT, survivors)
        self._survivors = frozenset(survivors)
        self._dropped = frozenset(set(self._shares) - survivors)
        self._view = survivor_view(self._survivors, self._dropped)
        self.stage, self._expected = Stage.CONSISTENCY_CHECK, survivors
        return [
            ConsistencyCheck(self.round_id, client, self._survivors, self._dropped)
            for client in sorted(survivors)
        ]

    def _close_consistency(self) -> list[ServerMessage]:
        """Ask the signers to unmask, with T of the signatures (what each client needs, and
        all it verifies: O(T) work per client), if enough signed and they can still reveal
        every secret; survivors that did not sign stay contributors. The transcript keeps
        every signature."""
        signers = set(self._signatures)
        required = self.config.consistency_threshold
        if len(signers) < required:
            raise SecAggAborted(
                str(Stage.CONSISTENCY_CHECK),
                f"only {len(signers)} clients signed the survivor set, {required} needed",
                signers=len(signers),
                required=required,
                survivors=len(self._survivors),
            )
        self._check_recoverable(Stage.CONSISTENCY_CHECK, signers)
        self.stage, self._expected = Stage.UNMASK, signers
        signatures = self.consistency_signatures[:required]
        return [
            UnmaskRequest(self.round_id, client, self._survivors, self._dropped, signatures)
            for client in sorted(signers)
        ]

    def _check_recoverable(self, stage: Stage, holders: set[int]) -> None:
        """Abort unless every client that shared keys keeps t neighbours able to reveal."""
        check_recoverable(self.config, self._graph, stage, self._shares, holders)

    def _close_unmask(self) -> list[ServerMessage]:
        add, subtract = unmasking_streams(
            self.config,
            self._graph,
            self.round_id,
            survivors=self._survivors,
            dropped=self._dropped,
            self_mask_shares=self._self_mask_shares,
            key_shares=self._key_shares,
            self_mask_commitments={u: self._shares[u].self_mask_commitment for u in self._shares},
            mask_publics={u: self._keys[u].mask_public for u in self._keys},
            responders=len(self._unmasked),
        )
        accumulate(self._total, add, subtract, workers=self.workers, prg=self.config.prg)
        self.mask_streams = len(add) + len(subtract)
        self.stage = Stage.DONE
        self._result = SecAggResult(
            round_id=self.round_id,
            total=self._total,
            contributors=self._survivors,
            dropped=frozenset(self.config.participants) - self._survivors,
        )
        return []
