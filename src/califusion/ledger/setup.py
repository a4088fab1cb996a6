"""Opening the embedded ledger the way a server runs it: a store URL and an operator.

The **operator** is the identity that runs the ledger, kept in a keystore: its principal's
default account is the minting account (a transfer from it mints, a transfer to it burns), and
its key signs the ICRC-3 tip certificates. Only whoever can unlock that keystore can mint — the
server itself needs the keystore only to sign tips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from califusion.core.clock import Clock, SystemClock
from califusion.core.errors import InvalidInput
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import load_keystore
from califusion.crypto.principal import Account
from califusion.ledger.model import LedgerConfig
from califusion.ledger.service import Ledger
from califusion.ledger.store import LedgerStore

PASSPHRASE_SETTING = "CALIFUSION_LEDGER_OPERATOR_PASSPHRASE"  # noqa: S105 - a name


def open_ledger(
    url: str, operator: Identity, clock: Clock | None = None, **store_kwargs: Any
) -> Ledger:
    """The ledger in the database at ``url`` (created if empty), run by ``operator``."""
    store = LedgerStore(url, **store_kwargs)
    config = LedgerConfig(minting_account=Account(operator.principal))
    return Ledger(store, config, clock if clock is not None else SystemClock(), operator)


def unlock_operator(keystore: Path, passphrase: str | None) -> Identity:
    if passphrase is None:
        raise InvalidInput(
            f"the ledger operator keystore {keystore} needs its passphrase: "
            f"set {PASSPHRASE_SETTING}"
        )
    return load_keystore(keystore, passphrase)


OPERATOR_KEYSTORE = "ledger-operator.json"  # under the home folder, as `ledger init` makes it


def ledger_for_coordinator(settings: CoordinatorSettings, clock: Clock) -> Ledger | None:
    """The ledger a coordinator serves at ``/ledger/v1``: the one in ``ledger_database_url``,
    run by ``ledger_operator_keystore``; ``None`` unless both are set. (Never found implicitly:
    a coordinator that only reads a ledger another process serves must not start serving it.)"""
    url, keystore = settings.ledger_database_url, settings.ledger_operator_keystore
    if url is None or keystore is None:
        return None
    secret = settings.ledger_operator_passphrase
    operator = unlock_operator(keystore, secret.get_secret_value() if secret else None)
    return open_ledger(url, operator, clock)
