"""The relay's synchronous SMTP replies, classified by the same rules table as the
asynchronous reports, so ``550 5.1.1`` during relay and a DSN saying the same get the same
category."""

from __future__ import annotations

from gateway.bounce.classify import Rules, decide
from gateway.bounce.dsn import status_of
from gateway.bounce.freetext import command_in, reply_code_in
from gateway.bounce.rules_file import default_rules
from gateway.core.category import Category


def classify_reply(
    code: int | None, enhanced: str | None, text: str, rules: Rules | None = None
) -> Category:
    """Classify a synchronous SMTP reply the relay received (RFC 5321 §4.2, RFC 3463).

    Args:
        code: the three-digit reply code, e.g. ``550``.
        enhanced: the enhanced status code, e.g. ``"5.1.1"``; read from ``text`` when ``None``.
        text: the reply text.
        rules: a rules table; the packaged one when ``None``.
    """
    table = rules if rules is not None else default_rules()
    status = enhanced or status_of(text)
    reply = code if code is not None else reply_code_in(text)
    if reply is not None and 200 <= reply < 300:
        return Category.DELIVERED
    return decide(
        table,
        reply_code=reply,
        status=status,
        diagnostic=text,
        command=command_in(text),
    )
