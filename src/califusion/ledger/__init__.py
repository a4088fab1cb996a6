"""The embedded token ledger: ICRC-1/2/3 semantics as a pure state machine over a SQL store.

types        Candid-mirroring call/reply types; Ok(block_index) | Err(error) results
icrc3        ICRC-3 Value, representation-independent hash, canonical JSON
blocks       ICRC-1/2 transactions and blocks in the ICRC-3 legacy schema
block_codec  the same hash and JSON of a block, straight from its fields (the write path's)
state        pure rules: apply_transfer / apply_approve / apply_transfer_from → Transition
schema       the tables and create_schema, the ledger's only DDL
store        SQLAlchemy store (own engine and tables): read and write transactions
sql_read     StoreReader: views, block ranges, an account's blocks, whole-state loads
sql_write    BatchWriter: one batch of commits in a few multi-row statements
cache        the state in memory for the single writer, and one batch's view over it
group_commit GroupCommit: one writer per ledger, pipelined batches, one commit per batch
service      Ledger: the icrc1_* / icrc2_* / icrc3_* methods, time from an injected clock
certificate  the tip signed with the ledger's Ed25519 key
verify       recompute everything from blocks and report every discrepancy
api          LedgerAPI: the ledger as one caller sees it; EmbeddedLedgerAPI
http_shapes  JSON shapes mirroring the Candid types (nat as decimal strings)
http_auth    the caller of an HTTP request is the principal whose key signed it
http_routes  ledger_router: /ledger/v1/<method>
setup        open_ledger(url, operator): the operator's account mints, its key signs tips
amounts      tokens ↔ units, exactly; ledger errors in words
"""

from califusion.ledger.blocks import Block, Op, Transaction
from califusion.ledger.certificate import TipCertificate, verify_tip_certificate
from califusion.ledger.icrc3 import (
    Array,
    Blob,
    Int,
    Map,
    Nat,
    Text,
    Value,
    decode_value,
    encode_value,
    hash_value,
)
from califusion.ledger.model import (
    MAX_TOKENS,
    ChainTip,
    Commit,
    LedgerConfig,
    LedgerView,
    StoredAllowance,
    Transition,
    current_allowance,
)
from califusion.ledger.schema import create_schema
from califusion.ledger.service import BlockWithId, GetBlocksResult, Ledger, seconds_to_ns
from califusion.ledger.state import apply_approve, apply_transfer, apply_transfer_from
from califusion.ledger.store import LedgerStore, StoredBlock
from califusion.ledger.types import (
    Allowance,
    AllowanceArgs,
    AllowanceChanged,
    ApproveArgs,
    ApproveError,
    ApproveResult,
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
    StandardRecord,
    SupportedBlockType,
    TemporarilyUnavailable,
    TooOld,
    TransferArg,
    TransferError,
    TransferFromArgs,
    TransferFromError,
    TransferFromResult,
    TransferResult,
)
from califusion.ledger.verify import Discrepancy, VerificationReport, verify_chain, verify_store

__all__ = [
    "MAX_TOKENS",
    "Allowance",
    "AllowanceArgs",
    "AllowanceChanged",
    "ApproveArgs",
    "ApproveError",
    "ApproveResult",
    "Array",
    "BadBurn",
    "BadFee",
    "Blob",
    "Block",
    "BlockWithId",
    "ChainTip",
    "Commit",
    "CreatedInFuture",
    "Discrepancy",
    "Duplicate",
    "Err",
    "Expired",
    "GenericError",
    "GetBlocksResult",
    "InsufficientAllowance",
    "InsufficientFunds",
    "Int",
    "Ledger",
    "LedgerConfig",
    "LedgerStore",
    "LedgerView",
    "Map",
    "Nat",
    "Ok",
    "Op",
    "StandardRecord",
    "StoredAllowance",
    "StoredBlock",
    "SupportedBlockType",
    "TemporarilyUnavailable",
    "Text",
    "TipCertificate",
    "TooOld",
    "Transaction",
    "TransferArg",
    "TransferError",
    "TransferFromArgs",
    "TransferFromError",
    "TransferFromResult",
    "TransferResult",
    "Transition",
    "Value",
    "VerificationReport",
    "apply_approve",
    "apply_transfer",
    "apply_transfer_from",
    "create_schema",
    "current_allowance",
    "decode_value",
    "encode_value",
    "hash_value",
    "seconds_to_ns",
    "verify_chain",
    "verify_store",
    "verify_tip_certificate",
]
