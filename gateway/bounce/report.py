"""The per-recipient result of reading one bounce, complaint or auto-reply.

Owns: :class:`BounceReport`, the plain record every parser in this package produces and every
consumer (relay outcome, store, CLI, webhooks) reads, and its JSON form. Does not own: how the
fields are found (``dsn``, ``arf``, ``freetext``, ``autoreply``) or classified (``classify``).
"""

from __future__ import annotations

from gateway.bounce.records import FrozenRecord
from gateway.core.category import Category

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["dsn", "nonstandard", "arf", "auto_reply", "none", "unparseable"]

KINDS: tuple[str, ...] = ("dsn", "nonstandard", "arf", "auto_reply", "none", "unparseable")


class BounceReport(FrozenRecord):
    """What one report says about one recipient.

    Attributes:
        recipient: the failed (or delivered, or reported) address, lower-cased; ``None`` when the
            report does not name one (an ARF report with the recipient redacted).
        action: the RFC 3464 §2.3.3 action (failed/delayed/delivered/relayed/expanded) or ``None``.
        status: the RFC 3463 enhanced status code, such as ``"5.1.1"``, or ``None``.
        reply_code: the SMTP reply code (RFC 5321 §4.2), such as ``550``, or ``None``.
        diagnostic: the remote server's words, decoded, white space collapsed, bounded.
        remote_mta: the host that gave the answer, when known.
        kind: which reader produced the report.
        category: the classifier's verdict, ``None`` when nothing could be read.
        feedback_type: the ARF Feedback-Type (RFC 5965 §3.1), for complaints.
        provider_hint: a provider recognised from its texts, e.g. ``"uol"`` for UOL AntiSpam.
        challenge_url: with ``provider_hint``, the link the provider's challenge gives the
            sender to confirm, when the report carries one.
    """

    _FIELDS = (
        "recipient",
        "action",
        "status",
        "reply_code",
        "diagnostic",
        "remote_mta",
        "kind",
        "category",
        "feedback_type",
        "provider_hint",
        "challenge_url",
    )
    __slots__ = _FIELDS

    recipient: str | None
    action: str | None
    status: str | None
    reply_code: int | None
    diagnostic: str
    remote_mta: str | None
    kind: str
    category: Category | None
    feedback_type: str | None
    provider_hint: str | None
    challenge_url: str | None

    def __init__(
        self,
        recipient: str | None,
        action: str | None,
        status: str | None,
        reply_code: int | None,
        diagnostic: str,
        remote_mta: str | None,
        kind: str,
        category: Category | None,
        feedback_type: str | None = None,
        provider_hint: str | None = None,
        challenge_url: str | None = None,
    ) -> None:
        self._init(
            recipient=recipient,
            action=action,
            status=status,
            reply_code=reply_code,
            diagnostic=diagnostic,
            remote_mta=remote_mta,
            kind=kind,
            category=category,
            feedback_type=feedback_type,
            provider_hint=provider_hint,
            challenge_url=challenge_url,
        )

    def to_json_dict(self) -> dict[str, object]:
        """Return the report as JSON-ready primitives (the category as its string value)."""
        return {
            "recipient": self.recipient,
            "action": self.action,
            "status": self.status,
            "reply_code": self.reply_code,
            "diagnostic": self.diagnostic,
            "remote_mta": self.remote_mta,
            "kind": self.kind,
            "category": self.category.value if self.category is not None else None,
            "feedback_type": self.feedback_type,
            "provider_hint": self.provider_hint,
            "challenge_url": self.challenge_url,
        }


def unparseable(diagnostic: str = "") -> BounceReport:
    """Return the single report given for input that could not be read.

    Args:
        diagnostic: a short explanation (never raw attacker text of unbounded length).
    """
    return BounceReport(
        recipient=None,
        action=None,
        status=None,
        reply_code=None,
        diagnostic=diagnostic[:200],
        remote_mta=None,
        kind="unparseable",
        category=None,
    )
