"""Secure-aggregation errors, as subclasses of the one hierarchy in ``core.errors``.

They live here rather than in ``core/errors.py`` only because that file belongs to the core
layer's owner; each one subclasses the core error whose HTTP status it shares, so the
coordinator's single problem-translation point handles them unchanged.

    Conflict
    └── SecAggAborted (409)             too few clients left at a stage; nothing was revealed
    InvalidInput
    └── ProtocolViolation (422)         a message that breaks the protocol (stage, shape, sets)
        └── LateMessage                 a message for a stage that is already closed
    AuthenticationError
    └── ReplayedMessage (401)           a valid message seen again
        ├── WrongRound                  signed for another round (an earlier one, replayed)
        └── DuplicateMessage            the same sender already sent this stage's message
    PermissionDenied
    └── DoubleRevealRefused (403)       an honest client will not reveal both secrets of a peer
"""

from __future__ import annotations

from typing import Any

from califusion.core.errors import (
    AuthenticationError,
    Conflict,
    InvalidInput,
    PermissionDenied,
)


class SecAggAborted(Conflict):
    """The round cannot finish safely; the server and honest clients reveal nothing more."""

    code = "secagg-aborted"
    title = "Secure aggregation round aborted"

    def __init__(self, where: str, message: str | None = None, **counts: Any) -> None:
        if message is None:
            # Rebuilt from a problem body (``error_from_problem``): ``where`` is the whole
            # message and the stage travels among the details.
            super().__init__(where, **counts)
            self.stage = str(counts.pop("stage", ""))
        else:
            super().__init__(
                f"secure aggregation aborted at {where}: {message}", stage=where, **counts
            )
            self.stage = where
        self.counts: dict[str, Any] = counts


class ProtocolViolation(InvalidInput):
    code = "secagg-protocol-violation"
    title = "Secure aggregation protocol violation"


class LateMessage(ProtocolViolation):
    code = "secagg-late-message"
    title = "Message arrived after its stage closed"


class ReplayedMessage(AuthenticationError):
    code = "secagg-replayed"
    title = "Secure aggregation message replayed"


class WrongRound(ReplayedMessage):
    code = "secagg-wrong-round"
    title = "Message belongs to another round"


class DuplicateMessage(ReplayedMessage):
    code = "secagg-duplicate"
    title = "Message already received"


class DoubleRevealRefused(PermissionDenied):
    code = "secagg-double-reveal"
    title = "Refused to reveal both secrets of one peer"
