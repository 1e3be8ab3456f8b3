"""From raw bytes to per-recipient reports: the reader that tries each format in turn.

Owns: :func:`parse_bounce` — the order in which formats are tried (ARF complaints, provider
JSON notifications, RFC 3464 DSNs, auto-replies, non-standard bounce texts), who the failed
recipients are, which words are the remote server's, and handing those facts to the classifier.
Does not own: the format details (``mime``, ``dsn``, ``arf``, ``notify``, ``autoreply``,
``freetext``) or the verdict (``classify``). Pure: bytes in, reports out, no I/O.

Work is bounded: input is capped (``mime.MAX_BYTES``), MIME nesting and part counts are capped,
text is cut to ``freetext.MAX_TEXT`` characters, and every regular expression is linear.
"""

from __future__ import annotations

import re

from gateway.bounce import arf, autoreply, dsn, freetext, mime, notify
from gateway.bounce.cache import regex
from gateway.bounce.classify import Rules, decide
from gateway.bounce.decode import collapse_ws, decode_header
from gateway.bounce.literals import Gate, folded
from gateway.bounce.report import BounceReport, unparseable
from gateway.bounce.rules_file import default_rules
from gateway.core.category import Category

_TAG = regex(r"<[^<>]{0,2000}>")
_ADDRESS = regex(r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_BOUNCE_FROM = regex(
    r"mailer-daemon|mailer_daemon|postmaster|post_master|mail delivery|maildelivery"
    r"|mail-daemon|mdaemon|no-reply@.*\.ne\.jp|bounce"
)
_BOUNCE_SUBJECT = regex(
    r"undeliver|undelivered|delivery (?:status )?notification|delivery fail|failure notice"
    r"|returned mail|mail delivery|could not be delivered|non-?delivery|returned to sender"
    r"|delivery problem|mail system error|failed delivery|failure delivery|delivery report"
    r"|error sending|not delivered|delivery has failed|delivery status|warning: message"
    r"|delayed|nondeliverable|message delivery|aws notification|mensagem n[aã]o entregue"
    r"|falha (?:na|de) entrega|n[aã]o (?:foi )?entregue|devolvid|are not (?:a )?member"
)
_BOUNCE_BODY = regex(
    r"could not be delivered|couldn't be delivered|not be delivered|delivery failed"
    r"|undeliverable|permanent error|permanent fatal|user unknown|unknown user|no such user"
    r"|was not delivered|unable to deliver|did not reach|delivery to the following"
    r"|failed permanently|could not deliver|error delivering|mailbox is full|delivery has failed"
    r"|remote host said|said: [45]\d\d|following address|n[aã]o foi entregue"
    r"|not a valid (?:user|recipient|mailbox)"
)
# The three patterns above and _PROVIDERS are lower case and search folded text
# (gateway.bounce.literals.folded), which finds what re.IGNORECASE finds in the text; they
# compile several times faster so.
_PROVIDERS = (
    ("uol", regex(r"uol\.com\.br|antispam uol|anti-spam uol|uol antispam")),
    ("bol", regex(r"bol\.com\.br|antispam bol|anti-spam bol|bol antispam")),
    ("terra", regex(r"terra\.com\.br|anti-?spam (?:do )?terra|terra anti-?spam")),
)
_ANTISPAM = Gate(regex(r"anti-?\s?spam", re.IGNORECASE))
_GENERIC_STATUS = frozenset({"5.0.0", "4.0.0", "5.0.1", "4.0.1"})
# The bounce's own header fields naming addresses that are never a failed recipient.
_OWN_FIELDS = frozenset({"from", "to", "reply-to", "return-path", "sender", "delivered-to"})
# What every error reply code (4xx, 5xx) and every non-success status code (4.x.x, 5.x.x)
# contains: a line without it is skipped by _server_words without the full searches.
_CODE_HINT = regex(r"[45](?:\d\d|\.\d)")


class _View:
    """The parts of a message that matter, gathered in one walk."""

    __slots__ = ("carriers", "dsn_texts", "html_parts", "root", "texts")

    def __init__(self, root: mime.Part) -> None:
        self.root = root
        self.texts: list[str] = []
        # HTML parts: decoded only when the message has no other text (see body).
        self.html_parts: list[mime.Part] = []
        self.dsn_texts: list[str] = []
        # Parts that carry an attached message; its header fields are parsed only when read.
        self.carriers: list[mime.Part] = []

    def body(self) -> str:
        """Return the text parts joined, or the HTML parts without their tags if none."""
        if self.texts:
            return "\n".join(self.texts)
        return "\n".join(_TAG.sub(" ", part.text()) for part in self.html_parts)

    def enclosed(self, limit: int | None = None) -> list[mime.Part]:
        """Return the attached messages (the first ``limit`` of them), parsing their headers."""
        out = []
        for carrier in self.carriers[:limit]:
            msg = carrier.enclosed
            if msg is not None:
                out.append(msg)
        return out


def parse_bounce(raw: bytes, rules: Rules | None = None) -> list[BounceReport]:
    """Read a raw message into zero or more per-recipient reports; never raises.

    Returns ``[]`` for a message that is no bounce, complaint or auto-reply, and a single report
    of kind ``"unparseable"`` for input that cannot be read as mail at all.

    Args:
        raw: the message exactly as received.
        rules: a rules table (``load_rules``); the packaged one when ``None``.
    """
    table = rules if rules is not None else default_rules()
    try:
        data = bytes(raw)
        messages = mime.split_mbox(data)
        if len(messages) == 1:
            return _parse(data, table)
        reports = [report for message in messages for report in _parse(message, table)]
        real = [r for r in reports if r.kind != "unparseable"]
        return real or reports[:1]
    except Exception:  # the contract: hostile input never raises
        return [unparseable("the message could not be read")]


def _parse(raw: bytes, rules: Rules) -> list[BounceReport]:
    if not raw.strip():
        return []
    root = mime.parse(raw)
    if not root.headers:
        return [unparseable("no header fields")]
    view = _gather(root)
    if arf.is_feedback_report(root):
        return arf.parse_feedback(root)
    body = view.body()
    if notify.looks_like(body):
        reports = _from_notices(notify.parse(body), rules)
        if reports:
            return reports
    complaints = arf.parse_other_complaint(root)
    if complaints:
        return complaints
    notification = freetext.cut_original(freetext.strip_quoting(body))
    records = [rec for text in view.dsn_texts for rec in dsn.parse_fields(text)]
    if not records and dsn.has_fields(body):
        # DSN fields pasted into a text body (forwarded or hand-made reports).
        records = dsn.parse_fields(freetext.strip_quoting(body))
    if records:
        return _from_dsn(records, notification, view, rules)
    strong, weak = autoreply.signals(root)
    if strong:
        return [_auto_reply(root)]
    provider = _provider(root, notification)
    if provider or _looks_like_bounce(root, notification):
        reports = _from_text(notification, body, view, rules, provider)
        if reports:
            return reports
    if weak or autoreply.body_says_away(body):
        return [_auto_reply(root)]
    if root.ctype.startswith("multipart/") and not root.children:
        return [unparseable("multipart message without readable parts")]
    return []


def _gather(root: mime.Part) -> _View:
    view = _View(root=root)
    for part in root.walk():
        if part.carries_message:
            view.carriers.append(part)
        if part.children or part.carries_message:
            continue
        if "delivery-status" in part.ctype:
            # Some MTAs omit the empty line after the part's own header fields, so the DSN
            # fields land among them; read those too.
            own = "\n".join(f"{k}: {v}" for k, v in part.headers if not k.startswith("content-"))
            view.dsn_texts.append(f"{own}\n\n{part.text()}")
        elif part.ctype == "text/html":
            view.html_parts.append(part)
        elif part.ctype.startswith("text/") or part.ctype == "message/partial":
            view.texts.append(part.text())
    return view


def _from_dsn(
    records: list[dsn.DsnRecord], notification: str, view: _View, rules: Rules
) -> list[BounceReport]:
    blocks = freetext.blocks_for(notification, [r.recipient or "" for r in records])
    provider = _provider(view.root, notification)
    reports = []
    for rec in records:
        block = blocks.get(rec.recipient or "", notification)
        diagnostic = rec.diagnostic or _server_words(block, strict=True)
        status = rec.status
        specific = dsn.status_of(diagnostic)
        if specific and (status is None or status in _GENERIC_STATUS):
            status = specific
        reply = freetext.reply_code_in(diagnostic) if diagnostic else None
        if reply is None:
            reply = freetext.reply_code_in(block)
        command = freetext.command_in(f"{diagnostic}\n{block}")
        # Without a Diagnostic-Code the whole notification is read at once, so its most
        # specific sentence wins (rules are ordered from specific to generic).
        words = f"{rec.diagnostic} {rec.status_comment}".strip()
        if rec.diagnostic_type == "X-UNIX":
            # RFC 3464 §2.3.6: the receiver's local delivery agent wrote these words (a pipe, a
            # program's exit code), which the rules read as the agent's error, not the mailbox's.
            words = f"x-unix; {words}"
        category = decide(
            rules,
            reply_code=reply,
            status=status,
            diagnostic=words,
            context=block,
            command=command,
            action=rec.action,
            provider=provider,
        )
        reports.append(
            BounceReport(
                recipient=rec.recipient,
                action=rec.action,
                status=status,
                reply_code=reply,
                diagnostic=collapse_ws(diagnostic or block),
                remote_mta=rec.remote_mta,
                kind="dsn",
                category=category,
                provider_hint=provider,
                challenge_url=_challenge_link(notification) if provider else None,
            )
        )
    return reports


def _from_text(
    notification: str, body: str, view: _View, rules: Rules, provider: str | None
) -> list[BounceReport]:
    exclude = _own_addresses(view.root)
    recipients = freetext.recipients_in(notification, exclude)
    if not recipients:
        # Exim names the failed recipients in a header field (X-Failed-Recipients).
        failed = view.root.get_all("x-failed-recipients")
        recipients = list(dict.fromkeys(a.lower() for v in failed for a in _ADDRESS.findall(v)))
    if not recipients:
        recipients = _original_recipients(view, body, len(notification), exclude)
    if not recipients:
        # Local parts only (AOL): the domain is the reporting system's.
        sender = _ADDRESS.findall(view.root.get("from"))
        domain = sender[0].rpartition("@")[2] if sender else ""
        recipients = freetext.bare_recipients(notification, domain)
    if not recipients:
        return []
    blocks = freetext.blocks_for(notification, recipients)
    reports = []
    for rcpt in recipients[:500]:
        block = blocks.get(rcpt, notification)
        words = _server_words(block, strict=True)  # when not empty, the same as non-strict
        if not words:
            # Some gateways (InterScan) put the real transcript inside the attached message.
            block = f"{block}\n{_enclosed_words(view, rcpt)}"
            words = _server_words(block)
        status = dsn.status_of(words) or dsn.status_of(block)
        if status is not None and status.startswith("2."):
            status = None  # a version number or a quoted success, never a verdict here
        reply = freetext.reply_code_in(words)
        if reply is not None and reply < 400:
            reply = None
        command = freetext.command_in(block)
        category = decide(
            rules,
            reply_code=reply,
            status=status,
            diagnostic=words,
            context=block,
            command=command,
            provider=provider,
        )
        reports.append(
            BounceReport(
                recipient=rcpt,
                action="failed" if status is None or status[0] == "5" else "delayed",
                status=status,
                reply_code=reply,
                diagnostic=collapse_ws(words or block),
                remote_mta=None,
                kind="nonstandard",
                category=category,
                provider_hint=provider,
                challenge_url=_challenge_link(notification) if provider else None,
            )
        )
    return reports


def _from_notices(notices: list[notify.Notice], rules: Rules) -> list[BounceReport]:
    reports = []
    for notice in notices:
        if notice.kind == "complaint":
            category: Category = Category.COMPLAINT
        elif notice.kind == "delivery":
            category = Category.DELIVERED
        else:
            category = decide(
                rules,
                reply_code=freetext.reply_code_in(notice.diagnostic),
                status=notice.status,
                diagnostic=notice.diagnostic,
                action=notice.action,
            )
        reports.append(
            BounceReport(
                recipient=notice.recipient,
                action=notice.action,
                status=notice.status,
                reply_code=freetext.reply_code_in(notice.diagnostic),
                diagnostic=notice.diagnostic,
                remote_mta=notice.remote_mta,
                kind="arf" if notice.kind == "complaint" else "dsn",
                category=category,
                feedback_type=notice.feedback_type,
            )
        )
    return reports


def _auto_reply(root: mime.Part) -> BounceReport:
    return BounceReport(
        recipient=autoreply.author(root),
        action=None,
        status=None,
        reply_code=None,
        diagnostic=collapse_ws(root.get("subject"), 200),
        remote_mta=None,
        kind="auto_reply",
        category=Category.AUTO_REPLY,
    )


def _server_words(block: str, *, strict: bool = False) -> str:
    """Keep the lines of a block that carry an error reply or status code (and what follows)."""
    hinted = _hinted_lines(block)
    if not hinted:
        return "" if strict else block  # no line can carry a 4xx/5xx code or status
    lines = block.split("\n")
    keep: list[str] = []
    for index in hinted:
        line = lines[index]
        code = freetext.reply_code_in(line)
        status = dsn.status_of(line)
        if (code is not None and code >= 400) or (status is not None and status[0] != "2"):
            # The line before often says which command or mailer failed.
            keep.extend(lines[max(0, index - 1) : index + 3])
    if keep:
        return "\n".join(dict.fromkeys(keep))
    return "" if strict else block


def _hinted_lines(block: str) -> list[int]:
    """The numbers of the lines of ``block`` holding a code hint, in order (a hint never spans
    lines, so these are the lines where _CODE_HINT finds one)."""
    hinted: list[int] = []
    line = start = 0
    search = _CODE_HINT.search
    match = search(block)
    while match is not None:
        line += block.count("\n", start, match.start())
        hinted.append(line)
        # The rest of this line cannot add to the answer: go on at its newline.
        start = block.find("\n", match.end())
        if start < 0:
            break
        match = search(block, start)
    return hinted


def _enclosed_words(view: _View, rcpt: str) -> str:
    """Return the error lines about ``rcpt`` from the text of attached messages."""
    for msg in view.enclosed(3):
        raw = b"Content-Type: " + msg.get("content-type", "text/plain").encode() + b"\n\n"
        inner = mime.parse(raw + msg.body[: freetext.MAX_TEXT])
        for part in inner.walk():
            if part.ctype == "text/plain" and not part.children:
                text = freetext.cut_original(part.text())
                if rcpt in text.lower():
                    return _server_words(text, strict=True)
    return ""


def _own_addresses(root: mime.Part) -> set[str]:
    own: set[str] = set()
    for name, value in root.headers:
        if name in _OWN_FIELDS:
            own.update(a.lower() for a in _ADDRESS.findall(decode_header(value)))
    return own


def _original_recipients(view: _View, body: str, cut: int, exclude: set[str]) -> list[str]:
    """Fall back to the returned original message: its To field or its "for <rcpt>" trace."""
    headers: list[mime.Part] = view.enclosed()
    tail = body[cut:].lstrip("\n")
    if tail:
        start = tail.find("\n") + 1 if not freetext.looks_like_header(tail) else 0
        fields, _ = mime.parse_headers(tail[start : start + 32768].encode("utf-8", "replace"))
        headers.append(mime.Part(headers=fields, ctype="message/rfc822", params={}, body=b""))
    for msg in headers:
        for name in ("to", "cc"):
            found = [a.lower() for a in _ADDRESS.findall(msg.get(name))]
            found = [a for a in found if a not in exclude]
            if found:
                return found[:1]
    return []


def _provider(root: mime.Part, text: str) -> str | None:
    """Name the Brazilian challenge-response anti-spam (UOL, BOL, Terra) when it is one."""
    haystack = f"{root.get('from')}\n{root.get('subject')}\n{text[:4000]}"
    folded_haystack = folded(haystack)
    if not _ANTISPAM.search(haystack, folded_haystack):
        return None
    for name, pattern in _PROVIDERS:
        if pattern.search(folded_haystack):
            return name
    return None


# A link in a challenge report: scheme, host and path, up to white space or a delimiter.
_LINK = regex(r"https?://[A-Za-z0-9.-]{1,253}(?::\d{1,5})?(?:/[^\s<>\"'()\[\]{}]{0,1000})?")


def _challenge_link(text: str) -> str | None:
    """The first http(s) link of a challenge report (the page that asks the sender to
    confirm), bounded; ``None`` when there is none."""
    found = _LINK.search(text[:20000])
    return found.group(0).rstrip(".,;:") if found else None


def _looks_like_bounce(root: mime.Part, text: str) -> bool:
    return bool(
        _BOUNCE_FROM.search(folded(root.get("from")))
        or _BOUNCE_SUBJECT.search(folded(root.get("subject")))
        or _BOUNCE_BODY.search(folded(text[:8000]))
        or root.get("x-failed-recipients")
    )
