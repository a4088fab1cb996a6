"""The ledger over HTTP, as one caller: :class:`HttpLedgerAPI` implements ``LedgerAPI``.

It talks to ``/ledger/v1`` of a coordinator that serves the embedded ledger, or of a standalone
``califusion ledger serve``. Every request is signed with the caller's identity and carries its
public key (``ledger.http_auth``), so the ledger knows the caller without a registry; the replies
are the same types the embedded ledger returns (``Ok``/``Err`` values, ``Allowance``...), so
payment code runs unchanged against either. Problems come back as the error the ledger raised.

Reads are retried on transport errors; update calls are not (a lost reply could hide a
committed transfer): pass ``created_at_time`` and resend the same call — the ledger answers
``Duplicate`` with the block of the first one.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import BaseModel

from califusion.agent.client import SignedClient
from califusion.core.clock import Clock
from califusion.core.errors import InvalidInput
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.certificate import TipCertificate
from califusion.ledger.http_auth import public_key_header
from califusion.ledger.http_routes import PREFIX
from califusion.ledger.http_shapes import (
    APPROVE_ERRORS,
    TRANSFER_ERRORS,
    TRANSFER_FROM_ERRORS,
    AccountShape,
    AllowanceShape,
    ApproveArgsShape,
    TipCertificateShape,
    TransferArgShape,
    TransferFromArgsShape,
    blocks_from_json,
    dump,
    get_blocks_from_json,
    metadata_from_json,
    parse,
    result_from_json,
)
from califusion.ledger.icrc3 import Value
from califusion.ledger.service import BlockWithId, GetBlocksResult
from califusion.ledger.types import (
    Allowance,
    AllowanceArgs,
    ApproveArgs,
    ApproveResult,
    StandardRecord,
    TransferArg,
    TransferFromArgs,
    TransferFromResult,
    TransferResult,
)

__all__ = ["HttpLedgerAPI"]

_READ_ATTEMPTS = 4


def _nat(data: object, what: str) -> int:
    if not isinstance(data, str) or not data.isdigit():
        raise InvalidInput(f"malformed {what} from the ledger: {str(data)[:100]}")
    return int(data)


class LedgerServiceClient(SignedClient):
    """A signed client of a service beside the ledger (its ledger or its escrow).

    Requests carry the caller's public key too: the ledger knows nobody in advance, and
    authenticates a caller by the key its principal is derived from.
    """

    def __init__(
        self,
        base_url: str,
        identity: Identity,
        *,
        clock: Clock | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            identity,
            clock=clock,
            timeout=timeout,
            transport=transport,
            headers=public_key_header(identity),
        )

    @property
    def caller(self) -> Principal:
        return self.identity.principal

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._http.base_url}, caller={self.caller})"


class HttpLedgerAPI(LedgerServiceClient):
    """``LedgerAPI`` for ``identity`` against the ledger at ``base_url`` (no ``/ledger/v1``)."""

    _service = "the ledger"

    # --- transport ----------------------------------------------------------------------------

    def _call(self, method: str, name: str, payload: BaseModel | None = None, **query: Any) -> Any:
        params = {key: str(value) for key, value in query.items() if value is not None}
        body = json.dumps(dump(payload)).encode() if payload is not None else b""
        response = self._signed(
            method,
            f"{PREFIX}/{name}",
            body=body,
            params=params,
            attempts=_READ_ATTEMPTS if method == "GET" else 1,
        )
        return response.json()

    # --- ICRC-1 -------------------------------------------------------------------------------

    def icrc1_name(self) -> str:
        return str(self._call("GET", "icrc1_name"))

    def icrc1_symbol(self) -> str:
        return str(self._call("GET", "icrc1_symbol"))

    def icrc1_decimals(self) -> int:
        decimals = self._call("GET", "icrc1_decimals")
        if not isinstance(decimals, int) or isinstance(decimals, bool):
            raise InvalidInput("malformed icrc1_decimals from the ledger")
        return decimals

    def icrc1_fee(self) -> int:
        return _nat(self._call("GET", "icrc1_fee"), "fee")

    def icrc1_metadata(self) -> list[tuple[str, Value]]:
        return metadata_from_json(self._call("GET", "icrc1_metadata"))

    def icrc1_total_supply(self) -> int:
        return _nat(self._call("GET", "icrc1_total_supply"), "total supply")

    def icrc1_minting_account(self) -> Account | None:
        data = self._call("GET", "icrc1_minting_account")
        return parse(AccountShape, data).to_account() if data is not None else None

    def icrc1_balance_of(self, account: Account) -> int:
        return _nat(self._call("GET", "icrc1_balance_of", account=account.to_text()), "balance")

    def icrc1_transfer(self, arg: TransferArg) -> TransferResult:
        reply = self._call("POST", "icrc1_transfer", TransferArgShape.of(arg))
        return result_from_json(reply, TRANSFER_ERRORS)

    def icrc1_supported_standards(self) -> list[StandardRecord]:
        data = self._call("GET", "icrc1_supported_standards")
        try:
            return [StandardRecord(str(item["name"]), str(item["url"])) for item in data]
        except (TypeError, KeyError) as exc:
            raise InvalidInput("malformed icrc1_supported_standards from the ledger") from exc

    # --- ICRC-2 -------------------------------------------------------------------------------

    def icrc2_approve(self, arg: ApproveArgs) -> ApproveResult:
        reply = self._call("POST", "icrc2_approve", ApproveArgsShape.of(arg))
        return result_from_json(reply, APPROVE_ERRORS)

    def icrc2_allowance(self, arg: AllowanceArgs) -> Allowance:
        data = self._call(
            "GET",
            "icrc2_allowance",
            account=arg.account.to_text(),
            spender=arg.spender.to_text(),
        )
        return parse(AllowanceShape, data).to_allowance()

    def icrc2_transfer_from(self, arg: TransferFromArgs) -> TransferFromResult:
        reply = self._call("POST", "icrc2_transfer_from", TransferFromArgsShape.of(arg))
        return result_from_json(reply, TRANSFER_FROM_ERRORS)

    # --- ICRC-3 and extras (not part of LedgerAPI) --------------------------------------------

    def icrc3_get_blocks(self, start: int, length: int) -> GetBlocksResult:
        return get_blocks_from_json(
            self._call("GET", "icrc3_get_blocks", start=start, length=length)
        )

    def icrc3_get_tip_certificate(self) -> TipCertificate | None:
        data = self._call("GET", "icrc3_get_tip_certificate")
        return parse(TipCertificateShape, data).to_certificate() if data is not None else None

    def account_blocks(
        self, account: Account, *, start: int | None = None, max_results: int = 100
    ) -> list[BlockWithId]:
        """Blocks touching ``account``, newest first, with an index below ``start``."""
        data = self._call(
            "GET",
            "account_blocks",
            account=account.to_text(),
            start=start,
            max_results=max_results,
        )
        if not isinstance(data, dict):
            raise InvalidInput("malformed account_blocks reply from the ledger")
        return blocks_from_json(data.get("blocks"))

    def verify(self) -> dict[str, Any]:
        """The ledger's own re-verification of its blocks (``ok``, ``discrepancies``, ...)."""
        data = self._call("GET", "verify")
        if not isinstance(data, dict):
            raise InvalidInput("malformed verify reply from the ledger")
        return data
