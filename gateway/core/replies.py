"""Every SMTP reply the gateway sends, as named constants with RFC 3463 enhanced codes.

Owns: the ``Reply`` type and the reply catalogue. Tests compare against these constants,
never against inline strings. Does not own: when a reply is sent (``core.intake``,
``smtp_in``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply: basic code (RFC 5321 §4.2), enhanced code (RFC 3463), a sentence.

    Args:
        code: the three-digit reply code.
        enhanced: the enhanced status code, e.g. ``"5.1.1"``; empty when the peer gave none.
        text: one human sentence; never contains CR or LF.
    """

    code: int
    enhanced: str
    text: str

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            msg = f"reply code out of range: {self.code}"
            raise ValueError(msg)
        if "\r" in self.text or "\n" in self.text:
            msg = "reply text must be one line"
            raise ValueError(msg)

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return self.code >= 500

    @property
    def is_success(self) -> bool:
        return self.code < 400

    def with_text(self, text: str) -> Reply:
        """The same codes with another sentence (CR/LF folded to spaces)."""
        return Reply(self.code, self.enhanced, _one_line(text))

    def __str__(self) -> str:
        if self.enhanced:
            return f"{self.code} {self.enhanced} {self.text}"
        return f"{self.code} {self.text}"

    @classmethod
    def parse(cls, code: int, message: str) -> Reply:
        """Build a reply from a peer's code and text, splitting off an enhanced code."""
        text = _one_line(message)
        first, _, rest = text.partition(" ")
        if _ENHANCED.match(first):
            return cls(code, first, rest.strip())
        return cls(code, "", text)


def _one_line(text: str) -> str:
    return " ".join(text.replace("\x00", " ").split())


# --- connection and session -------------------------------------------------------------
SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, please try again later")
TOO_MANY_AUTH_FAILURES = Reply(421, "4.7.0", "Too many authentication failures, closing connection")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required: this server is not an open relay")
AUTH_NEEDS_TLS = Reply(538, "5.7.11", "Encryption required: issue STARTTLS before AUTH")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long (RFC 5321 §4.5.3.1.6)")
BAD_CHARACTERS = Reply(501, "5.5.2", "Syntax error: CR, LF or NUL is not allowed in arguments")
TOO_MANY_SESSIONS = Reply(421, "4.7.0", "Too many connections, please try again later")
# Per-client limits (smtp_in.limits); each closes the connection.
TOO_MANY_SESSIONS_FROM_CLIENT = Reply(
    421, "4.7.0", "Too many connections from your address, please try again later"
)
TOO_MANY_SESSIONS_FROM_NETWORK = Reply(
    421, "4.7.0", "Too many connections from your network, please try again later"
)
TOO_MANY_CONNECTIONS_PER_MINUTE = Reply(
    421, "4.7.0", "Too many new connections from your address, please slow down"
)
SESSION_TOO_LONG = Reply(421, "4.7.0", "Session time limit reached, closing connection")
DATA_TOO_SLOW = Reply(421, "4.7.0", "Message data arrives too slowly, closing connection")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many refused commands, closing connection")
IDLE_TIMEOUT = Reply(421, "4.4.2", "Idle too long, closing connection")
# Protocol discipline (RFC 5321 §4.3.1, RFC 2920 §3.1): each closes the connection.
EARLY_TALKER = Reply(554, "5.5.0", "Protocol error: data sent before the greeting")
PIPELINING_BEFORE_EHLO = Reply(
    554, "5.5.0", "Protocol error: commands sent before the EHLO reply (no PIPELINING yet)"
)
NOT_SMTP = Reply(554, "5.5.0", "Protocol error: this is an SMTP server, not an HTTP one")
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "AUTH is not allowed during a mail transaction")
TLS_HANDSHAKE_FAILED = Reply(454, "4.7.0", "TLS handshake failed")  # logged; the session ends

# --- MAIL FROM ---------------------------------------------------------------------------
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
SENDER_SYNTAX = Reply(553, "5.1.7", "The sender address is not a valid e-mail address")
SENDER_DOMAIN_NOT_ALLOWED = Reply(
    553, "5.7.1", "This tenant may not send from that domain; add it to its allowed sender domains"
)
SIZE_SYNTAX = Reply(501, "5.5.4", "SIZE takes the message size as a number of octets")
ADDRESS_NEEDS_SMTPUTF8 = Reply(
    553, "5.6.7", "A non-ASCII address needs the SMTPUTF8 parameter on MAIL FROM (RFC 6531)"
)

# --- RCPT TO -----------------------------------------------------------------------------
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
RECIPIENT_SYNTAX = Reply(553, "5.1.3", "The recipient address is not a valid e-mail address")
LOCAL_PART_TOO_LONG = Reply(
    553, "5.1.3", "The recipient's local part is longer than 64 octets (RFC 5321 §4.5.3.1.1)"
)
RECIPIENT_TYPO = Reply(553, "5.1.3", "The recipient domain looks misspelt")  # text names the fix
NO_SUCH_DOMAIN = Reply(550, "5.1.2", "The recipient's domain does not exist or cannot receive mail")
NULL_MX = Reply(556, "5.1.10", "The recipient's domain declares that it accepts no mail (null MX)")
DNS_TEMPFAIL = Reply(451, "4.4.3", "Could not look up the recipient's domain right now; try later")
SUPPRESSED = Reply(550, "5.7.1", "The recipient is on the suppression list")  # text names why
# The tenant is paused (issue 15: a bounce or complaint storm, or an administrator): new
# mail waits; RFC 3463 4.7.1, delivery not authorised for now.
TENANT_PAUSED = Reply(
    451, "4.7.1", "The account is paused for review; contact the gateway operator to resume it"
)
QUOTA_EXHAUSTED = Reply(452, "4.5.3", "The sending quota is exhausted")  # text names which
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients for one message")
BOUNCE_TOKEN_INVALID = Reply(550, "5.1.1", "No such bounce address (invalid or expired token)")
BOUNCE_ACCEPTED = Reply(250, "2.1.5", "Bounce address OK")
NO_POSTMASTER = Reply(
    550, "5.1.1", "No postmaster address is configured here (smtp.postmaster_address)"
)
POSTMASTER_ALONE = Reply(452, "4.5.3", "Send mail to postmaster in a message of its own")
BOUNCE_REPEATED = Reply(452, "4.5.3", "This bounce address was already given in this transaction")

# --- DATA --------------------------------------------------------------------------------
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds the fixed maximum message size")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")
FROM_SYNTAX = Reply(550, "5.7.1", "The From: header is missing or not a valid address")
FROM_DOMAIN_NOT_ALLOWED = Reply(
    550, "5.7.1", "The From: header domain is not among this tenant's allowed sender domains"
)
STORE_FAILED = Reply(451, "4.3.0", "Could not queue the message right now; please try again")
STORE_FULL = Reply(452, "4.3.1", "Insufficient system storage; please try again later")
QUEUED = Reply(250, "2.0.0", "queued as")  # text completed with the queue id
BOUNCE_RECORDED = Reply(250, "2.0.0", "Report received")
TOO_MANY_HOPS = Reply(554, "5.4.6", "Too many Received: header lines: a mail loop?")
NUL_IN_DATA = Reply(554, "5.6.0", "The message contains a NUL character, which SMTP forbids")

# --- relay side ---------------------------------------------------------------------------
MAIL_LOOP = Reply(554, "5.4.6", "Mail loop: the destination MX points back at this gateway")
EXPIRED = Reply(554, "4.4.7", "Message expired: not delivered within the maximum queue lifetime")
CONNECT_FAILED = Reply(451, "4.4.1", "Could not connect to any destination host")
GREETING_REFUSED = Reply(451, "4.4.0", "The destination refused service at the greeting; try later")
