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
from collections.abc import Iterator

from gateway.bounce.cache import regex
from gateway.bounce.dsn import status_of
from gateway.bounce.literals import folded, required_literals_of, trie_pattern

MAX_TEXT = 64 * 1024  # characters of notification text that are read at all
MAX_LINE = 1000

# Lines that start the returned original message; everything from there on is the sender's own
# mail and must not be mistaken for the remote server's words.
_MARKER_PHRASES = (
    "this is a copy of the message|below this line is a copy of the message"
    "|enclosed is a copy of the message|original message follows|original message headers"
    "|original message ---|original message -|original message$|original mail info"
    "|unsent message follows|returned message|message text follows"
    "|the header of the original message|included is a copy of the message header"
    "|below is a copy of the original message|message headers follow|original message:"
    "|the original message was:|content of the original message|original mail follows"
    "|the attachment contains the original mail headers|a copy of the original message"
    "|original message header|returned mail follows|headers of your message"
    "|original header|undelivered message follows|message header follows"
)
# Like the other patterns below written in lower case, these two read folded text
# (gateway.bounce.literals.folded), where they match what re.IGNORECASE matches in the text, and
# compile several times faster.
_ORIGINAL_MARKERS = regex(rf"^\s*(?:[-=|*]+\s*)?(?:{_MARKER_PHRASES})")
# A header line of an inline returned message (two in a row start the original message).
_HEADER_NAMES = (
    "return-path|received|message-id|date|from|to|subject|mime-version|content-type"
    "|dkim-signature|x-[a-z0-9-]+|arc-[a-z-]+|authentication-results|delivered-to"
    "|reply-to|references|in-reply-to|cc"
)
_HEADERISH = regex(rf"^(?:{_HEADER_NAMES}):\s")
# Where cut_original's candidate lines start, searched in the whole text at once: right after a
# newline (the first line is never a candidate), with no 200-character cap; a marker may follow
# any run of non-word characters (the per-line pattern allows white space and rules) and the
# "$" is dropped. So each pattern matches every line the per-line pattern above it matches, and
# checking each candidate line with that pattern gives the line-by-line answer. The leading
# "\n" lets the regex engine jump from line to line. They search the folded text (see
# gateway.bounce.literals), where case-sensitive matching equals IGNORECASE matching in the text
# and is far cheaper. The marker phrases (plain text) are laid out as a trie: at a line start
# the engine then follows one branch instead of trying each phrase; the match starts where the
# alternation's would, and only match starts are used.
_MARKER_LINE = regex(
    rf"\n[^\w\n]*(?:{trie_pattern(set(_MARKER_PHRASES.replace('$', '').split('|')))})"
)
_HEADER_LINE = regex(rf"\n(?:{_HEADER_NAMES}):[^\S\n]")

_ADDRESS = regex(
    r"(?<![\w.!#$%&'*+=?^`{|}~/-])"
    r"([A-Za-z0-9!#$%&'*+=?^_`{|}~-][A-Za-z0-9.!#$%&'*+=?^_`{|}~-]{0,127}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8})",
    re.ASCII,
)
# How a line may begin before a failed recipient: quoting, bullets, SMTP transcript arrows, a reply
# code, and up to three short "Label:" prefixes ("Recipient address:", "RCPT TO:").
_LEAD = regex(
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
_INLINE_RECIPIENT = regex(
    r"(?:rcpt to|rcpt|deliver(?:ing|y)?(?: your)?(?: mail| message| e-?mail)?(?: to)?"
    r"|delivered to|recipient(?: address)?|address|failed|mailing list"
    r"|(?:mensagem|e-?mail) (?:enviad[ao] )?para|enviou (?:uma mensagem )?para"
    r"|destinat[aá]rio"
    # flufl.bounce's samples (tests/data/flufl_bounce): "(Originally addressed to …)", SMTP32
    # "undeliverable to", Mail.ru "Local mailbox", "Your message to <…> was rejected",
    # MailEnable "[SMTP:…]" and X.400 "dda:SMTP=…". Not Exim's "generated from" nor Sendmail's
    # "expanded from:": naming the alias as a second recipient splits the text wrongly (DEV).
    r"|originally addressed to|undeliverable\s+to|local mailbox"
    r"|your message to|smtp|smtp=)\s*:?\s*<?$"
    # "You sent mail to a@b.c.", "Your mail to a@b.c could not …" (a one-line report).
    r"|(?:you sent (?:mail|a message|an e-?mail) to|your mail to)\s*<?$"
)  # searches folded text, as _ORIGINAL_MARKERS does
# A report that names its failed recipients by local part only, one a line under a line that
# announces them (AOL's "Your mail to the following recipients could not be delivered …:").
_BARE_LIST = regex(r"following (?:recipients?|addresses|address\(es\))\b[^\n]{0,300}:[ \t]*\n")
_BARE_LOCAL = regex(r"[ \t]+([A-Za-z0-9][A-Za-z0-9._+-]{0,63})[ \t]*")

# The SMTP phase the remote server was answering, as each MTA words it (RFC 5321 §4.1); read
# case-insensitively. Kept as text: only their folded forms below are compiled (start-up).
_COMMAND_PATTERNS: tuple[tuple[str, str], ...] = (
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
# An SMTP transcript line naming the command sent; the last one in a text wins.
_TRANSCRIPT_LINES = (
    r"[> ]*>>>\s*(mail from|rcpt to|data|ehlo|helo)",
    r"\s*(?:sent|in:)\s*(?:<<<\s*)?(mail from|rcpt to|data)",
)
_TRANSCRIPT_PATTERN = "|".join(f"^{line}" for line in _TRANSCRIPT_LINES)
_TRANSCRIPT_FLAGS = re.IGNORECASE | re.MULTILINE
# The patterns above are written in lower case, so in the folded text (gateway.bounce.literals)
# their case-sensitive forms match exactly where they match the text itself, at the same
# positions; and they are far cheaper, as the regex engine can jump to a literal prefix.
# The transcript pattern finds the same matches as _TRANSCRIPT_PATTERN in "\n" + text, also
# faster: the engine jumps from newline to newline instead of trying "^" at every position (a
# match ends with a command word, never with the newline the next match starts with, so none
# is lost), and each \s* is possessive, as giving back white space never helps when a letter or
# "<" must follow.
# Spelled out: _TRANSCRIPT_LINES with each \s* possessive, and the second line's leading white
# space stopping at a newline ([^\S\n]): a match across blank lines then starts at the last of
# them, with the same command word, and a run of blank lines costs linear time instead of
# quadratic (from each newline, \s* would scan the rest of the run).
_FOLDED_TRANSCRIPT = regex(
    r"\n(?:[> ]*>>>\s*+(mail from|rcpt to|data|ehlo|helo)"
    r"|[^\S\n]*+(?:sent|in:)\s*+(?:<<<\s*+)?(mail from|rcpt to|data))"
)
# Literal pre-checks: most texts name none of the phrases, and a substring test is cheaper still
# (results are unchanged, see gateway.bounce.literals; None: no pre-check, the pattern runs).
_COMMAND_CHECKS = tuple(
    (required_literals_of(pattern, re.IGNORECASE), regex(pattern), command)
    for pattern, command in _COMMAND_PATTERNS
)
_TRANSCRIPT_LITERALS = required_literals_of(_TRANSCRIPT_PATTERN, _TRANSCRIPT_FLAGS)
_COMMAND_LITERALS = frozenset(
    lit for literals, _, _ in _COMMAND_CHECKS for lit in literals or ()
) | frozenset(_TRANSCRIPT_LITERALS or ())
# Rare strings that several of those literals contain; looked for, never reported on their own.
_COMMAND_GATES = frozenset({" not like ", "(state ", "_"})


def _search_order(literals: frozenset[str], gates: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """Each literal and gate with its parent: the longest shorter one inside it ("" for none).

    A string cannot occur where its parent does not, and a parent comes before its children.
    """
    strings = sorted(literals | gates, key=lambda string: (len(string), string))
    order = []
    for string in strings:
        inside = [p for p in strings if len(p) < len(string) and p in string]
        order.append((string, max(inside, key=len) if inside else ""))
    return tuple(order)


_COMMAND_SEARCH = _search_order(_COMMAND_LITERALS, _COMMAND_GATES)
_TRANSCRIPT_MAP = {"mail from": "MAIL", "rcpt to": "RCPT", "data": "DATA"}

# A reply code: three digits after the start of a line, white space or one of :;([<>"'= and
# before white space, one of -:;,.)] or the end. It starts with its first digit and checks what
# precedes with a look-behind over that digit, so the regex engine skips to the digits 2, 4 and
# 5 (a leading group would be tried at every position). A match that is passed over ends with
# ".", which can precede no code, so consuming what follows the digits (as a former form did)
# or only looking at it finds the same codes.
_REPLY_CODE = regex(r"([245](?<![^\s:;(\[<>\"'=][245])[0-5]\d)(?=[\s\-:;,.)\]]|\Z)")
_EHLO_LIKE = frozenset({"ehlo", "helo"})


def cut_original(text: str) -> str:
    """Return the notification text before the returned original message.

    The original starts at the first line (not the first) that is a marker such as "Original
    message follows", or at the first of two header lines in a row once the notification has
    named someone (a forwarded bounce starts with its own headers).

    Args:
        text: the decoded bounce text.
    """
    text = text[:MAX_TEXT]
    haystack = folded(text)  # same positions; see _MARKER_LINE
    end = len(text)
    for match in _MARKER_LINE.finditer(haystack):
        if _ORIGINAL_MARKERS.match(_line_at(haystack, match.start() + 1)[:200]):
            end = match.start()
            break
    address = text.find("@", 0, end)
    if address >= 0:
        for match in _HEADER_LINE.finditer(haystack, address, end):
            if _starts_original(text, match.start() + 1):
                return text[: match.start()]
    return text[:end]


def _line_at(text: str, start: int) -> str:
    """The line of ``text`` that starts at ``start``, without its newline."""
    stop = text.find("\n", start)
    return text[start:] if stop < 0 else text[start:stop]


def _starts_original(text: str, start: int) -> bool:
    """Whether the header line at ``start`` and the line after it start an inline original."""
    line = _line_at(text, start)
    after = start + len(line) + 1
    if after > len(text) or not _HEADERISH.match(folded(line[:200])):
        return False  # the last line: nothing follows it
    following = _line_at(text, after)
    return bool(
        (_HEADERISH.match(folded(following[:200])) or following[:1] in " \t")
        and not following.strip().startswith("<")
    )


def strip_quoting(text: str) -> str:
    """Remove one level of ``> `` e-mail quoting when most lines are quoted (forwarded bounces).

    Args:
        text: decoded text.
    """
    quoted = text.count("\n>") + text.startswith(">")  # the lines starting with ">"
    if quoted < 5:
        return text
    lines = text.split("\n")
    if quoted * 2 < len([line for line in lines if line.strip()]):
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
    for full_line in _lines_with(text, "@"):  # an address has an "@"
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
            elif _INLINE_RECIPIENT.search(folded(before[-60:])):
                found.append(addr)
    return found


def bare_recipients(text: str, domain: str) -> list[str]:
    """Return the recipients a report lists by local part only, completed with ``domain``.

    Only the indented lines right under a line that announces the failed recipients count
    ("… the following recipients …:"), up to the first line that is not a bare local part.

    Args:
        text: the notification text, original message already cut.
        domain: the reporting system's domain (the domain of the report's From address).
    """
    found: list[str] = []
    announced = _BARE_LIST.search(folded(text[:8000]))
    if announced is None or not domain:
        return found
    for line in text[announced.end() :].split("\n", 50)[:50]:
        match = _BARE_LOCAL.fullmatch(line)
        if match is None:
            break
        found.append(f"{match.group(1).lower()}@{domain.lower()}")
    return found


def _lines_with(text: str, mark: str) -> Iterator[str]:
    """Yield, in order, the lines of ``text`` that contain ``mark`` (without their newline)."""
    found = text.find(mark)
    while found >= 0:
        start = text.rfind("\n", 0, found) + 1
        end = text.find("\n", found)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end]
        found = text.find(mark, end)


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
    lowered = text.lower().split("\n")  # line by line, the same as lowering each line
    mentions = [{r for r in recipients if r in line} for line in lowered]
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
    folded_text = folded(text)
    # A gate's regex runs only when one of its required literals is present (as Gate.search
    # does, literal by literal).
    present = _command_literals_in(folded_text)
    for literals, folded_pattern, command in _COMMAND_CHECKS:
        if (literals is None or not present.isdisjoint(literals)) and folded_pattern.search(
            folded_text
        ):
            return command
    if _TRANSCRIPT_LITERALS is not None and present.isdisjoint(_TRANSCRIPT_LITERALS):
        return None
    return _last_transcript_command(f"\n{text}", f"\n{folded_text}")


def _command_literals_in(folded_text: str) -> set[str]:
    """The command literals (and gates) that occur in ``folded_text``, each looked for once and
    only when its parent occurs (see _search_order)."""
    present: set[str] = set()
    for string, parent in _COMMAND_SEARCH:
        if (not parent or parent in present) and string in folded_text:
            present.add(string)
    return present


def _last_transcript_command(text: str, folded_text: str) -> str | None:
    """The command of the last SMTP transcript line (``text`` starts with a newline)."""
    last = None
    for match in _FOLDED_TRANSCRIPT.finditer(folded_text):
        group = 1 if match.group(1) else 2
        word = text[match.start(group) : match.end(group)].lower()  # as written, not folded
        last = "CONN" if word in _EHLO_LIKE else _TRANSCRIPT_MAP.get(word)
    return last


def reply_code_in(text: str) -> int | None:
    """Return the first plausible SMTP reply code (RFC 5321 §4.2) in the text, or ``None``.

    Args:
        text: a diagnostic or a recipient's block.
    """
    for match in _REPLY_CODE.finditer(text, 0, 4000):  # the first 4000 characters are read
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
    return bool(_HEADERISH.match(folded(text[:200])))
