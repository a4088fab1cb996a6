"""Passphrase-encrypted keystore files.

One JSON file per identity. The private keys (Ed25519 seed ‖ X25519 scalar) are encrypted with
AES-256-GCM under a key derived from the passphrase with scrypt; the public identity and an
optional name sit in clear next to them, so showing or exporting the public identity needs no
passphrase. After decryption the private keys must reproduce the public part. Files are created
with mode 0600 and written atomically (temporary file, fsync, ``os.replace``)::

    {"format": "califusion-keystore", "version": 1, "name": "alice" | null,
     "public": {"principal": ..., "signing_public": ..., "agreement_public": ...},
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": <b64>},
     "cipher": {"name": "aes-256-gcm", "nonce": <b64>},
     "ciphertext": <b64>}
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from califusion.core.errors import Conflict, InvalidInput, NotFound, WrongPassphrase
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.identity import KEY_BYTES, Identity, PublicIdentity

KEYSTORE_FORMAT = "califusion-keystore"
KEYSTORE_VERSION = 1
DEFAULT_SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SCRYPT_N = 2**20
MAX_KEYSTORE_BYTES = 64 * 1024
_SALT_BYTES = 16
_NONCE_BYTES = 12
_AAD = b"califusion/keystore/v1"


@dataclass(frozen=True, slots=True)
class KeystoreInfo:
    """What a keystore shows without its passphrase."""

    path: Path
    public: PublicIdentity
    name: str | None


@dataclass(frozen=True, slots=True)
class _Parsed:
    info: KeystoreInfo
    n: int
    r: int
    p: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(secret)


def _valid_scrypt_n(n: object) -> bool:
    if not isinstance(n, int) or isinstance(n, bool):
        return False
    return 2 <= n <= MAX_SCRYPT_N and n & (n - 1) == 0


def save_keystore(
    path: Path | str,
    identity: Identity,
    passphrase: str,
    *,
    name: str | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    overwrite: bool = False,
) -> None:
    """Encrypt ``identity`` with ``passphrase`` into a new keystore file at ``path``."""
    path = Path(path)
    if not passphrase:
        raise InvalidInput("a keystore passphrase must not be empty")
    if not _valid_scrypt_n(scrypt_n):
        raise InvalidInput(f"scrypt n must be a power of two between 2 and {MAX_SCRYPT_N}")
    if not overwrite and path.exists():
        raise Conflict(f"keystore {path} already exists; choose another path or remove it first")
    salt = secrets.token_bytes(_SALT_BYTES)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    key = _derive(passphrase, salt, scrypt_n, SCRYPT_R, SCRYPT_P)
    seed, scalar = identity.export_private_bytes()
    document: dict[str, Any] = {
        "format": KEYSTORE_FORMAT,
        "version": KEYSTORE_VERSION,
        "name": name,
        "public": identity.public().to_dict(),
        "kdf": {"name": "scrypt", "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": b64e(salt)},
        "cipher": {"name": "aes-256-gcm", "nonce": b64e(nonce)},
        "ciphertext": b64e(AESGCM(key).encrypt(nonce, seed + scalar, _AAD)),
    }
    data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    try:
        _write_private_file(path, data, overwrite)
    except OSError as exc:
        raise InvalidInput(f"cannot write keystore {path}: {exc.strerror}") from exc


def _write_private_file(path: Path, data: bytes, overwrite: bool) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if not overwrite and path.exists():
            raise Conflict(f"keystore {path} already exists; choose another path or remove it")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename durable where directories can be synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _corrupt(path: Path, what: str) -> InvalidInput:
    return InvalidInput(f"keystore {path} is corrupt or not a keystore: {what}")


def _field(obj: object, key: str, kind: type, path: Path) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _corrupt(path, f"missing or invalid {key!r}")
    return value


def _b64_field(obj: object, key: str, size: int, path: Path) -> bytes:
    try:
        value = b64d(_field(obj, key, str, path))
    except InvalidInput as exc:
        raise _corrupt(path, f"{key!r} is not base64url") from exc
    if len(value) != size:
        raise _corrupt(path, f"{key!r} has the wrong length")
    return value


def _parse(path: Path) -> _Parsed:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEYSTORE_BYTES + 1)
    except FileNotFoundError as exc:
        raise NotFound(f"no keystore at {path}; create one with `califusion id new`") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read keystore {path}: {exc.strerror}") from exc
    if len(raw) > MAX_KEYSTORE_BYTES:
        raise _corrupt(path, "file is too large")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, "not JSON") from exc
    if _field(doc, "format", str, path) != KEYSTORE_FORMAT:
        raise _corrupt(path, f"format is not {KEYSTORE_FORMAT!r}")
    version = _field(doc, "version", int, path)
    if version != KEYSTORE_VERSION:
        raise InvalidInput(
            f"keystore {path} has version {version}; this CaliFusion reads version "
            f"{KEYSTORE_VERSION} only (upgrade CaliFusion?)"
        )
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise _corrupt(path, "'name' is not text")
    try:
        public = PublicIdentity.from_dict(_field(doc, "public", dict, path))
    except InvalidInput as exc:
        raise _corrupt(path, str(exc)) from exc
    kdf = _field(doc, "kdf", dict, path)
    cipher = _field(doc, "cipher", dict, path)
    if kdf.get("name") != "scrypt" or cipher.get("name") != "aes-256-gcm":
        raise _corrupt(path, "unsupported kdf or cipher")
    n, r, p = (_field(kdf, key, int, path) for key in ("n", "r", "p"))
    if not _valid_scrypt_n(n) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise _corrupt(path, "scrypt parameters out of range")
    return _Parsed(
        info=KeystoreInfo(path=path, public=public, name=name),
        n=n,
        r=r,
        p=p,
        salt=_b64_field(kdf, "salt", _SALT_BYTES, path),
        nonce=_b64_field(cipher, "nonce", _NONCE_BYTES, path),
        ciphertext=_b64_field(doc, "ciphertext", 2 * KEY_BYTES + 16, path),
    )


def read_keystore_info(path: Path | str) -> KeystoreInfo:
    """The public identity and name of a keystore; needs no passphrase."""
    return _parse(Path(path)).info


def read_public(path: Path | str) -> PublicIdentity:
    """The public identity stored in clear in a keystore."""
    return _parse(Path(path)).info.public


def load_keystore(path: Path | str, passphrase: str) -> Identity:
    """Unlock a keystore; WrongPassphrase if the passphrase does not decrypt it."""
    path = Path(path)
    parsed = _parse(path)
    key = _derive(passphrase, parsed.salt, parsed.n, parsed.r, parsed.p)
    try:
        secret = AESGCM(key).decrypt(parsed.nonce, parsed.ciphertext, _AAD)
    except InvalidTag as exc:
        raise WrongPassphrase(f"wrong passphrase for keystore {path}") from exc
    identity = Identity.from_private_bytes(secret[:KEY_BYTES], secret[KEY_BYTES:])
    public, stored = identity.public(), parsed.info.public
    if not (
        hmac.compare_digest(public.signing_public, stored.signing_public)
        and hmac.compare_digest(public.agreement_public, stored.agreement_public)
    ):
        raise _corrupt(path, "the public identity does not match the encrypted keys")
    return identity
