"""Reading the human-written part of bounces: what MTAs and providers actually print.

Owns: the vendor- and MTA-specific text patterns — where the returned original message starts
(Postfix, Exim, Sendmail, qmail, Exchange, Gmail, Courier, Domino, Japanese carriers…), which
addresses in a notification are failed recipients, which block of text belongs to each, which
SMTP command the remote server was answering, and the reply and enhanced status codes in the
remote server's words. Does not own: DSN fields (``dsn``) or the verdict (``classify``).

Every regular expression here is linear (no nested unbounded quantifiers) and runs on bounded,
line-sized input.
"""

from __future__ import annotations

import re

from gateway.bounce.dsn import status_of
from gateway.bounce.literals import Gate, ascii_lowered

MAX_TEXT = 64 * 1024  # characters of notification text that are read at all
MAX_LINE = 1000

# Lines that start the returned original message; everything from there on is the sender's own
# mail and must not be mistaken for the remote server's words.
_ORIGINAL_MARKERS = re.compile(
    r"^\s*(?:[-=|*]+\s*)?(?:"
    r"this is a copy of the message|below this line is a copy of the message"
    r"|enclosed is a copy of the message|original message follows|original message headers"
    r"|original message ---|original message -|original message$|original mail info"
    r"|unsent message follows|returned message|message text follows"
    r"|the header of the original message|included is a copy of the message header"
    r"|below is a copy of the original message|message headers follow|original message:"
    r"|the original message was:|content of the original message|original mail follows"
    r"|the attachment contains the original mail headers|a copy of the original message"
    r"|original message header|returned mail follows|headers of your message"
    r"|original header|undelivered message follows|message header follows"
    r")",
    re.IGNORECASE,
)
# A header line of an inline returned message (two in a row start the original message).
_HEADERISH = re.compile(
    r"^(?:return-path|received|message-id|date|from|to|subject|mime-version|content-type"
    r"|dkim-signature|x-[a-z0-9-]+|arc-[a-z-]+|authentication-results|delivered-to"
    r"|reply-to|references|in-reply-to|cc):\s",
    re.IGNORECASE,
)

_ADDRESS = re.compile(
    r"(?<![\w.!#$%&'*+=?^`{|}~/-])"
    r"([A-Za-z0-9!#$%&'*+=?^_`{|}~-][A-Za-z0-9.!#$%&'*+=?^_`{|}~-]{0,127}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8})",
    re.ASCII,
)
# How a line may begin before a failed recipient: quoting, bullets, SMTP transcript arrows, a reply
# code, and up to three short "Label:" prefixes ("Recipient address:", "RCPT TO:").
_LEAD = re.compile(
    r"^[\s>*\-\"'<(\[]*(?:<<<\s*|>>>\s*)?(?:[245]\d\d[\s\-:]+)?"
    r"((?:[A-Za-z][A-Za-z0-9 _,'.\-]{0,60}:\s*){0,3})[\s<\"'(]*$",
    re.ASCII,
)
# Labels that name the sender or the original headers, not a failed recipient.
_SENDER_LABELS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "return-path",
        "subject",
        "date",
        "message-id",
        "mail from",
        "envelope-from",
        "sent by",
        "x-postfix-sender",
        "errors-to",
        "reporting-mta",
    }
)
# Phrases that introduce a failed recipient in the middle of a sentence.
_INLINE_RECIPIENT = re.compile(
    r"(?:rcpt to|rcpt|deliver(?:ing)?(?: your)?(?: mail| message| e-?mail)?(?: to)?"
    r"|delivered to|recipient(?: address)?|address|failed|mailing list"
    r"|(?:mensagem|e-?mail) (?:enviad[ao] )?para|enviou (?:uma mensagem )?para"
    r"|destinat[aá]rio)\s*:?\s*<?$",
    re.IGNORECASE,
)

# The SMTP phase the remote server was answering, as each MTA words it (RFC 5321 §4.1).
_COMMANDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), cmd)
    for p, cmd in (
        (r"in reply to (?:the )?mail from", "MAIL"),
        (r"in reply to (?:the )?rcpt to", "RCPT"),
        (r"in reply to (?:end of )?data", "DATA"),
        (r"in reply to (?:the )?(?:ehlo|helo)|in reply to (?:initial )?greeting", "CONN"),
        (r"after (?:the )?mail from", "MAIL"),
        (r"after (?:the )?rcpt to|after rcpt", "RCPT"),
        (r"after (?:end of data|data|pipelined data|sending data)", "DATA"),
        (r"after (?:initial connection|connect|ehlo|helo|greeting|starttls)", "CONN"),
        (r"did not like our mail from|\[mail_from\]|mail from command", "MAIL"),
        (r"did not like our rcpt to|\[rcpt_to\]|does not like recipient|rcpt to response", "RCPT"),
        (r"did not like our (?:final )?data|\[data\]|failed after i sent the message", "DATA"),
        (r"sender was rejected|\(state 8\)|\(state 9\)|\(state 13\)", "MAIL"),
        (r"\(state 1[45]\)|smtp:rcpt", "RCPT"),
        (r"\(state 1[78]\)|\(data\)|step: data|-{3,}smtp command\s+data", "DATA"),
        # Sendmail: a reply right after "while talking to" answered no command, i.e. the
        # greeting (RFC 5321 §3.1: a 554 greeting refuses the whole session).
        (r"while talking to [^\n]{1,200}\n[> ]*<<< [45]\d\d", "CONN"),
    )
)
_TRANSCRIPT_CMD = re.compile(
    r"^[> ]*>>>\s*(mail from|rcpt to|data|ehlo|helo)|^\s*(?:sent|in:)\s*(?:<<<\s*)?"
    r"(mail from|rcpt to|data)",
    re.IGNORECASE | re.MULTILINE,
)
# Literal pre-checks: most texts name none of the phrases, and a substring test is far cheaper
# than a case-insensitive regex search (results are unchanged, see gateway.bounce.literals).
_COMMAND_GATES = tuple((Gate(pattern), command) for pattern, command in _COMMANDS)
_TRANSCRIPT_GATE = Gate(_TRANSCRIPT_CMD)
_ALL_GATES = [gate for gate, _ in _COMMAND_GATES] + [_TRANSCRIPT_GATE]
_COMMAND_LITERALS: frozenset[str] | None = (
    frozenset(lit for gate in _ALL_GATES for lit in gate.literals or ())
    if all(gate.literals for gate in _ALL_GATES)
    else None  # some pattern has no literal pre-check: search gate by gate
)
_TRANSCRIPT_MAP = {"mail from": "MAIL", "rcpt to": "RCPT", "data": "DATA"}

_REPLY_CODE = re.compile(r"(?:^|[\s:;(\[<>\"'=])([245][0-5]\d)(?:[\s\-:;,.)\]]|$)", re.MULTILINE)
_EHLO_LIKE = frozenset({"ehlo", "helo"})


def cut_original(text: str) -> str:
    """Return the notification text before the returned original message.

    Args:
        text: the decoded bounce text.
    """
    lines = text[:MAX_TEXT].split("\n")
    seen_address = False
    for index, line in enumerate(lines):
        if index and _ORIGINAL_MARKERS.match(line[:200]):
            return "\n".join(lines[:index])
        # Two header lines in a row start an inline original message — but only once the
        # notification has named someone (a forwarded bounce starts with its own headers).
        if (
            seen_address
            and ":" in line  # cheap: a header line has a colon
            and _HEADERISH.match(line[:200])
            and index + 1 < len(lines)
            and (_HEADERISH.match(lines[index + 1][:200]) or lines[index + 1][:1] in " \t")
            and not lines[index + 1].strip().startswith("<")
        ):
            return "\n".join(lines[:index])
        seen_address = seen_address or "@" in line
    return "\n".join(lines)


def strip_quoting(text: str) -> str:
    """Remove one level of ``> `` e-mail quoting when most lines are quoted (forwarded bounces).

    Args:
        text: decoded text.
    """
    lines = text.split("\n")
    quoted = sum(1 for line in lines if line.startswith(">"))
    if quoted < 5 or quoted * 2 < len([line for line in lines if line.strip()]):
        return text
    return "\n".join(line[2:] if line.startswith("> ") else line[1:] for line in lines)


def recipients_in(text: str, exclude: set[str]) -> list[str]:
    """Return the failed recipients a notification names, in order of first mention.

    An address counts when it leads its line (after quoting, bullets, a reply code and short
    labels such as ``Recipient address:``), or follows "RCPT TO"/"deliver … to". Addresses
    labelled as a sender (``From:``, ``MAIL FROM:``, ``Original Sender:``) and those in
    ``exclude`` (the bounce's own From and To) never count.

    Args:
        text: the notification text, original message already cut.
        exclude: lower-cased addresses to ignore.
    """
    found: list[str] = []
    for full_line in text.split("\n"):
        line = full_line[:MAX_LINE]
        for match in _ADDRESS.finditer(line):
            addr = match.group(1).lower().rstrip(".-")
            if addr in exclude or addr in found or "@" not in addr:
                continue
            before = line[: match.start()]
            lead = _LEAD.match(before)
            if lead is not None:
                if _is_sender_label(lead.group(1)):
                    continue
                found.append(addr)
            elif _INLINE_RECIPIENT.search(before[-60:]):
                found.append(addr)
    return found


def blocks_for(text: str, recipients: list[str]) -> dict[str, str]:
    """Split a notification into the text that belongs to each recipient.

    When a recipient's own line carries a reply code (``554 <a@b>... Host unknown``), that line
    and its indented continuation are its block; otherwise its block runs from its first mention
    to the next recipient's. With a single recipient the whole notification is its block.

    Args:
        text: the notification text, original message already cut.
        recipients: lower-cased addresses from :func:`recipients_in` or a DSN.
    """
    if len(recipients) <= 1:
        return dict.fromkeys(recipients, text)
    lines = text.split("\n")
    mentions = [{r for r in recipients if r in line.lower()} for line in lines]
    out: dict[str, str] = {}
    for rcpt in recipients:
        begin = next((i for i, found in enumerate(mentions) if rcpt in found), None)
        if begin is None:
            out[rcpt] = text
            continue
        # The block ends where another recipient is named without this one.
        end = next(
            (i for i in range(begin + 1, len(lines)) if mentions[i] and rcpt not in mentions[i]),
            len(lines),
        )
        own = lines[begin]
        if _REPLY_CODE.search(own.replace(rcpt, " ")) or status_of(own):
            stop = begin + 1
            while stop < end and lines[stop][:1] in {" ", "\t"} and lines[stop].strip():
                stop += 1
            end = stop
        out[rcpt] = "\n".join(lines[begin:end])
    return out


def command_in(text: str) -> str | None:
    """Return the SMTP command the remote server was answering: MAIL, RCPT, DATA or CONN.

    Args:
        text: a recipient's block or diagnostic text.
    """
    lowered = ascii_lowered(text)
    if lowered is not None and _COMMAND_LITERALS is not None:
        # Each distinct literal is looked for once; a gate's regex runs only when one of its
        # required literals is present (as Gate.search does, literal by literal).
        present = {lit for lit in _COMMAND_LITERALS if lit in lowered}
        for gate, command in _COMMAND_GATES:
            if not present.isdisjoint(gate.literals or ()) and gate.pattern.search(text):
                return command
        if present.isdisjoint(_TRANSCRIPT_GATE.literals or ()):
            return None
    else:
        for gate, command in _COMMAND_GATES:
            if gate.search(text, lowered):
                return command
        if not _TRANSCRIPT_GATE.may_match(text, lowered):
            return None
    last = None
    for match in _TRANSCRIPT_CMD.finditer(text):
        word = (match.group(1) or match.group(2) or "").lower()
        last = "CONN" if word in _EHLO_LIKE else _TRANSCRIPT_MAP.get(word)
    return last


def reply_code_in(text: str) -> int | None:
    """Return the first plausible SMTP reply code (RFC 5321 §4.2) in the text, or ``None``.

    Args:
        text: a diagnostic or a recipient's block.
    """
    for match in _REPLY_CODE.finditer(text[:4000]):
        code = int(match.group(1))
        tail = text[match.end(1) : match.end(1) + 12]
        # "4.4.7" and dotted IP addresses are not reply codes.
        if tail.startswith(".") and tail[1:2].isdigit():
            continue
        return code
    return None


def _is_sender_label(label: str) -> bool:
    segments = [seg.strip().lower() for seg in label.split(":") if seg.strip()]
    if not segments:
        return False
    last = segments[-1]
    return last in _SENDER_LABELS or "sender" in last or last.endswith(" from")


def looks_like_header(text: str) -> bool:
    """Return True when ``text`` starts with a header field of a returned message.

    Args:
        text: text that follows the notification.
    """
    return bool(_HEADERISH.match(text[:200]))
