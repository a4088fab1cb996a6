"""An ICRC-1/2 ledger canister on the Internet Computer, behind :class:`LedgerAPI`.

``IcpLedger(replica_url, canister_id, identity)`` speaks Candid to the canister through
icp-py-core's agent, signing every call with ``identity``'s Ed25519 key, so the caller the
ledger sees is ``identity.principal`` (its self-authenticating principal). Arguments and replies
are the types of :mod:`califusion.ledger.types`, translated by :mod:`.candid_codec`.

Trust, stated plainly:

- **Update calls** (``icrc1_transfer``, ``icrc2_approve``, ``icrc2_transfer_from``) return a
  reply certified by the subnet. With ``verify_certificate=True`` (the default) icp-py-core checks
  that certificate against the IC mainnet root key; it needs the ``blst`` binding, which is not on
  PyPI, so construction fails with :class:`Unavailable` saying how to install it — before any
  call is sent (icp-py-core itself would only notice after submitting the call, when the transfer
  may already have happened). icp-py-core 2.3.1 always verifies against the mainnet root key, so
  a local replica needs ``verify_certificate=False``: an explicit opt-out that is logged as a
  warning on every construction, never a default.
- **Queries** (balances, allowances, metadata) are answered by a single replica and are not
  certified, whatever ``verify_certificate`` says. Where a read decides a payment, pass
  ``certified_reads=True``: query methods are then called as update calls, which the IC executes
  on every replica and certifies (slower, seconds instead of milliseconds).
"""

from __future__ import annotations

import logging

from califusion.core.errors import InvalidInput, Unavailable
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.icp._agent import (
    BLST_HINT,
    CanisterAgent,
    ReplicaTransport,
    blst_missing_reason,
)
from califusion.ledger.icp._candid import method
from califusion.ledger.icp.candid_codec import (
    encode_account,
    encode_allowance_args,
    encode_approve_args,
    encode_no_args,
    encode_transfer_arg,
    encode_transfer_from_args,
)
from califusion.ledger.icp.replies import (
    allowance_from_candid,
    approve_result_from_candid,
    metadata_from_candid,
    minting_account_from_candid,
    nat_from_candid,
    supported_standards_from_candid,
    text_from_candid,
    transfer_from_result_from_candid,
    transfer_result_from_candid,
)
from califusion.ledger.icrc3 import Value
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

__all__ = ["DEFAULT_TIMEOUT_S", "IcpLedger"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0


class IcpLedger:
    """:class:`~califusion.ledger.api.LedgerAPI` for an ICRC-1/2 ledger canister.

    ``replica_url`` is the boundary node or replica (``https://icp-api.io``, or
    ``http://127.0.0.1:4943`` for a local one); ``canister_id`` is the ledger's principal text.
    ``transport`` replaces icp-py-core's HTTP client (tests put a fake replica there).
    """

    def __init__(
        self,
        replica_url: str,
        canister_id: str,
        identity: Identity,
        *,
        verify_certificate: bool = True,
        certified_reads: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: ReplicaTransport | None = None,
    ) -> None:
        if not replica_url.startswith(("https://", "http://")):
            raise InvalidInput(f"replica_url must be an http(s) URL, got {replica_url!r}")
        if timeout_s <= 0:
            raise InvalidInput(f"timeout_s must be positive, got {timeout_s}")
        canister = Principal.from_text(canister_id)
        if verify_certificate:
            reason = blst_missing_reason()
            if reason is not None:
                raise Unavailable(
                    f"cannot verify the ledger's certified replies: {reason} {BLST_HINT}"
                )
        else:
            log.warning(
                "certificate verification is OFF for this ledger: replies to transfers and "
                "approvals are not authenticated; use only with a local test replica",
                extra={"canister_id": canister_id, "replica_url": replica_url},
            )
        self._caller = identity.principal
        self._canister = canister
        self._url = replica_url
        self._verify_certificate = verify_certificate
        self._certified_reads = certified_reads
        self._agent = CanisterAgent(
            replica_url,
            canister,
            identity,
            verify_certificate=verify_certificate,
            timeout_s=timeout_s,
            transport=transport,
        )

    @property
    def caller(self) -> Principal:
        return self._caller

    @property
    def canister_id(self) -> Principal:
        return self._canister

    @property
    def verify_certificate(self) -> bool:
        """Whether update replies are checked against the subnet's certificate."""
        return self._verify_certificate

    def _read(self, name: str, arg: bytes) -> object:
        signature = method(name)
        if self._certified_reads:
            return self._agent.update(signature, arg)
        return self._agent.query(signature, arg)

    def _write(self, name: str, arg: bytes) -> object:
        return self._agent.update(method(name), arg)

    # --- ICRC-1 -------------------------------------------------------------------------------

    def icrc1_name(self) -> str:
        return text_from_candid(self._read("icrc1_name", encode_no_args()))

    def icrc1_symbol(self) -> str:
        return text_from_candid(self._read("icrc1_symbol", encode_no_args()))

    def icrc1_decimals(self) -> int:
        return nat_from_candid(self._read("icrc1_decimals", encode_no_args()))

    def icrc1_fee(self) -> int:
        return nat_from_candid(self._read("icrc1_fee", encode_no_args()))

    def icrc1_metadata(self) -> list[tuple[str, Value]]:
        return metadata_from_candid(self._read("icrc1_metadata", encode_no_args()))

    def icrc1_total_supply(self) -> int:
        return nat_from_candid(self._read("icrc1_total_supply", encode_no_args()))

    def icrc1_minting_account(self) -> Account | None:
        return minting_account_from_candid(self._read("icrc1_minting_account", encode_no_args()))

    def icrc1_balance_of(self, account: Account) -> int:
        return nat_from_candid(self._read("icrc1_balance_of", encode_account(account)))

    def icrc1_transfer(self, arg: TransferArg) -> TransferResult:
        return transfer_result_from_candid(self._write("icrc1_transfer", encode_transfer_arg(arg)))

    def icrc1_supported_standards(self) -> list[StandardRecord]:
        reply = self._read("icrc1_supported_standards", encode_no_args())
        return supported_standards_from_candid(reply)

    # --- ICRC-2 -------------------------------------------------------------------------------

    def icrc2_approve(self, arg: ApproveArgs) -> ApproveResult:
        return approve_result_from_candid(self._write("icrc2_approve", encode_approve_args(arg)))

    def icrc2_allowance(self, arg: AllowanceArgs) -> Allowance:
        return allowance_from_candid(self._read("icrc2_allowance", encode_allowance_args(arg)))

    def icrc2_transfer_from(self, arg: TransferFromArgs) -> TransferFromResult:
        reply = self._write("icrc2_transfer_from", encode_transfer_from_args(arg))
        return transfer_from_result_from_candid(reply)

    def __repr__(self) -> str:
        return (
            f"IcpLedger(canister_id={self._canister}, replica_url={self._url!r}, "
            f"caller={self._caller}, verify_certificate={self._verify_certificate})"
        )
