"""Recognising automatic replies: out-of-office, vacation and other RFC 3834 responses.

Owns: deciding whether a message is an automatic reply rather than a bounce, from the RFC 3834
§5 ``Auto-Submitted`` field, the de-facto ``X-Autoreply``/``X-Autorespond``/``Precedence``
fields, and the subjects and sentences auto-responders use (English, Portuguese, Spanish,
French, German, Japanese). Does not own: bounces (``dsn``, ``freetext``) or complaints (``arf``).

An auto-reply is never a failure: its category is ``auto_reply`` and its recipient is the
person who is away (the reply's author).
"""

from __future__ import annotations

from gateway.bounce.cache import regex
from gateway.bounce.literals import folded
from gateway.bounce.mime import Part

_SUBJECT = regex(
    r"^\s*[\[(]?\s*(?:auto(?:matic)?[ _-]?(?:reply|response|antwort|respuesta)|autoreply|auto:"
    r"|out of (?:the )?office|vacation|on vacation|abwesen|absence|away from"
    r"|resposta autom[aá]tica|respuesta autom[aá]tica|r[ée]ponse automatique"
    r"|risposta automatica|fora do escrit[oó]rio|ausente|f[ée]rias|fuera de la oficina"
    r"|automatyczna odpowied|自動応答|自動返信|不在)",
)
_BODY = regex(
    r"i am away|i'm away|i am out of (?:the )?office|i'm out of (?:the )?office"
    r"|i will be (?:out|away|traveling|travelling|on vacation)|i am on vacation"
    r"|i'm on vacation|i am currently out|i'm currently out|out of the office until"
    r"|on annual leave|on leave until|limited access to (?:my )?e-?mail"
    r"|i will be back|i'll be back|back in the office|away from (?:my desk|the office) until"
    r"|currently out of (?:the )?office|out of office until|i will return on"
    # Auto-acknowledgements ("Thank you for your e-mail. I will endeavour to reply as soon as
    # possible."): consulted only for a message that does not read as a bounce.
    r"|(?:endeavou?r|try) to (?:reply|respond|get back to you) as soon as"
    r"|fora do escrit[oó]rio|ausente at[eé]|de volta (?:em|no dia)"
    r"|estou (?:fora|ausente|de f[eé]rias)|estarei (?:fora|ausente)|em f[eé]rias"
    r"|estoy fuera|je suis absent|ich bin (?:nicht im b[uü]ro|abwesend)",
)
_BOUNCE_FROM = regex(r"mailer-daemon|postmaster|mail delivery|maildelivery|mdaemon")
# The three patterns are lower case and search folded text (gateway.bounce.literals.folded),
# which finds what re.IGNORECASE finds in the text; they compile several times faster so.


def signals(root: Part) -> tuple[bool, bool]:
    """Return (strong, weak) evidence that ``root`` is an automatic reply.

    Strong evidence is an auto-reply subject or a vendor auto-reply field; weak evidence is
    ``Auto-Submitted: auto-replied`` alone, which bounces carry too (RFC 3834 §5, RFC 3464 §4).

    Args:
        root: the parsed message.
    """
    if _BOUNCE_FROM.search(folded(root.get("from"))):
        return False, False
    subject = root.get("subject")
    strong = bool(_SUBJECT.search(folded(subject)))
    strong = strong or root.get("x-autoreply").strip().lower() in {"yes", "true", "1"}
    strong = strong or bool(root.get("x-autorespond")) or bool(root.get("x-autoreply-from"))
    strong = strong or root.get("precedence").strip().lower() == "auto_reply"
    auto = root.get("auto-submitted").strip().lower()
    weak = auto.startswith("auto-replied")
    return strong, weak


def body_says_away(text: str) -> bool:
    """Return True when a body reads like an out-of-office message.

    Args:
        text: the decoded body.
    """
    return bool(_BODY.search(folded(text[:4000])))


def author(root: Part) -> str | None:
    """Return the lower-cased address of the person whose responder answered.

    Args:
        root: the parsed message.
    """
    for name in ("from", "reply-to", "sender"):
        value = root.get(name)
        if "@" in value:
            return _address(value)
    return None


def _address(value: str) -> str | None:
    if "<" in value and ">" in value:
        value = value[value.rindex("<") + 1 : value.rindex(">")]
    for raw in value.replace(",", " ").split():
        token = raw.strip("<>\"'();")
        if "@" in token:
            return token.lower()
    return None
