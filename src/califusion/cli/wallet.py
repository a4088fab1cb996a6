"""``califusion wallet``: balance, transfer, approve, history and mint over the ledger's HTTP API.

Accounts are written in ICRC-1 text form (``<principal>`` or ``<principal>-<checksum>.<hex>``);
amounts in tokens with up to the token's decimals (``1.5``), parsed exactly and shown exactly.
Every call is signed with your keystore; transfers and approvals carry ``created_at_time``, so
repeating one that timed out is answered ``Duplicate``, never paid twice. ``mint`` works only
for the ledger's minting identity (the operator's keystore).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.common import (
    PASSPHRASE_ENV,
    KeystoreOpt,
    PassphraseEnvOpt,
    console,
    friendly_errors,
    unlock,
)
from califusion.core.errors import CaliFusionError, InvalidInput, PermissionDenied
from califusion.crypto.principal import SUBACCOUNT_BYTES, Account
from califusion.ledger.amounts import describe_error, format_amount, memo_text, parse_amount
from califusion.ledger.blocks import Block
from califusion.ledger.icrc3 import Nat, Text
from califusion.ledger.types import ApproveArgs, Err, Ok, TransferArg

app = typer.Typer(
    help="Your tokens: balance, transfer, approve, history, mint.", no_args_is_help=True
)

DEFAULT_LEDGER = "http://127.0.0.1:8470"
NS = 1_000_000_000

LedgerOpt = Annotated[
    str,
    typer.Option(
        "--ledger",
        envvar=["CALIFUSION_LEDGER", "CALIFUSION_COORDINATOR"],
        help="Base URL of a coordinator serving the ledger (the default, as `coordinator "
        "serve` does), or of `califusion ledger serve`.",
    ),
]
SubaccountOpt = Annotated[
    str | None,
    typer.Option("--from-subaccount", help="Spend from this subaccount of yours (hex)."),
]
MemoOpt = Annotated[str | None, typer.Option(help="A memo, up to 32 bytes of UTF-8.")]


class LedgerRefused(CaliFusionError):
    """The ledger answered a call with an ``Err`` (insufficient funds, bad fee, ...)."""

    status = 409
    code = "ledger-refused"
    title = "Refused by the ledger"


@dataclass(frozen=True, slots=True)
class _Token:
    symbol: str
    decimals: int
    fee: int

    def show(self, units: int) -> str:
        return format_amount(units, decimals=self.decimals, symbol=self.symbol)

    def parse(self, text: str) -> int:
        return parse_amount(text, decimals=self.decimals, symbol=self.symbol)


def _token(ledger: HttpLedgerAPI) -> _Token:
    metadata = dict(ledger.icrc1_metadata())
    symbol, decimals, fee = (
        metadata.get("icrc1:symbol"),
        metadata.get("icrc1:decimals"),
        metadata.get("icrc1:fee"),
    )
    if not (isinstance(symbol, Text) and isinstance(decimals, Nat) and isinstance(fee, Nat)):
        raise InvalidInput("the ledger's metadata lacks its symbol, decimals or fee")
    return _Token(symbol.value, decimals.value, fee.value)


def _open(ledger_url: str, keystore: KeystoreOpt, passphrase_env: str) -> HttpLedgerAPI:
    return HttpLedgerAPI(ledger_url, unlock(keystore, passphrase_env))


def _subaccount(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        raw = bytes.fromhex(text.removeprefix("0x").rjust(2 * SUBACCOUNT_BYTES, "0"))
    except ValueError as exc:
        raise InvalidInput(f"subaccount {text!r} is not hex") from exc
    if len(raw) != SUBACCOUNT_BYTES:
        raise InvalidInput(f"a subaccount is at most {SUBACCOUNT_BYTES} bytes ({text!r})")
    return raw


def _memo(text: str | None) -> bytes | None:
    return text.encode("utf-8") if text is not None else None


def _now_ns() -> int:
    return time.time_ns()


def _block_index(result: Ok | Err[object], token: _Token) -> int:
    if isinstance(result, Err):
        message = describe_error(result.error, decimals=token.decimals, symbol=token.symbol)
        raise LedgerRefused(message)
    return result.block_index


def _send(
    ledger: HttpLedgerAPI,
    token: _Token,
    recipient: Account,
    units: int,
    memo: str | None,
    from_subaccount: str | None = None,
) -> int:
    """One ICRC-1 transfer from the caller, stamped now (the ledger deduplicates a resent copy)."""
    arg = TransferArg(
        to=recipient,
        amount=units,
        from_subaccount=_subaccount(from_subaccount),
        memo=_memo(memo),
        created_at_time=_now_ns(),
    )
    return _block_index(ledger.icrc1_transfer(arg), token)


@app.command()
@friendly_errors
def balance(
    account: Annotated[
        str | None, typer.Argument(help="ICRC account text [default: yours].")
    ] = None,
    ledger_url: LedgerOpt = DEFAULT_LEDGER,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Show an account's balance."""
    with _open(ledger_url, keystore, passphrase_env) as ledger:
        target = Account.from_text(account) if account else Account(ledger.caller)
        token = _token(ledger)
        print(f"{target}  {token.show(ledger.icrc1_balance_of(target))}")


@app.command()
@friendly_errors
def transfer(
    to: Annotated[str, typer.Argument(help="Recipient, ICRC account text.")],
    amount: Annotated[str, typer.Argument(help="Tokens to send, e.g. 1.5.")],
    memo: MemoOpt = None,
    from_subaccount: SubaccountOpt = None,
    ledger_url: LedgerOpt = DEFAULT_LEDGER,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Send tokens; the fee is charged on top."""
    recipient = Account.from_text(to)
    with _open(ledger_url, keystore, passphrase_env) as ledger:
        token = _token(ledger)
        units = token.parse(amount)
        block = _send(ledger, token, recipient, units, memo, from_subaccount)
        burned = recipient == ledger.icrc1_minting_account()
    if burned:
        print(f"burned {token.show(units)} (sent to the minting account): block {block}")
    else:
        print(
            f"sent {token.show(units)} to {recipient} (fee {token.show(token.fee)}): block {block}"
        )


@app.command()
@friendly_errors
def mint(
    to: Annotated[str, typer.Argument(help="Recipient, ICRC account text.")],
    amount: Annotated[str, typer.Argument(help="Tokens to create, e.g. 100.")],
    memo: MemoOpt = None,
    ledger_url: LedgerOpt = DEFAULT_LEDGER,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Create tokens (the ledger's minting identity only)."""
    recipient = Account.from_text(to)
    with _open(ledger_url, keystore, passphrase_env) as ledger:
        minting = ledger.icrc1_minting_account()
        if minting is None or minting != Account(ledger.caller):
            owner = minting.owner if minting is not None else "nobody"
            raise PermissionDenied(
                f"only the ledger's minting identity ({owner}) can mint; you are "
                f"{ledger.caller}: use the operator's keystore (--keystore)"
            )
        token = _token(ledger)
        units = token.parse(amount)
        block = _send(ledger, token, recipient, units, memo)  # from the minting account: a mint
    print(f"minted {token.show(units)} to {recipient}: block {block}")


@app.command()
@friendly_errors
def approve(
    spender: Annotated[str, typer.Argument(help="Who may spend, ICRC account text.")],
    amount: Annotated[str, typer.Argument(help="Up to how many tokens (replaces any earlier).")],
    expires_in: Annotated[
        int | None, typer.Option(min=1, help="Seconds until the allowance lapses.")
    ] = None,
    expected_allowance: Annotated[
        str | None, typer.Option(help="Refuse unless the current allowance is this.")
    ] = None,
    from_subaccount: SubaccountOpt = None,
    memo: MemoOpt = None,
    ledger_url: LedgerOpt = DEFAULT_LEDGER,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Let SPENDER move up to AMOUNT from your account (ICRC-2); costs the fee."""
    target = Account.from_text(spender)
    with _open(ledger_url, keystore, passphrase_env) as ledger:
        token = _token(ledger)
        units = token.parse(amount)
        now = _now_ns()
        arg = ApproveArgs(
            spender=target,
            amount=units,
            from_subaccount=_subaccount(from_subaccount),
            expected_allowance=token.parse(expected_allowance) if expected_allowance else None,
            expires_at=now + expires_in * NS if expires_in is not None else None,
            memo=_memo(memo),
            created_at_time=now,
        )
        block = _block_index(ledger.icrc2_approve(arg), token)
    until = f" until {_time(arg.expires_at)}" if arg.expires_at is not None else ""
    print(
        f"approved {target} to spend up to {token.show(units)}{until} "
        f"(fee {token.show(token.fee)}): block {block}"
    )


@app.command()
@friendly_errors
def history(
    account: Annotated[
        str | None, typer.Argument(help="ICRC account text [default: yours].")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=2000, help="How many blocks.")] = 20,
    before: Annotated[
        int | None, typer.Option(min=0, help="Only blocks with an index below this.")
    ] = None,
    ledger_url: LedgerOpt = DEFAULT_LEDGER,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """The blocks that moved an account's tokens or allowances, newest first."""
    with _open(ledger_url, keystore, passphrase_env) as ledger:
        target = Account.from_text(account) if account else Account(ledger.caller)
        token = _token(ledger)
        blocks = ledger.account_blocks(target, start=before, max_results=limit)
    table = Table(title=f"{target}", title_justify="left")
    for column in ("block", "time (UTC)", "type", "from", "to / spender", "amount", "fee", "memo"):
        table.add_column(
            column, justify="right" if column in ("block", "amount", "fee") else "left"
        )
    for item in blocks:
        block = Block.from_value(item.block)
        tx = block.tx
        counterpart = tx.to if tx.to is not None else tx.spender
        table.add_row(
            str(item.id),
            _time(block.timestamp),
            block.block_type,
            _short(tx.from_, target, "(mint)"),
            _short(counterpart, target, "(burn)"),
            format_amount(tx.amount, decimals=token.decimals),
            format_amount(block.fee_charged, decimals=token.decimals) if block.fee_charged else "",
            memo_text(tx.memo),
        )
    console.print(table)
    if not blocks:
        console.print("no blocks touch this account", highlight=False)


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(account: Account | None, viewer: Account, absent: str) -> str:
    if account is None:
        return absent
    return "you" if account == viewer else str(account)
