"""The consistency check: signatures over the survivor set, refused forgeries, dropouts."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.core.errors import BadSignature
from califusion.fl.secagg import (
    ConsistencyCheck,
    ConsistencySignature,
    DoubleRevealRefused,
    DuplicateMessage,
    ProtocolViolation,
    SecAggAborted,
    SecAggConfig,
    Stage,
    UnmaskRequest,
    UnmaskShares,
    WrongRound,
    consistency_threshold,
    decode_client,
    decode_server,
    encode_client,
    encode_server,
    simulate_round,
    survivor_view,
)
from califusion.fl.secagg.messages import sign

from .harness import Harness, expected_total, identity, updates_for


def dense_round(n: int = 8) -> Harness:
    return Harness(SecAggConfig.plan(range(n), 32, clip=1.0, max_dropout=0.25, dense=True))


def to_consistency(harness: Harness, silent: tuple[int, ...] = ()) -> list[ConsistencyCheck]:
    masked = harness.replies(harness.step(harness.advertise()), silent=silent)
    checks = harness.send(masked)
    assert all(isinstance(c, ConsistencyCheck) for c in checks)
    return checks  # type: ignore[return-value]


def signatures_of(harness: Harness, checks: list[ConsistencyCheck]) -> list[ConsistencySignature]:
    signed = harness.replies(checks)
    assert all(isinstance(s, ConsistencySignature) for s in signed)
    return signed  # type: ignore[return-value]


def test_threshold_is_a_majority_raised_by_corruption() -> None:
    assert [consistency_threshold(n) for n in (2, 3, 8, 9, 100)] == [2, 2, 5, 5, 51]
    assert consistency_threshold(100, 0.05) == 53  # C = 5: 2T − n = 6 > 5
    config = SecAggConfig.plan(range(100), 8, clip=1.0, max_corruption=0.05)
    assert config.consistency_threshold == 53
    assert SecAggConfig.from_dict(config.to_dict()) == config
    legacy = {k: v for k, v in config.to_dict().items() if k != "max_corruption"}
    assert SecAggConfig.from_dict(legacy).max_corruption == 0.0


def test_every_survivor_signs_the_same_set_and_the_request_carries_them() -> None:
    harness = dense_round()
    checks = to_consistency(harness, silent=(5,))
    assert {(c.survivors, c.dropped) for c in checks} == {
        (frozenset(range(8)) - {5}, frozenset({5}))
    }
    requests = harness.step(checks)
    assert all(isinstance(r, UnmaskRequest) for r in requests)
    request = requests[0]
    assert isinstance(request, UnmaskRequest)
    view = survivor_view(request.survivors, request.dropped)
    required = harness.config.consistency_threshold
    assert [s.sender for s in request.signatures] == sorted(request.survivors)[:required]
    assert all(s.view == view for s in request.signatures)
    assert decode_server(encode_server(request)) == request
    signed = request.signatures[0]
    assert decode_client(encode_client(signed)) == signed
    harness.finish(requests)
    result = harness.server.result
    assert np.array_equal(
        result.total, expected_total(harness.config, harness.updates, result.contributors)
    )
    assert harness.server.survivor_set == (request.survivors, request.dropped)
    everyone = harness.server.consistency_signatures  # the transcript keeps them all
    assert [s.sender for s in everyone] == sorted(request.survivors)
    assert everyone[:required] == request.signatures


def test_client_signs_one_view_per_round() -> None:
    harness = dense_round()
    check = to_consistency(harness, silent=(5,))[0]
    client = harness.clients[check.recipient]
    (first,) = client.handle(check)
    assert client.handle(check) == [first]  # a retransmission gets the same signature
    other = dataclasses.replace(check, survivors=check.survivors | {5}, dropped=frozenset())
    with pytest.raises(DoubleRevealRefused, match="another survivor set"):
        client.handle(other)
    assert client.stage is Stage.ABORTED


def test_client_refuses_to_sign_a_set_that_would_split_the_survivors() -> None:
    """A consistent lie is refused too: claiming all but t − 1 of a client's neighbours
    dropped would leave its secret (and its part of the sum) cut off from the rest."""
    harness = Harness(SecAggConfig.plan(range(40), 16, clip=1.0, max_dropout=0.1))
    checks = to_consistency(harness)
    graph = harness.config.graph(harness.round_id)
    around = graph.neighbours(0)
    cut = frozenset(around[harness.config.threshold - 1 :])
    recipient = next(c for c in checks if c.recipient not in cut and c.recipient != 0)
    lie = dataclasses.replace(
        recipient, survivors=recipient.survivors - cut, dropped=recipient.dropped | cut
    )
    with pytest.raises(SecAggAborted, match="neighbours left"):
        harness.clients[recipient.recipient].handle(lie)


def test_server_refuses_forged_duplicated_and_wrong_set_signatures() -> None:
    harness = dense_round()
    checks = to_consistency(harness)
    signed = signatures_of(harness, checks)
    genuine = signed[0]
    forged = sign(genuine, Ed25519PrivateKey.generate())
    with pytest.raises(BadSignature):
        harness.server.receive(forged, harness.now)
    other_view = survivor_view(frozenset(range(7)), frozenset({7}))
    wrong_set = sign(dataclasses.replace(genuine, view=other_view), identity(genuine.sender))
    with pytest.raises(ProtocolViolation, match="another survivor set"):
        harness.server.receive(wrong_set, harness.now)
    replayed = sign(dataclasses.replace(genuine, round_id=os.urandom(16)), identity(0))
    with pytest.raises(WrongRound):
        harness.server.receive(replayed, harness.now)
    harness.server.receive(genuine, harness.now)
    with pytest.raises(DuplicateMessage):
        harness.server.receive(genuine, harness.now)
    harness.finish(harness.send(signed[1:]))
    assert harness.server.stage is Stage.DONE


def test_server_refuses_signatures_from_clients_that_are_not_survivors() -> None:
    harness = dense_round()
    checks = to_consistency(harness, silent=(5,))
    view = survivor_view(checks[0].survivors, checks[0].dropped)
    outsider = sign(ConsistencySignature(harness.round_id, 5, view), identity(5))
    with pytest.raises(ProtocolViolation, match="not part of"):
        harness.server.receive(outsider, harness.now)


def _unmask_request(harness: Harness) -> UnmaskRequest:
    requests = harness.step(to_consistency(harness))
    request = requests[0]
    assert isinstance(request, UnmaskRequest)
    return request


def _refused(harness: Harness, request: UnmaskRequest, error: type[Exception], match: str) -> None:
    client = harness.clients[request.recipient]
    with pytest.raises(error, match=match):
        client.handle(request)
    assert client.stage is Stage.ABORTED  # and it revealed nothing: no reply was returned
    with pytest.raises(SecAggAborted):
        client.handle(dataclasses.replace(request))


def test_client_refuses_a_forged_signature() -> None:
    harness = dense_round()
    request = _unmask_request(harness)
    forged = sign(request.signatures[1], Ed25519PrivateKey.generate())
    signatures = tuple(forged if s.sender == forged.sender else s for s in request.signatures)
    _refused(
        harness, dataclasses.replace(request, signatures=signatures), BadSignature, "not signed"
    )


def test_client_refuses_a_duplicated_signature() -> None:
    harness = dense_round()
    request = _unmask_request(harness)
    padded = (*request.signatures[:4], request.signatures[0])  # 4 distinct + a copy: 5 entries
    _refused(harness, dataclasses.replace(request, signatures=padded), ProtocolViolation, "twice")


def test_client_refuses_a_signature_over_another_set() -> None:
    harness = dense_round()
    request = _unmask_request(harness)
    other = survivor_view(frozenset(range(7)), frozenset({7}))
    stray = sign(dataclasses.replace(request.signatures[2], view=other), identity(2))
    signatures = tuple(stray if s.sender == 2 else s for s in request.signatures)
    _refused(
        harness,
        dataclasses.replace(request, signatures=signatures),
        ProtocolViolation,
        "another survivor set",
    )


def test_client_refuses_too_few_signatures() -> None:
    harness = dense_round()
    request = _unmask_request(harness)
    few = request.signatures[: harness.config.consistency_threshold - 1]
    _refused(harness, dataclasses.replace(request, signatures=few), SecAggAborted, "5 needed")


def test_client_refuses_an_unmask_request_for_another_set_than_it_signed() -> None:
    harness = dense_round()
    request = _unmask_request(harness)
    someone = next(p for p in sorted(request.survivors) if p != request.recipient)
    swapped = dataclasses.replace(
        request, survivors=request.survivors - {someone}, dropped=frozenset({someone})
    )
    _refused(harness, swapped, DoubleRevealRefused, "not the one this client signed")


def test_enough_signatures_with_dropouts_in_the_consistency_stage() -> None:
    harness = dense_round()
    checks = to_consistency(harness)
    requests = harness.step(checks, silent=(1, 6))  # 6 of 8 sign; 5 are needed
    assert {r.recipient for r in requests} == {0, 2, 3, 4, 5, 7}
    replies = harness.replies(requests)
    assert all(isinstance(r, UnmaskShares) for r in replies)
    harness.send(replies)
    result = harness.server.result
    assert result.contributors == frozenset(range(8))  # silent signers' inputs still count
    assert np.array_equal(
        result.total, expected_total(harness.config, harness.updates, result.contributors)
    )


def test_too_few_signers_abort_and_nobody_is_asked_to_unmask() -> None:
    harness = dense_round()
    checks = to_consistency(harness)
    with pytest.raises(SecAggAborted, match="signed the survivor set") as caught:
        harness.step(checks, silent=(1, 2, 3, 6))  # 4 of 8 sign; 5 are needed
    assert caught.value.stage == str(Stage.CONSISTENCY_CHECK)
    assert harness.server.stage is Stage.ABORTED
    assert not any(c.stage is Stage.DONE for c in harness.clients.values())


def test_signers_that_cannot_reveal_a_secret_abort() -> None:
    """Enough signatures, but a client's neighbours went silent: fewer than t of them could
    reveal its secret, so the round aborts before anyone is asked to unmask."""
    config = SecAggConfig.plan(range(40), 16, clip=1.0, max_dropout=0.1)
    harness = Harness(config)
    checks = to_consistency(harness)
    around = config.graph(harness.round_id).neighbours(0)
    silent = around[: config.degree - config.threshold + 1]
    with pytest.raises(SecAggAborted, match="neighbours left") as caught:
        harness.step(checks, silent=silent)
    assert caught.value.stage == str(Stage.CONSISTENCY_CHECK)


def test_simulated_round_with_consistency_dropouts_is_exact() -> None:
    config = SecAggConfig.plan(range(20), 300, clip=1.0, max_dropout=0.2)
    updates = updates_for(config)
    dropouts = {3: Stage.CONSISTENCY_CHECK, 11: Stage.CONSISTENCY_CHECK, 7: Stage.UNMASK}
    result = simulate_round(config, updates, round_id=os.urandom(16), dropouts=dropouts).result
    assert result.contributors == frozenset(range(20))
    assert np.array_equal(result.total, expected_total(config, updates, result.contributors))
