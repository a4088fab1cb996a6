"""The ledger's JSON shapes over HTTP, mirroring the Candid types of ICRC-1/2/3.

Rules, the same in requests and replies:

- ``nat``/``nat64`` → a decimal string without leading zeros (``"150000000"``): JSON numbers
  lose precision past 2^53, and an amount must never be rounded;
- ``blob`` → lowercase hex; ``opt T`` → the value or ``null`` (or the field left out);
- ``Account`` → ``{"owner": "<principal text>", "subaccount": "<64 hex>" | null}``;
- a variant → an object with one key naming the case: ``{"Ok": "12"}``,
  ``{"Err": {"InsufficientFunds": {"balance": "5"}}}``, ``{"Err": {"TooOld": null}}``;
- ICRC-3 ``Value`` → ``{"Nat": "42"}``, ``{"Blob": "<hex>"}``, ``{"Map": [[key, value], ...]}``
  (:func:`~califusion.ledger.icrc3.value_to_json`).

Record fields keep their Candid names (``from`` included). Requests are validated strictly
(unknown fields, numbers instead of strings, bad hex are refused with the field named); the
ledger's own rules then answer as ``Err`` values.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger.certificate import TipCertificate
from califusion.ledger.icrc3 import Value, value_from_json, value_to_json
from califusion.ledger.service import BlockWithId, GetBlocksResult
from califusion.ledger.types import (
    Allowance,
    AllowanceChanged,
    ApproveArgs,
    BadBurn,
    BadFee,
    CreatedInFuture,
    Duplicate,
    Err,
    Expired,
    GenericError,
    InsufficientAllowance,
    InsufficientFunds,
    Ok,
    TemporarilyUnavailable,
    TooOld,
    TransferArg,
    TransferFromArgs,
)

# Up to 40 digits, so an amount past the token cap reaches the ledger's rules and gets their
# answer (InsufficientFunds), as it would on a canister.
NatText = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,39})$")]
Subaccount = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# The ledger's max_memo_length decides; this only bounds what is parsed.
Memo = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{2}){0,256}$")]
PrincipalText = Annotated[str, StringConstraints(min_length=1, max_length=63)]

TRANSFER_ERRORS: tuple[type, ...] = (
    BadFee, BadBurn, InsufficientFunds, TooOld, CreatedInFuture, Duplicate,
    TemporarilyUnavailable, GenericError,
)  # fmt: skip
APPROVE_ERRORS: tuple[type, ...] = (
    BadFee, InsufficientFunds, AllowanceChanged, Expired, TooOld, CreatedInFuture, Duplicate,
    TemporarilyUnavailable, GenericError,
)  # fmt: skip
TRANSFER_FROM_ERRORS: tuple[type, ...] = (*TRANSFER_ERRORS, InsufficientAllowance)

_Shape = TypeVar("_Shape", bound=BaseModel)


def _nat(text: str | None) -> int | None:
    return int(text) if text is not None else None


def _nat_text(value: int | None) -> str | None:
    return str(value) if value is not None else None


def _hex(data: bytes | None) -> str | None:
    return data.hex() if data is not None else None


def _bytes(text: str | None) -> bytes | None:
    return bytes.fromhex(text) if text is not None else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AccountShape(_Strict):
    owner: PrincipalText
    subaccount: Subaccount | None = None

    def to_account(self) -> Account:
        return Account(Principal.from_text(self.owner), _bytes(self.subaccount))

    @classmethod
    def of(cls, account: Account) -> AccountShape:
        return cls(owner=account.owner.to_text(), subaccount=_hex(account.subaccount))


class TransferArgShape(_Strict):
    to: AccountShape
    amount: NatText
    from_subaccount: Subaccount | None = None
    fee: NatText | None = None
    memo: Memo | None = None
    created_at_time: NatText | None = None

    def to_arg(self) -> TransferArg:
        return TransferArg(
            to=self.to.to_account(),
            amount=int(self.amount),
            from_subaccount=_bytes(self.from_subaccount),
            fee=_nat(self.fee),
            memo=_bytes(self.memo),
            created_at_time=_nat(self.created_at_time),
        )

    @classmethod
    def of(cls, arg: TransferArg) -> TransferArgShape:
        return cls(
            to=AccountShape.of(arg.to),
            amount=str(arg.amount),
            from_subaccount=_hex(arg.from_subaccount),
            fee=_nat_text(arg.fee),
            memo=_hex(arg.memo),
            created_at_time=_nat_text(arg.created_at_time),
        )


class ApproveArgsShape(_Strict):
    spender: AccountShape
    amount: NatText
    from_subaccount: Subaccount | None = None
    expected_allowance: NatText | None = None
    expires_at: NatText | None = None
    fee: NatText | None = None
    memo: Memo | None = None
    created_at_time: NatText | None = None

    def to_arg(self) -> ApproveArgs:
        return ApproveArgs(
            spender=self.spender.to_account(),
            amount=int(self.amount),
            from_subaccount=_bytes(self.from_subaccount),
            expected_allowance=_nat(self.expected_allowance),
            expires_at=_nat(self.expires_at),
            fee=_nat(self.fee),
            memo=_bytes(self.memo),
            created_at_time=_nat(self.created_at_time),
        )

    @classmethod
    def of(cls, arg: ApproveArgs) -> ApproveArgsShape:
        return cls(
            spender=AccountShape.of(arg.spender),
            amount=str(arg.amount),
            from_subaccount=_hex(arg.from_subaccount),
            expected_allowance=_nat_text(arg.expected_allowance),
            expires_at=_nat_text(arg.expires_at),
            fee=_nat_text(arg.fee),
            memo=_hex(arg.memo),
            created_at_time=_nat_text(arg.created_at_time),
        )


class TransferFromArgsShape(_Strict):
    from_: AccountShape = Field(alias="from")
    to: AccountShape
    amount: NatText
    spender_subaccount: Subaccount | None = None
    fee: NatText | None = None
    memo: Memo | None = None
    created_at_time: NatText | None = None

    def to_arg(self) -> TransferFromArgs:
        return TransferFromArgs(
            from_=self.from_.to_account(),
            to=self.to.to_account(),
            amount=int(self.amount),
            spender_subaccount=_bytes(self.spender_subaccount),
            fee=_nat(self.fee),
            memo=_bytes(self.memo),
            created_at_time=_nat(self.created_at_time),
        )

    @classmethod
    def of(cls, arg: TransferFromArgs) -> TransferFromArgsShape:
        return cls(
            from_=AccountShape.of(arg.from_),
            to=AccountShape.of(arg.to),
            amount=str(arg.amount),
            spender_subaccount=_hex(arg.spender_subaccount),
            fee=_nat_text(arg.fee),
            memo=_hex(arg.memo),
            created_at_time=_nat_text(arg.created_at_time),
        )


class AllowanceShape(_Strict):
    allowance: NatText
    expires_at: NatText | None = None

    @classmethod
    def of(cls, allowance: Allowance) -> AllowanceShape:
        return cls(allowance=str(allowance.allowance), expires_at=_nat_text(allowance.expires_at))

    def to_allowance(self) -> Allowance:
        return Allowance(int(self.allowance), _nat(self.expires_at))


class TipCertificateShape(_Strict):
    last_block_index: NatText
    last_block_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    signature: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]

    @classmethod
    def of(cls, certificate: TipCertificate) -> TipCertificateShape:
        return cls(
            last_block_index=str(certificate.last_block_index),
            last_block_hash=certificate.last_block_hash.hex(),
            signature=certificate.signature.hex(),
        )

    def to_certificate(self) -> TipCertificate:
        return TipCertificate(
            int(self.last_block_index),
            bytes.fromhex(self.last_block_hash),
            bytes.fromhex(self.signature),
        )


def dump(shape: BaseModel) -> dict[str, Any]:
    """A shape as JSON data, with Candid field names (``from``)."""
    return shape.model_dump(mode="json", by_alias=True)


def parse(shape: type[_Shape], data: object) -> _Shape:
    """Validate a reply; a peer's malformed reply is :class:`InvalidInput` naming the shape."""
    try:
        return shape.model_validate(data)
    except ValueError as exc:
        raise InvalidInput(f"malformed {shape.__name__} from the ledger: {exc}") from exc


# --- variants ----------------------------------------------------------------------------------


def result_to_json(result: Ok | Err[Any]) -> dict[str, Any]:
    """``{"Ok": "<block index>"}`` or ``{"Err": {"<Case>": {fields} | null}}``."""
    if isinstance(result, Ok):
        return {"Ok": str(result.block_index)}
    error = result.error
    fields = {field.name: str(getattr(error, field.name)) for field in dataclasses.fields(error)}
    return {"Err": {type(error).__name__: fields or None}}


def result_from_json(data: object, errors: tuple[type, ...]) -> Ok | Err[Any]:
    """Parse a ``result_to_json`` reply whose error case must be one of ``errors``."""
    if isinstance(data, dict) and len(data) == 1:
        ((tag, body),) = data.items()
        if tag == "Ok" and isinstance(body, str) and body.isdigit():
            return Ok(int(body))
        if tag == "Err" and isinstance(body, dict) and len(body) == 1:
            ((case, payload),) = body.items()
            error_type = next((e for e in errors if e.__name__ == case), None)
            if error_type is not None:
                return Err(_error_from_json(error_type, payload))
    raise InvalidInput(f"malformed result from the ledger: {str(data)[:200]}")


def _error_from_json(error_type: type, payload: object) -> Any:
    fields = dataclasses.fields(error_type)
    if not fields:
        if payload is not None:
            raise InvalidInput(f"{error_type.__name__} carries no fields")
        return error_type()
    if not isinstance(payload, dict) or set(payload) != {f.name for f in fields}:
        raise InvalidInput(f"malformed {error_type.__name__} from the ledger")
    values: dict[str, Any] = {}
    for field in fields:
        text = payload[field.name]
        if not isinstance(text, str):
            raise InvalidInput(f"{error_type.__name__}.{field.name} must be a string")
        if field.type == "str":
            values[field.name] = text
        elif text.isdigit():
            values[field.name] = int(text)
        else:
            raise InvalidInput(f"{error_type.__name__}.{field.name} must be a nat")
    return error_type(**values)


# --- ICRC-3 -----------------------------------------------------------------------------------


def blocks_to_json(blocks: list[BlockWithId]) -> list[dict[str, Any]]:
    return [{"id": str(b.id), "block": value_to_json(b.block)} for b in blocks]


def blocks_from_json(data: object) -> list[BlockWithId]:
    if not isinstance(data, list):
        raise InvalidInput("malformed block list from the ledger")
    blocks = []
    for item in data:
        if not isinstance(item, dict) or not str(item.get("id", "")).isdigit():
            raise InvalidInput("malformed block from the ledger")
        blocks.append(BlockWithId(int(item["id"]), value_from_json(item.get("block"))))
    return blocks


def get_blocks_to_json(result: GetBlocksResult) -> dict[str, Any]:
    """``icrc3_get_blocks`` reply: ``{log_length, blocks: [{id, block}], archived_blocks}``."""
    return {
        "log_length": str(result.log_length),
        "blocks": blocks_to_json(result.blocks),
        "archived_blocks": [],
    }


def get_blocks_from_json(data: object) -> GetBlocksResult:
    if not isinstance(data, dict) or not str(data.get("log_length", "")).isdigit():
        raise InvalidInput("malformed icrc3_get_blocks reply from the ledger")
    return GetBlocksResult(int(data["log_length"]), blocks_from_json(data.get("blocks")))


def metadata_to_json(metadata: list[tuple[str, Value]]) -> list[list[Any]]:
    return [[key, value_to_json(value)] for key, value in metadata]


def metadata_from_json(data: object) -> list[tuple[str, Value]]:
    if not isinstance(data, list):
        raise InvalidInput("malformed metadata from the ledger")
    entries = []
    for item in data:
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
            raise InvalidInput("malformed metadata entry from the ledger")
        entries.append((item[0], value_from_json(item[1])))
    return entries
