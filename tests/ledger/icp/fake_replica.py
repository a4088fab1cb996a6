"""A fake replica at icp-py-core's HTTP boundary (its ``Client``): no network, real agent.

Everything above the HTTP client runs for real — our IcpLedger, the Candid codec, icp-py-core's
``Agent`` (envelope, request id, signing, CBOR, certificate lookup, Candid decoding). The fake
checks each signed envelope the way a replica would (request id, Ed25519 signature, sender
principal, canister id) and answers with reply bytes the test chose — the recorded reference
bytes from vectors.json.

Update replies come the v4 way, as a certificate whose hash tree holds
``request_status/<request id>/{status, reply}``. Its BLS signature is 48 zero bytes, so it only
passes when certificate verification is off (or fails, as it must, when it is on).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cbor2
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.crypto.identity import PublicIdentity
from califusion.crypto.principal import ED25519_DER_PREFIX, Principal

REQUEST_DOMAIN = b"\x0aic-request"


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def request_id(content: dict[str, object]) -> bytes:
    """The representation-independent hash of a request (IC interface spec), written here
    independently of icp-py-core's."""
    pairs = []
    for key, value in content.items():
        if isinstance(value, bytes):
            digest = hashlib.sha256(value).digest()
        elif isinstance(value, str):
            digest = hashlib.sha256(value.encode()).digest()
        elif isinstance(value, int):
            digest = hashlib.sha256(_uleb(value)).digest()
        else:
            raise AssertionError(f"unexpected request field {key}: {value!r}")
        pairs.append(hashlib.sha256(key.encode()).digest() + digest)
    return hashlib.sha256(b"".join(sorted(pairs))).digest()


@dataclass(frozen=True)
class SeenCall:
    request_type: str  # "query" or "call"
    method: str
    arg: bytes


@dataclass
class FakeReplica:
    """Plays one ledger canister; ``replies[method]`` are DIDL bytes, ``rejects[method]`` a
    (reject code, message) pair."""

    canister_id: Principal
    signer: PublicIdentity
    replies: dict[str, bytes] = field(default_factory=dict)
    rejects: dict[str, tuple[int, str]] = field(default_factory=dict)
    seen: list[SeenCall] = field(default_factory=list)

    def query(self, canister_id: str, data: bytes, *, timeout: httpx.Timeout) -> bytes:
        content, _ = self._open(canister_id, data, "query")
        method = str(content["method_name"])
        if method in self.rejects:
            code, message = self.rejects[method]
            return cbor2.dumps(
                {
                    "status": "rejected",
                    "reject_code": code,
                    "reject_message": message,
                    "error_code": "IC0503",
                }
            )
        return cbor2.dumps({"status": "replied", "reply": {"arg": self.replies[method]}})

    def call(self, canister_id: str, data: bytes) -> httpx.Response:
        content, rid = self._open(canister_id, data, "call")
        method = str(content["method_name"])
        if method in self.rejects:
            code, message = self.rejects[method]
            status = [
                [2, b"reject_code", [3, _uleb(code)]],
                [2, b"reject_message", [3, message.encode()]],
                [2, b"status", [3, b"rejected"]],
            ]
        else:
            status = [
                [2, b"reply", [3, self.replies[method]]],
                [2, b"status", [3, b"replied"]],
            ]
        subtree: list[object] = status[-1]
        for node in reversed(status[:-1]):
            subtree = [1, node, subtree]
        tree = [2, b"request_status", [2, rid, subtree]]
        certificate = cbor2.dumps({"tree": tree, "signature": bytes(48)})
        body = cbor2.dumps({"status": "replied", "certificate": certificate})
        return httpx.Response(200, content=body)

    def read_state(self, canister_id: str, data: bytes) -> bytes:
        raise AssertionError("the fake replica answers every call at once; nothing polls")

    def _open(
        self, canister_id: str, data: bytes, request_type: str
    ) -> tuple[dict[str, object], bytes]:
        envelope = cbor2.loads(data)
        content: dict[str, object] = envelope["content"]
        assert canister_id == self.canister_id.to_text()
        assert content["request_type"] == request_type
        assert content["canister_id"] == self.canister_id.raw
        assert content["sender"] == self.signer.principal.raw
        assert envelope["sender_pubkey"] == ED25519_DER_PREFIX + self.signer.signing_public
        rid = request_id(content)
        # Raises InvalidSignature unless our identity signed this very request.
        Ed25519PublicKey.from_public_bytes(self.signer.signing_public).verify(
            envelope["sender_sig"], REQUEST_DOMAIN + rid
        )
        arg = content["arg"]
        assert isinstance(arg, bytes)
        self.seen.append(SeenCall(request_type, str(content["method_name"]), arg))
        return content, rid
