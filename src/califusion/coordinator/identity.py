"""The coordinator's own identity: an Ed25519 key that signs round transcripts.

It is made on first start and kept in ``settings.identity_file`` (PKCS#8 PEM, mode 0600,
encrypted with ``settings.identity_passphrase`` when one is set). Several workers that start at
once race to create it; the file appears atomically (hard link of a finished temporary file), so
exactly one key wins and every worker loads that one. Its public key is served at
``GET /v1/coordinator`` so members can check transcripts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    KeySerializationEncryption,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from califusion.core.errors import InvalidInput, Unavailable
from califusion.crypto.principal import Principal

log = logging.getLogger(__name__)


class ServiceIdentity:
    """The coordinator's signing key; never logged, never served."""

    __slots__ = ("_key", "public_bytes")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_bytes = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def principal(self) -> Principal:
        return Principal.self_authenticating(self.public_bytes)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"ServiceIdentity(principal={self.principal})"


def load_or_create(path: Path, passphrase: str | None = None) -> ServiceIdentity:
    """The key in ``path``, made there first if the file does not exist."""
    password = passphrase.encode() if passphrase else None
    if not path.exists():
        encryption: KeySerializationEncryption = (
            BestAvailableEncryption(password) if password else NoEncryption()
        )
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, encryption
        )
        _create_exclusively(path, pem)
    try:
        key = load_pem_private_key(path.read_bytes(), password)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{path} is not a readable coordinator key (wrong or missing passphrase?)"
        ) from exc
    except OSError as exc:
        raise Unavailable(f"cannot read the coordinator key {path} ({exc.strerror})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} does not hold an Ed25519 key")
    identity = ServiceIdentity(key)
    log.info("coordinator identity loaded", extra={"principal": identity.principal.to_text()})
    return identity


def _create_exclusively(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another worker won: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
