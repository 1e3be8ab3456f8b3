"""Bounce intelligence: read DSNs, complaints, auto-replies and bounce texts; classify replies.

Pure functions, stdlib only: bytes in, reports out, no I/O (docs/architecture.md, "One
message, end to end", step 5). The same rules table classifies asynchronous reports and the relay's
synchronous SMTP replies.

Public API:
    parse_bounce(raw, rules=None) -> list[BounceReport]
    classify_reply(code, enhanced, text, rules=None) -> Category
    load_rules(extra_path=None) -> Rules
"""

from __future__ import annotations

from gateway.bounce.classify import Rule, Rules
from gateway.bounce.parse import parse_bounce
from gateway.bounce.reply import classify_reply
from gateway.bounce.report import BounceReport
from gateway.bounce.rules_file import load_rules

__all__ = ["BounceReport", "Rule", "Rules", "classify_reply", "load_rules", "parse_bounce"]
