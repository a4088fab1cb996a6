"""The client side of a SecAgg+ round, as a sans-I/O state machine.

``start()`` gives the first message; ``handle(server_message)`` gives the replies. The client
reads no clock and does no I/O: the server decides who dropped (by its deadlines), and the
transport carries the messages. Time therefore does not appear here.

Per round the client makes two X25519 key pairs (c: to receive shares, s: for pairwise
masks) and a 32-byte self-mask secret b, Shamir-shares b and s^SK among its neighbours,
sends y = q + PRG(b) + Σ_{j<i} PRG(s_ij) − Σ_{j>i} PRG(s_ij) [+ blind pad] mod 2^w, signs the
survivor set the server announces (once per round: a different set later is refused), and in
the unmask stage reveals, for each neighbour j, either its share of b_j (j survived) or of
s_j^SK (j dropped) — never both: a request that would reveal both for one peer, in one message
or across several, is refused with :class:`DoubleRevealRefused` and the client aborts. It
reveals nothing unless the request repeats the set it signed, with enough of its peers'
signatures over that same set (``consistency.py``): that is what stops a server from telling
different clients different sets.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.core.errors import CaliFusionError, WeightsError
from califusion.crypto.fastsig import x25519_public
from califusion.crypto.prg import SEED_BYTES, accumulate
from califusion.crypto.shamir import RandomBytes, Share, split_many
from califusion.fl.secagg._keys import (
    NONCE_BYTES,
    ShareChannel,
    commit_self_mask,
    pairwise_seed,
    self_mask_seed,
)
from califusion.fl.secagg.commitment import new_hasher
from califusion.fl.secagg.config import ROUND_ID_BYTES, SecAggConfig, Stage
from califusion.fl.secagg.consistency import check_certificate, check_recoverable
from califusion.fl.secagg.errors import (
    DoubleRevealRefused,
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
    RevealedShare,
    ServerMessage,
    ShareKeys,
    SharesForwarded,
    Signer,
    UnmaskRequest,
    UnmaskShares,
    sign,
    survivor_view,
    verify,
)
from califusion.fl.secagg.pad import pad_seed

_SELF_MASK, _KEY = "self-mask", "key"


class SecAggClient:
    """One client in one round. ``update`` is its float vector of ``config.dimension``."""

    def __init__(
        self,
        config: SecAggConfig,
        round_id: bytes,
        client_id: int,
        *,
        identity: Signer,
        peers: Mapping[int, Ed25519PublicKey],
        update: npt.NDArray[np.floating[Any]],
        pad_key: bytes | None = None,
        rng: RandomBytes = os.urandom,
    ) -> None:
        if len(round_id) != ROUND_ID_BYTES:
            raise ProtocolViolation(f"a round id is {ROUND_ID_BYTES} bytes")
        if np.shape(update) != (config.dimension,):
            raise WeightsError(f"the update must have shape ({config.dimension},)")
        self.config = config
        self.round_id = round_id
        self.client_id = client_id
        self.stage = Stage.ADVERTISE_KEYS
        self.mask_streams = 0
        self.commitment = b""  # the digest of the masked input, once sent (``commitment.py``)
        self._identity = identity
        self._peers = peers
        self._update: npt.NDArray[np.floating[Any]] | None = update
        self._pad_key = pad_key
        self._rng = rng
        self._graph = config.graph(round_id)
        self._neighbours = self._graph.neighbours(client_id)
        # Raw X25519 private keys from the OS CSPRNG (libsodium clamps them when used).
        self._cipher_key = os.urandom(32)
        self._mask_key = os.urandom(32)
        self._self_secret = b""
        self._peer_keys: dict[int, AdvertiseKeys] = {}
        self._channels: dict[int, ShareChannel] = {}
        self._held: dict[int, tuple[Share, Share]] = {}
        self._plan: dict[int, str] = {}
        self._revealed: dict[int, str] = {}
        self._signed: ConsistencySignature | None = None
        self._response: UnmaskShares | None = None

    def start(self) -> AdvertiseKeys:
        """Stage 1: advertise the two public keys, signed with the identity key."""
        if self.stage is not Stage.ADVERTISE_KEYS:
            raise ProtocolViolation(f"client already started; it is at stage {self.stage}")
        self.stage = Stage.SHARE_KEYS
        message = AdvertiseKeys(
            round_id=self.round_id,
            sender=self.client_id,
            cipher_public=x25519_public(self._cipher_key),
            mask_public=x25519_public(self._mask_key),
        )
        return sign(message, self._identity)

    def handle(self, message: ServerMessage) -> list[ClientMessage]:
        """The client's replies to one server message.

        Messages for another round or recipient, or for another stage, are rejected without
        changing state; a message whose content is unsafe or forged aborts the client.
        """
        if self.stage is Stage.ABORTED:
            raise SecAggAborted(str(Stage.ABORTED), "this client already aborted the round")
        if message.round_id != self.round_id:
            raise WrongRound("server message belongs to another round")
        if message.recipient != self.client_id:
            raise ProtocolViolation(f"message is for client {message.recipient}")
        if isinstance(message, ConsistencyCheck) and self._signed is not None:
            return [self._repeat_consistency(message)]
        if isinstance(message, UnmaskRequest) and self.stage is Stage.DONE:
            return [self._repeat_unmask(message)]
        try:
            if isinstance(message, KeysAdvertised):
                self._expect(Stage.SHARE_KEYS)
                return [self._share_keys(message)]
            if isinstance(message, SharesForwarded):
                self._expect(Stage.MASKED_INPUT)
                return [self._masked_input(message)]
            if isinstance(message, ConsistencyCheck):
                self._expect(Stage.CONSISTENCY_CHECK)
                return [self._sign_survivors(message)]
            self._expect(Stage.UNMASK)
            return [self._unmask(message)]
        except _StageMismatch as mismatch:
            raise ProtocolViolation(str(mismatch)) from None
        except CaliFusionError:
            self.stage = Stage.ABORTED
            raise

    # -- stage 2 -----------------------------------------------------------------------------
    def _share_keys(self, message: KeysAdvertised) -> ShareKeys:
        neighbours = set(self._neighbours)
        for advertised in message.keys:
            peer = advertised.sender
            if peer not in neighbours or peer in self._peer_keys:
                raise ProtocolViolation(f"keys of client {peer} are not expected here")
            if peer not in self._peers:
                raise ProtocolViolation(f"no identity key is known for client {peer}")
            if advertised.round_id != self.round_id:
                raise WrongRound(f"keys of client {peer} were signed for another round")
            verify(advertised, self._peers[peer])
            if len(advertised.cipher_public) != 32 or len(advertised.mask_public) != 32:
                raise ProtocolViolation(f"keys of client {peer} are not X25519 keys")
            self._peer_keys[peer] = advertised
        threshold = self.config.threshold
        if len(self._peer_keys) < threshold:
            raise SecAggAborted(
                str(Stage.SHARE_KEYS),
                f"only {len(self._peer_keys)} neighbours advertised keys, {threshold} needed",
                present=len(self._peer_keys),
                required=threshold,
            )
        self._self_secret = self._rng(SEED_BYTES)
        self_mask_shares, key_shares = split_many(
            [self._self_secret, self._mask_key],
            threshold,
            len(self._neighbours),
            self._rng,
        )
        sealed: list[EncryptedShare] = []
        for position, peer in enumerate(self._neighbours):
            if peer in self._peer_keys:
                channel = ShareChannel(
                    self._cipher_key,
                    self._peer_keys[peer].cipher_public,
                    self.round_id,
                    self.client_id,
                    peer,
                )
                self._channels[peer] = channel
                shares = (self_mask_shares[position], key_shares[position])
                sealed.append(channel.seal(shares, self._rng(NONCE_BYTES)))
        self.stage = Stage.MASKED_INPUT
        reply = ShareKeys(
            round_id=self.round_id,
            sender=self.client_id,
            self_mask_commitment=commit_self_mask(self._self_secret, self.round_id, self.client_id),
            shares=tuple(sealed),
        )
        return sign(reply, self._identity)

    # -- stage 3 -----------------------------------------------------------------------------
    def _masked_input(self, message: SharesForwarded) -> MaskedInput:
        for sealed in message.shares:
            owner = sealed.sender
            if owner not in self._peer_keys or owner in self._held:
                raise ProtocolViolation(f"shares from client {owner} are not expected here")
            if sealed.recipient != self.client_id:
                raise ProtocolViolation(f"shares from client {owner} are for another client")
            shares = self._channels[owner].open(sealed)
            expected = self._graph.share_index(owner, self.client_id)
            if shares[0].index != expected or shares[1].index != expected:
                raise ProtocolViolation(f"shares from client {owner} carry the wrong index")
            self._held[owner] = shares
        if len(self._held) < self.config.threshold:
            raise SecAggAborted(
                str(Stage.MASKED_INPUT),
                f"only {len(self._held)} neighbours shared keys, "
                f"{self.config.threshold} needed to mask safely",
                present=len(self._held),
                required=self.config.threshold,
            )
        assert self._update is not None
        quantizer = self.config.quantizer
        generator = (
            np.random.default_rng(int.from_bytes(self._rng(16), "big"))
            if quantizer.stochastic
            else None
        )
        add = [self_mask_seed(self._self_secret, self.round_id, self.client_id)]
        subtract: list[bytes] = []
        for peer in self._held:
            seed = pairwise_seed(
                self._mask_key,
                self._peer_keys[peer].mask_public,
                self.round_id,
                self.client_id,
                peer,
            )
            (add if peer < self.client_id else subtract).append(seed)
        if self._pad_key is not None:
            add.append(pad_seed(self._pad_key, self.round_id, self.client_id))
        # Quantized (and checked finite: nothing is masked or sent for an update with NaN or
        # infinity) in large chunks, then masked and hashed in one pass: each cache-sized
        # block is hashed right after its last mask. Two passes, because few long NumPy calls
        # let clients that mask in threads side by side stay off each other's GIL
        # (``quantize.py``).
        masked = quantizer.quantize(self._update, generator)
        hasher = new_hasher(self.config.commitment)
        accumulate(masked, add, subtract, hasher=hasher, prg=self.config.prg)
        self._update = None
        self.mask_streams = len(add) + len(subtract)
        masked.flags.writeable = False
        # Unmasking needs only the held shares: drop the keys and ciphers of the round so far.
        self._self_secret = b""
        self._channels.clear()
        self._peer_keys.clear()
        self.stage = Stage.CONSISTENCY_CHECK
        self.commitment = hasher.digest()
        reply = MaskedInput(self.round_id, self.client_id, masked)
        return sign(reply, self._identity, payload=reply.payload(self.commitment))

    # -- stage 4 -----------------------------------------------------------------------------
    def _sign_survivors(self, message: ConsistencyCheck) -> ConsistencySignature:
        """Sign the announced sets if revealing by them would be safe; the one view signed."""
        self._plan = self._check_announced(message)
        reply = ConsistencySignature(
            self.round_id, self.client_id, survivor_view(message.survivors, message.dropped)
        )
        self._signed = sign(reply, self._identity)
        self.stage = Stage.UNMASK
        return self._signed

    def _check_announced(self, message: ConsistencyCheck | UnmaskRequest) -> dict[int, str]:
        """The reveal plan of an announced (U3, dropped), refused unless it is one the client
        may act on: itself among the survivors, enough survivors, sets of known clients that
        match the shares it holds, and every client's secret still recoverable from t
        survivors (so the survivors' sum cannot be split)."""
        plan = self._reveal_plan(message)
        if self.client_id not in message.survivors:
            raise ProtocolViolation("asked to unmask a round this client is not counted in")
        unknown = (message.survivors | message.dropped) - set(self.config.participants)
        if unknown:
            raise ProtocolViolation(f"clients {sorted(unknown)[:5]} are not in this round")
        if len(message.survivors) < self.config.min_survivors:
            raise SecAggAborted(
                str(Stage.UNMASK),
                f"only {len(message.survivors)} clients survived, "
                f"{self.config.min_survivors} needed; revealing nothing",
                survivors=len(message.survivors),
                required=self.config.min_survivors,
            )
        check_recoverable(
            self.config,
            self._graph,
            Stage.CONSISTENCY_CHECK,
            message.survivors | message.dropped,
            message.survivors,
        )
        return plan

    def _repeat_consistency(self, message: ConsistencyCheck) -> ConsistencySignature:
        """A repeated announcement gets the same signature; another set is refused."""
        assert self._signed is not None
        if not hmac.compare_digest(
            survivor_view(message.survivors, message.dropped), self._signed.view
        ):
            self.stage = Stage.ABORTED
            raise DoubleRevealRefused("already signed another survivor set this round; refusing")
        return self._signed

    # -- stage 5 -----------------------------------------------------------------------------
    def _reveal_plan(self, message: ConsistencyCheck | UnmaskRequest) -> dict[int, str]:
        both = message.survivors & message.dropped
        if both:
            raise DoubleRevealRefused(
                f"asked to reveal both secrets of clients {sorted(both)[:5]}; refusing"
            )
        plan: dict[int, str] = {}
        for peer in self._neighbours:
            survived, dropped = peer in message.survivors, peer in message.dropped
            if (survived or dropped) != (peer in self._held):
                raise ProtocolViolation(
                    f"the server's account of client {peer} contradicts the shares it forwarded"
                )
            if survived or dropped:
                plan[peer] = _SELF_MASK if survived else _KEY
        return plan

    def _unmask(self, message: UnmaskRequest) -> UnmaskShares:
        self._check_signed(message)
        # The request repeats the sets this client checked and signed (same view digest), so
        # the plan made then holds; what is new to check is the certificate.
        plan = self._plan
        check_certificate(
            self.config,
            self.round_id,
            message.survivors,
            message.dropped,
            message.signatures,
            identities=self._peers,
        )
        self._revealed = plan
        reply = UnmaskShares(
            round_id=self.round_id,
            sender=self.client_id,
            self_mask_shares=tuple(
                RevealedShare(peer, self._held[peer][0].to_bytes())
                for peer, kind in plan.items()
                if kind == _SELF_MASK
            ),
            key_shares=tuple(
                RevealedShare(peer, self._held[peer][1].to_bytes())
                for peer, kind in plan.items()
                if kind == _KEY
            ),
        )
        self._response = sign(reply, self._identity)
        self.stage = Stage.DONE
        return self._response

    def _check_signed(self, message: UnmaskRequest) -> None:
        assert self._signed is not None
        view = survivor_view(message.survivors, message.dropped)
        if not hmac.compare_digest(view, self._signed.view):
            raise DoubleRevealRefused(
                "the unmask request's survivor set is not the one this client signed; refusing"
            )

    def _repeat_unmask(self, message: UnmaskRequest) -> UnmaskShares:
        """A repeated request gets the same answer; one that flips any peer is refused."""
        try:
            self._check_signed(message)
            plan = self._reveal_plan(message)
        except CaliFusionError:
            self.stage = Stage.ABORTED
            raise
        flipped = sorted(peer for peer, kind in plan.items() if self._revealed.get(peer) != kind)
        if flipped:
            self.stage = Stage.ABORTED
            raise DoubleRevealRefused(
                f"already revealed the other secret of clients {flipped[:5]}; refusing"
            )
        assert self._response is not None
        return self._response

    def _expect(self, stage: Stage) -> None:
        if self.stage is not stage:
            raise _StageMismatch(f"client is at stage {self.stage}, message needs {stage}")


class _StageMismatch(Exception):
    """Internal: a message arrived for another stage (rejected without aborting)."""
