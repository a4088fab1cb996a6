"""The ledger on the real Internet Computer: an ICRC-1/2 canister behind ``LedgerAPI``.

ledger         IcpLedger: the LedgerAPI methods as signed calls to a ledger canister
candid_codec   our call/reply types ⇄ Candid bytes of the shipped interface (pure)
replies        icp-py-core's decoded reply values → our types (pure)
icrc1_ledger.did  the ICRC-1/2 interface of DFINITY's ledger canister, trimmed
_candid, _agent   the only modules that touch icp-py-core (it has no type hints)
"""

from califusion.ledger.icp._agent import ReplicaTransport
from califusion.ledger.icp._candid import LedgerProtocolError
from califusion.ledger.icp.ledger import IcpLedger

__all__ = ["IcpLedger", "LedgerProtocolError", "ReplicaTransport"]
