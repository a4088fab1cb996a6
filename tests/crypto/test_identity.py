"""Identity and PublicIdentity: RFC vectors, verification, JSON form, no secrets in reprs."""

from __future__ import annotations

import copy
import pickle

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from califusion.core.errors import BadSignature, InvalidInput
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity, PublicIdentity
from califusion.crypto.principal import Principal

from .vectors import (
    RFC7748_ALICE_PRIVATE,
    RFC7748_ALICE_PUBLIC,
    RFC7748_BOB_PRIVATE,
    RFC7748_BOB_PUBLIC,
    RFC7748_SHARED,
    RFC8032_EMPTY_SIGNATURE,
    RFC8032_PUBLIC,
    RFC8032_SEED,
)

RFC8032_PRINCIPAL = "e73il-iz5tp-nkgt7-idxyw-ngkah-47bpv-qdase-pzde6-g6vwc-a3eql-jae"


def test_rfc8032_test_1_through_sign(rfc_identity: Identity) -> None:
    assert rfc_identity.public().signing_public == RFC8032_PUBLIC
    assert rfc_identity.sign(b"") == RFC8032_EMPTY_SIGNATURE
    rfc_identity.public().verify(RFC8032_EMPTY_SIGNATURE, b"")


def test_rfc8032_principal(rfc_identity: Identity) -> None:
    assert rfc_identity.principal.to_text() == RFC8032_PRINCIPAL
    assert rfc_identity.public().principal == Principal.from_text(RFC8032_PRINCIPAL)


def test_rfc7748_agreement_key() -> None:
    alice = Identity.from_private_bytes(RFC8032_SEED, RFC7748_ALICE_PRIVATE)
    bob = Identity.from_private_bytes(RFC8032_SEED, RFC7748_BOB_PRIVATE)
    assert alice.public().agreement_public == RFC7748_ALICE_PUBLIC
    assert bob.public().agreement_public == RFC7748_BOB_PUBLIC
    shared = alice.agreement_private.exchange(X25519PublicKey.from_public_bytes(RFC7748_BOB_PUBLIC))
    assert shared == RFC7748_SHARED
    assert bob.agreement_private.exchange(
        X25519PublicKey.from_public_bytes(RFC7748_ALICE_PUBLIC)
    ) == (RFC7748_SHARED)


def test_export_private_bytes_round_trip() -> None:
    identity = Identity.generate()
    again = Identity.from_private_bytes(*identity.export_private_bytes())
    assert again.public() == identity.public()
    assert isinstance(identity.agreement_private, X25519PrivateKey)


def test_generated_identities_differ() -> None:
    assert Identity.generate().principal != Identity.generate().principal


@pytest.mark.parametrize(
    "tamper",
    [
        lambda sig, msg: (sig[:-1] + bytes([sig[-1] ^ 1]), msg),
        lambda sig, msg: (sig, msg + b"!"),
        lambda sig, msg: (sig[:63], msg),
        lambda sig, msg: (sig + b"\x00", msg),
        lambda sig, msg: (bytes(64), msg),
    ],
    ids=["flipped-signature", "other-message", "short", "long", "zero"],
)
def test_verify_raises_bad_signature(tamper: object) -> None:
    identity = Identity.generate()
    signature, message = tamper(identity.sign(b"hello"), b"hello")  # type: ignore[operator]
    with pytest.raises(BadSignature):
        identity.public().verify(signature, message)


def test_verify_with_another_key_raises() -> None:
    signature = Identity.generate().sign(b"hello")
    with pytest.raises(BadSignature):
        Identity.generate().public().verify(signature, b"hello")


def test_public_dict_round_trip(rfc_identity: Identity) -> None:
    data = rfc_identity.public().to_dict()
    assert data == {
        "principal": RFC8032_PRINCIPAL,
        "signing_public": b64e(RFC8032_PUBLIC),
        "agreement_public": b64e(RFC7748_BOB_PUBLIC),
    }
    assert PublicIdentity.from_dict(data) == rfc_identity.public()


def test_from_dict_rejects_a_principal_of_another_key(rfc_identity: Identity) -> None:
    data = rfc_identity.public().to_dict()
    data["principal"] = Identity.generate().principal.to_text()
    with pytest.raises(InvalidInput, match="principal"):
        PublicIdentity.from_dict(data)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("principal", None),
        ("principal", "not-a-principal"),
        ("signing_public", None),
        ("signing_public", "AAAA"),  # 3 bytes
        ("signing_public", b64e(RFC8032_PUBLIC) + "="),
        ("agreement_public", 42),
        ("agreement_public", b64e(bytes(33))),
    ],
)
def test_from_dict_rejects_malformed_fields(
    rfc_identity: Identity, key: str, value: object
) -> None:
    data: dict[str, object] = dict(rfc_identity.public().to_dict())
    data[key] = value
    with pytest.raises(InvalidInput):
        PublicIdentity.from_dict(data)


def test_public_identity_checks_key_lengths() -> None:
    with pytest.raises(InvalidInput):
        PublicIdentity(bytes(31), bytes(32))
    with pytest.raises(InvalidInput):
        Identity.from_private_bytes(bytes(32), bytes(16))


def test_reprs_show_no_key_material(rfc_identity: Identity) -> None:
    seed, scalar = rfc_identity.export_private_bytes()
    for text in (repr(rfc_identity), str(rfc_identity), repr(rfc_identity.public())):
        assert RFC8032_PRINCIPAL in text
        for secret in (seed, scalar):
            assert secret.hex() not in text
            assert b64e(secret) not in text
            assert repr(secret) not in text


def test_identity_cannot_be_pickled_or_copied(rfc_identity: Identity) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(rfc_identity)
    with pytest.raises(TypeError):
        copy.copy(rfc_identity)
