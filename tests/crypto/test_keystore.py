"""Keystore files: round trip, mode, refusal to overwrite, wrong passphrase, corruption."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from califusion.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    WrongPassphrase,
)
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import (
    load_keystore,
    read_keystore_info,
    read_public,
    save_keystore,
)

FAST_N = 2**4  # tests only: the default 2**15 takes ~0.1 s per derivation


@pytest.fixture
def identity() -> Identity:
    return Identity.generate()


@pytest.fixture
def keystore(tmp_path: Path, identity: Identity) -> Path:
    path = tmp_path / "identity.json"
    save_keystore(path, identity, "correct horse", name="alice", scrypt_n=FAST_N)
    return path


def _edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_round_trip(keystore: Path, identity: Identity) -> None:
    loaded = load_keystore(keystore, "correct horse")
    assert loaded.public() == identity.public()
    assert loaded.export_private_bytes() == identity.export_private_bytes()
    assert loaded.sign(b"m") == identity.sign(b"m")


def test_public_part_needs_no_passphrase(keystore: Path, identity: Identity) -> None:
    assert read_public(keystore) == identity.public()
    info = read_keystore_info(keystore)
    assert info.name == "alice"
    assert info.public == identity.public()


def test_file_layout(keystore: Path, identity: Identity) -> None:
    document = json.loads(keystore.read_text())
    assert document["format"] == "califusion-keystore"
    assert document["version"] == 1
    assert document["public"] == identity.public().to_dict()
    assert document["kdf"]["name"] == "scrypt"
    assert (document["kdf"]["n"], document["kdf"]["r"], document["kdf"]["p"]) == (FAST_N, 8, 1)
    assert len(b64d(document["kdf"]["salt"])) == 16
    assert document["cipher"] == {"name": "aes-256-gcm", "nonce": document["cipher"]["nonce"]}
    assert len(b64d(document["ciphertext"])) == 64 + 16


def test_private_keys_are_not_in_clear(keystore: Path, identity: Identity) -> None:
    text = keystore.read_text()
    for secret in identity.export_private_bytes():
        assert b64e(secret) not in text
        assert secret.hex() not in text


def test_mode_0600_and_no_temporary_files(keystore: Path) -> None:
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert [p.name for p in keystore.parent.iterdir()] == ["identity.json"]


def test_creates_missing_parent_directory(tmp_path: Path, identity: Identity) -> None:
    path = tmp_path / "home" / "identity.json"
    save_keystore(path, identity, "pw", scrypt_n=FAST_N)
    assert load_keystore(path, "pw").public() == identity.public()


def test_refuses_to_overwrite(keystore: Path) -> None:
    before = keystore.read_bytes()
    with pytest.raises(Conflict, match="already exists"):
        save_keystore(keystore, Identity.generate(), "other", scrypt_n=FAST_N)
    assert keystore.read_bytes() == before
    assert len(list(keystore.parent.iterdir())) == 1


def test_overwrite_when_asked(keystore: Path) -> None:
    replacement = Identity.generate()
    save_keystore(keystore, replacement, "new", scrypt_n=FAST_N, overwrite=True)
    assert load_keystore(keystore, "new").public() == replacement.public()
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600


def test_wrong_passphrase(keystore: Path) -> None:
    with pytest.raises(WrongPassphrase) as caught:
        load_keystore(keystore, "correct horse!")
    assert str(caught.value) == f"wrong passphrase for keystore {keystore}"


def test_passphrase_is_unicode_normalized(tmp_path: Path, identity: Identity) -> None:
    path = tmp_path / "k.json"
    save_keystore(path, identity, "caf\u00e9", scrypt_n=FAST_N)  # composed é
    assert load_keystore(path, "cafe\u0301").public() == identity.public()  # decomposed é


@pytest.mark.parametrize("scrypt_n", [0, 1, 3, 2**21])
def test_rejects_bad_scrypt_cost(tmp_path: Path, identity: Identity, scrypt_n: int) -> None:
    with pytest.raises(InvalidInput):
        save_keystore(tmp_path / "k.json", identity, "pw", scrypt_n=scrypt_n)


def test_rejects_empty_passphrase(tmp_path: Path, identity: Identity) -> None:
    with pytest.raises(InvalidInput):
        save_keystore(tmp_path / "k.json", identity, "", scrypt_n=FAST_N)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="califusion id new"):
        read_public(tmp_path / "absent.json")


def test_unknown_version(keystore: Path) -> None:
    _edit(keystore, lambda d: d.update(version=2))
    with pytest.raises(InvalidInput, match="version 2"):
        load_keystore(keystore, "correct horse")


def _set_kdf_n(d: dict[str, Any]) -> None:
    d["kdf"]["n"] = 3


def _truncate_ciphertext(d: dict[str, Any]) -> None:
    d["ciphertext"] = d["ciphertext"][:-4]


def _swap_public(d: dict[str, Any]) -> None:
    d["public"] = Identity.generate().public().to_dict()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.clear(),
        lambda d: d.update(format="something-else"),
        lambda d: d.update(version="1"),
        lambda d: d.pop("ciphertext"),
        lambda d: d.update(ciphertext="not base64!"),
        _truncate_ciphertext,
        lambda d: d["kdf"].update(name="pbkdf2"),
        lambda d: d["cipher"].update(name="chacha20"),
        lambda d: d["kdf"].update(salt="AAAA"),
        _set_kdf_n,
        lambda d: d["kdf"].update(r=True),
        lambda d: d["public"].update(principal="aaaaa-aa"),
        lambda d: d.update(name=7),
        _swap_public,
    ],
)
def test_corrupt_keystore(keystore: Path, change: Any) -> None:
    _edit(keystore, change)
    with pytest.raises(InvalidInput, match=str(keystore)):
        load_keystore(keystore, "correct horse")


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"\xff\xfe", b"null", b"x" * 70_000])
def test_not_a_keystore(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(content)
    with pytest.raises(InvalidInput):
        read_public(path)


def test_tampered_ciphertext_cannot_be_unlocked(keystore: Path) -> None:
    # A tag failure cannot tell tampering from a wrong passphrase; either way nothing unlocks.
    def flip(d: dict[str, Any]) -> None:
        raw = bytearray(b64d(d["ciphertext"]))
        raw[0] ^= 1
        d["ciphertext"] = b64e(bytes(raw))

    _edit(keystore, flip)
    with pytest.raises(WrongPassphrase):
        load_keystore(keystore, "correct horse")


def test_default_cost_parameter(tmp_path: Path, identity: Identity) -> None:
    path = tmp_path / "k.json"
    save_keystore(path, identity, "pw")
    assert json.loads(path.read_text())["kdf"]["n"] == 2**15
    assert load_keystore(path, "pw").public() == identity.public()
