"""The one place that touches icp-py-core's Candid encoder and ``.did`` loader (untyped).

icp-py-core ships no type information, so it is imported through :mod:`importlib` and every value
that comes back is checked or ``cast`` here; the rest of the package sees typed functions only.

Values cross this boundary in the library's Python form, with one change: principals are our
:class:`~califusion.crypto.principal.Principal` in both directions (the library's own principal
class never leaves this module). The library's form, which :mod:`.candid_codec` builds and reads:

=============================  ==========================================================
Candid                          Python
=============================  ==========================================================
``nat``, ``int``, ``nat64``…   ``int``
``text``                       ``str``
``blob`` (``vec nat8``)        ``bytes``
``principal``                  :class:`Principal`
``opt T``                      ``[]`` or ``[value]``
``record {…}``                 ``dict`` keyed by field name (a tuple record: ``list``)
``variant {…}``                ``{case: payload}``, payload ``None`` for a case without one
``vec T``                      ``list``
=============================  ==========================================================
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any, cast

from califusion.core.errors import InvalidInput, Unavailable
from califusion.crypto.principal import Principal

__all__ = [
    "DECODE_ERRORS",
    "DID_RESOURCE",
    "CandidTypes",
    "LedgerProtocolError",
    "MethodSignature",
    "decode",
    "encode",
    "library",
    "method",
    "reply_values",
]

DID_RESOURCE = "icrc1_ledger.did"
# What icp-py-core's decoder raises on bytes that are not Candid of the expected types.
DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, struct.error)
_INSTALL_HINT = "install it with `pip install icp-py-core==2.3.1`"


class LedgerProtocolError(Unavailable):
    """The ledger canister's reply is not what its Candid interface promises.

    Raised when reply bytes do not decode against the interface, or decode to a shape the
    interface does not allow. Usually the canister id names something that is not an ICRC-1/2
    ledger; retrying does not help until the configuration is fixed.
    """

    status = 502
    code = "ledger-protocol"
    title = "Unexpected reply from the ledger canister"


def library(module: str) -> ModuleType:
    """Import one module of icp-py-core, or raise :class:`Unavailable` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(
            f"the Internet Computer ledger adapter needs icp-py-core ({module}); {_INSTALL_HINT}"
        ) from exc


@dataclass(frozen=True, slots=True)
class CandidTypes:
    """A sequence of Candid types from the loaded interface (opaque outside this module)."""

    types: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class MethodSignature:
    """One method of the loaded interface: argument and reply types, and whether it is a query."""

    name: str
    args: CandidTypes
    rets: CandidTypes
    is_query: bool


@cache
def _interface() -> dict[str, MethodSignature]:
    source = resources.files(__package__).joinpath(DID_RESOURCE).read_text(encoding="utf-8")
    loader: Any = library("icp_candid.did_loader").DIDLoader()
    loaded = cast(dict[str, Any], loader.load_did_source(source))
    methods = cast(dict[str, Any], loaded["methods"])
    return {
        name: MethodSignature(
            name=name,
            args=CandidTypes(tuple(cast(list[object], func.args))),
            rets=CandidTypes(tuple(cast(list[object], func.rets))),
            is_query="query" in cast(list[str], func.modes),
        )
        for name, func in methods.items()
    }


def method(name: str) -> MethodSignature:
    """The signature of ``name`` in the shipped ``icrc1_ledger.did``."""
    try:
        return _interface()[name]
    except KeyError:
        raise InvalidInput(f"{name} is not a method of {DID_RESOURCE}") from None


def _to_library(value: object, principal_class: Any) -> object:
    if isinstance(value, Principal):
        return principal_class(value.raw)
    if isinstance(value, dict):
        return {key: _to_library(item, principal_class) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_library(item, principal_class) for item in value]
    return value


def _from_library(value: object, principal_class: type[object]) -> object:
    if isinstance(value, principal_class):
        raw = cast(Any, value).bytes
        if not isinstance(raw, bytes):
            raise LedgerProtocolError("a principal in the reply has no bytes")
        try:
            return Principal(raw)
        except InvalidInput as exc:
            raise LedgerProtocolError(f"a principal in the reply is invalid: {exc}") from exc
    if isinstance(value, dict):
        return {key: _from_library(item, principal_class) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_library(item, principal_class) for item in value]
    return value


def _principal_class() -> type[object]:
    return cast(type[object], library("icp_principal.principal").Principal)


def encode(types: CandidTypes, values: Sequence[object]) -> bytes:
    """Candid-encode ``values`` (the library's form, our principals) as a ``DIDL`` message."""
    if len(values) != len(types.types):
        raise InvalidInput(f"expected {len(types.types)} Candid values, got {len(values)}")
    candid: Any = library("icp_candid.candid")
    principal_class = _principal_class()
    params = [
        {"type": typ, "value": _to_library(value, principal_class)}
        for typ, value in zip(types.types, values, strict=True)
    ]
    try:
        return cast(bytes, candid.encode(params))
    except (ValueError, TypeError, KeyError, IndexError, struct.error) as exc:
        raise InvalidInput(f"value does not fit its Candid type: {exc}") from exc


def decode(data: bytes, types: CandidTypes) -> list[object]:
    """Decode a ``DIDL`` message against ``types`` (Candid subtyping rules apply).

    Raises :class:`LedgerProtocolError` when the bytes are not a Candid message of those types.
    """
    candid: Any = library("icp_candid.candid")
    try:
        decoded: object = candid.decode(data, list(types.types))
    except DECODE_ERRORS as exc:
        raise LedgerProtocolError(f"reply is not valid Candid for the interface: {exc}") from exc
    return reply_values(decoded, types)


def reply_values(decoded: object, types: CandidTypes) -> list[object]:
    """The values of the library's decoder output ``[{"type": …, "value": …}, …]``."""
    if not isinstance(decoded, list) or len(decoded) != len(types.types):
        raise LedgerProtocolError(
            f"reply does not hold the {len(types.types)} value(s) the interface promises"
        )
    principal_class = _principal_class()
    values = []
    for item in decoded:
        if not isinstance(item, dict) or "value" not in item:
            raise LedgerProtocolError("the Candid decoder returned an unexpected shape")
        values.append(_from_library(item["value"], principal_class))
    return values
