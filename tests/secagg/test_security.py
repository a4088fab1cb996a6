"""Forged, tampered, replayed and unsafe messages fail; honest clients never overshare."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from califusion.core.errors import BadSignature, DecryptionFailed, UnknownPrincipal
from califusion.crypto.prg import accumulate
from califusion.crypto.shamir import Share, combine
from califusion.fl.secagg import (
    AdvertiseKeys,
    ConsistencyCheck,
    ConsistencySignature,
    DoubleRevealRefused,
    DuplicateMessage,
    KeysAdvertised,
    LateMessage,
    MaskedInput,
    ProtocolViolation,
    RevealedShare,
    SecAggAborted,
    SecAggConfig,
    ShareKeys,
    SharesForwarded,
    Stage,
    UnmaskRequest,
    UnmaskShares,
    WrongRound,
)
from califusion.fl.secagg._keys import pairwise_seed, self_mask_seed
from califusion.fl.secagg.messages import sign

from .harness import Harness, expected_total, identity


def small_round(n: int = 8, dense: bool = True, workers: int = 1) -> Harness:
    config = SecAggConfig.plan(range(n), 32, clip=1.0, max_dropout=0.25, dense=dense)
    return Harness(config, workers=workers)


def through_masking(harness: Harness) -> list[MaskedInput]:
    """Run to the masked-input stage; return the masked inputs without delivering them."""
    masked = harness.replies(harness.step(harness.advertise()))
    assert all(isinstance(m, MaskedInput) for m in masked)
    return masked  # type: ignore[return-value]


# -- server side: signatures, rounds, duplicates ------------------------------------------------
def test_tampered_advertised_keys_rejected() -> None:
    harness = small_round()
    message = harness.clients[0].start()
    forged = dataclasses.replace(
        message, mask_public=X25519PrivateKey.generate().public_key().public_bytes_raw()
    )
    with pytest.raises(BadSignature):
        harness.server.receive(forged, 0.0)
    harness.server.receive(message, 0.0)  # the genuine one still goes through


@pytest.mark.parametrize("workers", [1, 3])  # 3: the unmasking split over threads
def test_tampered_masked_input_rejected_and_not_summed(workers: int) -> None:
    harness = small_round(workers=workers)
    masked = through_masking(harness)
    victim = masked[0]
    altered = victim.masked.copy()
    altered[3] += 1
    with pytest.raises(BadSignature):
        harness.server.receive(dataclasses.replace(victim, masked=altered), harness.now)
    harness.finish(harness.send(masked))
    result = harness.server.result
    assert np.array_equal(
        result.total, expected_total(harness.config, harness.updates, result.contributors)
    )


def test_replayed_message_from_earlier_round_rejected() -> None:
    config = SecAggConfig.plan(range(6), 16, clip=1.0, max_dropout=0.2, dense=True)
    earlier, current = Harness(config), Harness(config)
    old_masked = through_masking(earlier)
    old = earlier.clients[2]
    with pytest.raises(WrongRound):
        current.server.receive(
            sign(AdvertiseKeys(earlier.round_id, 2, bytes(32), bytes(32)), identity(2)), 0.0
        )
    assert old.stage is Stage.CONSISTENCY_CHECK
    through_masking(current)
    with pytest.raises(WrongRound):
        current.server.receive(old_masked[0], current.now)


def test_duplicate_messages_rejected_and_counted_once() -> None:
    harness = small_round()
    first = harness.clients[0].start()
    harness.server.receive(first, 0.0)
    with pytest.raises(DuplicateMessage):
        harness.server.receive(first, 0.0)
    out = harness.send([c.start() for pid, c in harness.clients.items() if pid != 0])
    masked = harness.replies(harness.step(out))
    harness.server.receive(masked[0], harness.now)
    with pytest.raises(DuplicateMessage):
        harness.server.receive(masked[0], harness.now)
    harness.finish(harness.send(masked[1:]))
    result = harness.server.result
    assert np.array_equal(
        result.total, expected_total(harness.config, harness.updates, result.contributors)
    )
    with pytest.raises(DuplicateMessage):  # still a duplicate after the stage closed
        harness.server.receive(first, harness.now)


def test_late_wrong_stage_and_unknown_messages_rejected() -> None:
    harness = small_round()
    out = harness.advertise(silent=[7])
    with pytest.raises(LateMessage):
        harness.server.receive(harness.clients[7].start(), harness.now)
    stranger = Ed25519PrivateKey.generate()
    forged = sign(AdvertiseKeys(harness.round_id, 99, bytes(32), bytes(32)), stranger)
    with pytest.raises(UnknownPrincipal):
        harness.server.receive(forged, harness.now)
    impostor = sign(AdvertiseKeys(harness.round_id, 1, bytes(32), bytes(32)), stranger)
    with pytest.raises(BadSignature):
        harness.server.receive(impostor, harness.now)
    replies = harness.replies(out)
    masked = harness.replies(harness.send(replies))
    early = UnmaskShares(harness.round_id, 0, (), ())
    with pytest.raises(ProtocolViolation):
        harness.server.receive(sign(early, identity(0)), harness.now)
    short = MaskedInput(harness.round_id, 0, np.zeros(5, np.uint32))
    wrong_shape = sign(short, identity(0), payload=short.payload(bytes(32)))
    with pytest.raises(ProtocolViolation, match="words"):
        harness.server.receive(wrong_shape, harness.now)
    assert masked


def test_share_keys_must_cover_every_neighbour() -> None:
    harness = small_round()
    reply = harness.replies(harness.advertise())[0]
    assert isinstance(reply, ShareKeys)
    short = dataclasses.replace(reply, shares=reply.shares[1:])
    with pytest.raises(ProtocolViolation, match="one share to each"):
        harness.server.receive(sign(short, identity(short.sender)), harness.now)


# -- client side: forged keys, tampered shares -------------------------------------------------
def test_client_rejects_substituted_peer_keys() -> None:
    harness = small_round()
    out = harness.advertise()
    message = next(m for m in out if m.recipient == 0)
    assert isinstance(message, KeysAdvertised)
    genuine = message.keys[0]
    swapped = dataclasses.replace(
        genuine, cipher_public=X25519PrivateKey.generate().public_key().public_bytes_raw()
    )
    tampered = dataclasses.replace(message, keys=(swapped, *message.keys[1:]))
    with pytest.raises(BadSignature):
        harness.clients[0].handle(tampered)
    assert harness.clients[0].stage is Stage.ABORTED
    with pytest.raises(SecAggAborted):
        harness.clients[0].handle(message)


def test_client_detects_tampered_or_redirected_shares() -> None:
    harness = small_round()
    forwarded = harness.step(harness.advertise())
    to_zero = next(m for m in forwarded if m.recipient == 0)
    assert isinstance(to_zero, SharesForwarded)
    sealed = to_zero.shares[0]
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    bad = dataclasses.replace(
        to_zero, shares=(dataclasses.replace(sealed, ciphertext=flipped), *to_zero.shares[1:])
    )
    with pytest.raises(DecryptionFailed):
        harness.clients[0].handle(bad)
    to_one = next(m for m in forwarded if m.recipient == 1)
    assert isinstance(to_one, SharesForwarded)
    stolen = next(s for s in to_zero.shares if s.sender != 1)
    redirected = dataclasses.replace(
        to_one,
        shares=tuple(
            dataclasses.replace(stolen, recipient=1) if s.sender == stolen.sender else s
            for s in to_one.shares
        ),
    )
    with pytest.raises(DecryptionFailed):
        harness.clients[1].handle(redirected)


def test_client_rejects_messages_for_others_or_other_rounds() -> None:
    harness = small_round()
    out = harness.advertise()
    message = next(m for m in out if m.recipient == 0)
    with pytest.raises(ProtocolViolation):
        harness.clients[1].handle(message)
    with pytest.raises(WrongRound):
        harness.clients[0].handle(dataclasses.replace(message, round_id=os.urandom(16)))
    with pytest.raises(ProtocolViolation):  # a later stage's message: rejected, not fatal
        harness.clients[0].handle(UnmaskRequest(harness.round_id, 0, frozenset(), frozenset()))
    assert harness.clients[0].handle(message)
    with pytest.raises(ProtocolViolation):
        harness.clients[0].start()


# -- unmasking: the honest client's refusals ---------------------------------------------------
def to_consistency(harness: Harness, silent: tuple[int, ...] = ()) -> list[ConsistencyCheck]:
    masked = harness.replies(harness.step(harness.advertise()), silent=silent)
    checks = harness.send(masked)
    assert all(isinstance(c, ConsistencyCheck) for c in checks)
    return checks  # type: ignore[return-value]


def to_unmask(harness: Harness, silent: tuple[int, ...] = ()) -> list[UnmaskRequest]:
    requests = harness.step(to_consistency(harness, silent))
    assert all(isinstance(r, UnmaskRequest) for r in requests)
    return requests  # type: ignore[return-value]


def test_honest_client_refuses_to_reveal_both_secrets_of_a_peer() -> None:
    harness = small_round()
    request = to_unmask(harness, silent=(5,))[0]
    assert request.dropped == {5}
    both = dataclasses.replace(request, survivors=request.survivors | {5})
    client = harness.clients[request.recipient]
    with pytest.raises(DoubleRevealRefused):
        client.handle(both)
    assert client.stage is Stage.ABORTED


def test_honest_client_refuses_a_second_request_that_flips_a_peer() -> None:
    harness = small_round()
    request = to_unmask(harness, silent=(5,))[0]
    client = harness.clients[request.recipient]
    first = client.handle(request)
    assert client.handle(request) == first  # a retransmitted request gets the same answer
    flipped = dataclasses.replace(
        request, survivors=request.survivors | {5}, dropped=frozenset({6})
    )
    flipped = dataclasses.replace(flipped, survivors=flipped.survivors - {6})
    with pytest.raises(DoubleRevealRefused):
        client.handle(flipped)
    assert client.stage is Stage.ABORTED


def test_client_refuses_an_account_that_contradicts_its_shares() -> None:
    harness = small_round()
    request = to_consistency(harness)[0]
    me = request.recipient
    someone = next(p for p in sorted(request.survivors) if p != me)
    missing_peer = dataclasses.replace(request, survivors=request.survivors - {someone})
    with pytest.raises(ProtocolViolation, match="contradicts"):
        harness.clients[me].handle(missing_peer)
    other = next(p for p in sorted(request.survivors) if p != me)
    not_counted = dataclasses.replace(
        request, recipient=other, survivors=request.survivors - {other}, dropped=frozenset({other})
    )
    with pytest.raises((ProtocolViolation, DoubleRevealRefused)):
        harness.clients[other].handle(not_counted)


def test_client_aborts_when_too_few_survive() -> None:
    config = SecAggConfig.plan(range(8), 16, clip=1.0, max_dropout=0.25, dense=True)
    harness = Harness(config)
    request = to_consistency(harness)[0]
    me = request.recipient
    # Claim all but 3 dropped: consistent with what the client holds, but below min_survivors.
    survivors = frozenset({me, *sorted(request.survivors - {me})[:2]})
    lie = dataclasses.replace(request, survivors=survivors, dropped=request.survivors - survivors)
    with pytest.raises(SecAggAborted, match="revealing nothing"):
        harness.clients[me].handle(lie)


def test_bad_share_from_a_malicious_client_aborts_the_round() -> None:
    harness = small_round()
    requests = to_unmask(harness)
    replies = harness.replies(requests)
    cheat = replies[0]
    assert isinstance(cheat, UnmaskShares)
    good = Share.from_bytes(cheat.self_mask_shares[0].share)
    corrupted_values = bytes([good.values[0] ^ 1]) + good.values[1:]
    corrupted = Share(good.index, good.secret_len, corrupted_values).to_bytes()
    forged = dataclasses.replace(
        cheat,
        self_mask_shares=(
            RevealedShare(cheat.self_mask_shares[0].owner, corrupted),
            *cheat.self_mask_shares[1:],
        ),
    )
    with pytest.raises(SecAggAborted, match="unmask"):
        harness.send([sign(forged, identity(cheat.sender)), *replies[1:]])
    assert harness.server.stage is Stage.ABORTED


def test_lying_server_cannot_isolate_a_client_with_inconsistent_views() -> None:
    """Tells client u that all its neighbours dropped and everyone else that u survived
    (and u's neighbours dropped): no honest client reveals both secrets of one peer, and yet,
    without the consistency check, the server gathered b_u and every neighbour's s_v and
    unmasked y_u alone. Now each client signs the view it was told and reveals nothing
    unless a majority of the round signed that same view: the server, forwarding to each
    client every signature over its view (the most it can), gets no share at all."""
    harness = Harness(SecAggConfig.plan(range(40), 64, clip=1.0, max_dropout=0.1))
    masked = {m.sender: m for m in through_masking(harness)}
    graph = harness.config.graph(harness.round_id)
    victim, around = 0, set(graph.neighbours(0))
    views: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
    for client in harness.config.participants:
        mine = set(graph.neighbours(client))
        gone = mine if client == victim else (mine & around) - {client, victim}
        views[client] = frozenset(set(harness.config.participants) - gone), frozenset(gone)
    signed: dict[tuple[frozenset[int], frozenset[int]], list[ConsistencySignature]] = {}
    for client, (survivors, dropped) in views.items():
        check = ConsistencyCheck(harness.round_id, client, survivors, dropped)
        try:
            (signature,) = harness.clients[client].handle(check)
        except (ProtocolViolation, DoubleRevealRefused, SecAggAborted):
            continue
        assert isinstance(signature, ConsistencySignature)
        signed.setdefault(views[client], []).append(signature)
    assert signed, "some clients signed their view: the attack reaches the unmask stage"
    assert max(len(s) for s in signed.values()) < harness.config.consistency_threshold
    self_shares: list[Share] = []
    key_shares: dict[int, list[Share]] = {v: [] for v in around}
    revealed = 0
    for client, (survivors, dropped) in views.items():
        request = UnmaskRequest(
            harness.round_id,
            client,
            survivors,
            dropped,
            tuple(signed.get(views[client], ())),
        )
        try:
            (reply,) = harness.clients[client].handle(request)
        except (ProtocolViolation, DoubleRevealRefused, SecAggAborted):
            continue
        assert isinstance(reply, UnmaskShares)
        revealed += 1
        self_shares += [Share.from_bytes(r.share) for r in reply.self_mask_shares if r.owner == 0]
        for r in reply.key_shares:
            if r.owner in around:
                key_shares[r.owner].append(Share.from_bytes(r.share))
    assert revealed == 0, "an honest client revealed shares for an uncertified survivor set"
    assert all(c.stage is Stage.ABORTED for c in harness.clients.values())
    t = harness.config.threshold
    if len(self_shares) < t or any(len(shares) < t for shares in key_shares.values()):
        return  # the honest clients held out: the attack failed
    exposed = masked[victim].masked.copy()
    accumulate(exposed, subtract=[self_mask_seed(combine(self_shares, t), harness.round_id, 0)])
    public = harness.server._keys[victim].mask_public
    for v, shares in key_shares.items():
        seed = pairwise_seed(
            X25519PrivateKey.from_private_bytes(combine(shares, t)), public, harness.round_id, v, 0
        )
        accumulate(exposed, add=[seed])  # the victim (id 0) subtracted PRG(s_0v) for v > 0
    quantized = harness.config.quantizer.quantize(harness.updates[victim])
    assert not np.array_equal(exposed, quantized), "the server unmasked one client's input"
