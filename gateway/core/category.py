"""The category of a failure, success or report: the bounce classifier's answer.

Owns: :class:`Category` and its seven-way fold. Its own module because ``gateway bounce
classify`` needs nothing else of the domain's vocabulary, and its start-up is timed against
Sisimai (bench/bounces.py --process); :mod:`gateway.core.model` re-exports it, and every other
layer imports it from there.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """What a failure, success or report means (docs/architecture.md, "Categories")."""

    NONEXISTENT_ADDRESS = "nonexistent_address"
    MAILBOX_DISABLED = "mailbox_disabled"
    MAILBOX_FULL = "mailbox_full"
    MESSAGE_TOO_LARGE = "message_too_large"
    SPAM_BLOCKED = "spam_blocked"
    SENDER_CONFIG = "sender_config"
    RECEIVING_PROBLEM = "receiving_problem"
    AUTO_REPLY = "auto_reply"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"

    @property
    def category7(self) -> str:
        """The seven-way fold support staff use (docs/architecture.md; corpus ``category7``)."""
        return _CATEGORY7[self]


_CATEGORY7 = {
    Category.NONEXISTENT_ADDRESS: "nonexistent_address",
    Category.MAILBOX_DISABLED: "nonexistent_address",
    Category.MAILBOX_FULL: "mailbox_full",
    Category.MESSAGE_TOO_LARGE: "receiving_problem",
    Category.SPAM_BLOCKED: "spam_blocked",
    Category.SENDER_CONFIG: "spam_blocked",
    Category.RECEIVING_PROBLEM: "receiving_problem",
    Category.AUTO_REPLY: "auto_reply",
    Category.COMPLAINT: "complaint",
    Category.DELIVERED: "delivered",
}
