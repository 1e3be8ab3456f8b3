"""What the admin API takes: query parameters and JSON bodies, as msgspec Structs.

Owns: the type, bounds and pattern of every input, and the sentence a 422 says when one is
wrong (``sentences``: field -> sentence; ``admin.params`` turns a msgspec error into it).
The OpenAPI document's parameters and request bodies are generated from these types. The
support page's queries and forms are described here too, for the document only: the page
reads them itself and never answers a bad value with an error. Does not own: what a value
means once it is well-formed (a canonical address, a time in the future: the handlers and
``admin.params``).

Query models are filled from strings (``msgspec.convert(..., strict=False)``: ``"50"`` is an
int); an empty parameter counts as absent. Body models are decoded strictly from the JSON
(``msgspec.json.decode(..., type=...)``). A field typed ``... | UnsetType`` tells "absent"
from ``null``: a tenant update changes only the keys it names.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from gateway.core.model import Category, Status, SuppressionReason

MAX_LIMIT = 200
MAX_REASON = 500
TENANT_NAME = r"^[a-z0-9][a-z0-9._-]{0,62}$"
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
#: An http(s) URL with a host name or IPv4 address, or "" for none: every string it matches
#: passes ``admin.tenants``' own check, so the document refuses what the API refuses (an IPv6
#: literal is left out: no pattern short enough tells the ones ``urlsplit`` takes).
WEBHOOK_URL = r"^\s*(?:https?://[A-Za-z0-9._~-]+(?::[0-9]{1,5})?(?:[/?#][^\s\x00]*)?)?\s*$"
#: A domain name (a trailing dot allowed; case is folded): ``admin.tenants._DOMAIN``'s.
SENDER_DOMAIN = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}\.?$"

Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[
    str,
    Meta(pattern="^[A-Za-z0-9_-]+$", description="next_cursor of the previous page, unchanged"),
]
# What ``params.parse_time`` reads, and nothing it refuses: the schema says which strings
# are times, so a request the document allows is never refused (issue 14 item 7). Dates
# that do not exist (30 February) are outside it; [0-9], not \d (Unicode digits).
_DATE = (
    "(?:19|20)[0-9][0-9]-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_CLOCK = (
    "T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,6})?)?"
    "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
)
TIME_PATTERN = f"^(?:[0-9]{{1,10}}(?:[.][0-9]{{1,6}})?|{_DATE}(?:{_CLOCK})?)$"
TimeParam = Annotated[
    str,
    Meta(
        pattern=TIME_PATTERN,
        description="An ISO 8601 time (a naive one is UTC) or a UNIX timestamp",
    ),
]
#: No string the API takes may hold a NUL (``errors.NoNul``, ``params.body_of``): the
#: document adds this pattern to every string without one, and each pattern here excludes it.
NO_NUL = r"^[^\x00]*$"
#: Something besides white space, and no NUL.
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
NonBlank = Annotated[str, Meta(pattern=NOT_BLANK)]
LangParam = Annotated[str, Meta(description="pt-BR (the default) or en; any en-* tag is en")]
Tenant = Annotated[str, Meta(max_length=200)]
SenderDomain = Annotated[str, Meta(max_length=253, pattern=SENDER_DOMAIN)]
#: A count or a number of seconds the store keeps in a 32-bit column (PostgreSQL's INTEGER;
#: a larger one failed the write with a 500).
Positive = Annotated[int, Meta(ge=1, le=2**31 - 1)]

_LIMIT = f"limit must be an integer from 1 to {MAX_LIMIT}"
_TENANT = "tenant must be a string of at most 200 characters"
_TIME = "{} must be an ISO 8601 time or a UNIX timestamp"


def _one_of(name: str, values: type[Status] | type[Category] | type[SuppressionReason]) -> str:
    return f"{name} must be one of: {', '.join(v.value for v in values)}"


class Query(msgspec.Struct, kw_only=True):
    """Base of the query models: parameters it does not name are ignored."""

    sentences: ClassVar[dict[str, str]] = {}


class Body(msgspec.Struct, kw_only=True):
    """Base of the JSON bodies."""

    sentences: ClassVar[dict[str, str]] = {}


# --- queries ------------------------------------------------------------------------------


class RecipientQuery(Query):
    tenant: str | None = None
    lang: LangParam | None = None


class MessagesQuery(Query):
    recipient: str | None = None
    message_id: (
        Annotated[
            str,
            Meta(
                max_length=998,
                description="The Message-ID header's value; angle brackets are added when missing",
            ),
        ]
        | None
    ) = None
    status: Status | None = None
    category: Category | None = None
    tenant: str | None = None
    since: TimeParam | None = None
    until: TimeParam | None = None
    limit: Limit = 50
    cursor: Cursor | None = None

    sentences: ClassVar[dict[str, str]] = {
        "limit": _LIMIT,
        "since": _TIME.format("since"),
        "until": _TIME.format("until"),
        "status": _one_of("status", Status),
        "category": _one_of("category", Category),
    }


class SuppressionsQuery(Query):
    tenant: str | None = None
    reason: SuppressionReason | None = None
    limit: Limit = 50
    cursor: Cursor | None = None

    sentences: ClassVar[dict[str, str]] = {
        "limit": _LIMIT,
        "reason": _one_of("reason", SuppressionReason),
    }


class UnblockQuery(Query):
    tenant: str | None = None
    scope: (
        Annotated[ScopeName, Meta(description="Lift only this scope's suppression; default all")]
        | None
    ) = None
    reason: Annotated[str, Meta(description="Why (a ticket number); or in the body")] | None = None

    sentences: ClassVar[dict[str, str]] = {
        "scope": 'scope must be "all", "marketing" or "transactional"',
    }


class StatsQuery(Query):
    since: TimeParam | None = None

    sentences: ClassVar[dict[str, str]] = {"since": _TIME.format("since")}


class AuditQuery(Query):
    limit: Limit = 50
    cursor: Cursor | None = None

    sentences: ClassVar[dict[str, str]] = {"limit": _LIMIT}


class DeliveriesQuery(Query):
    tenant: str | None = None
    state: Literal["pending", "delivered", "failed"] | None = None
    limit: Limit = 50
    cursor: Cursor | None = None

    sentences: ClassVar[dict[str, str]] = {
        "limit": _LIMIT,
        "state": "state must be one of: pending, delivered, failed",
    }


# --- JSON bodies --------------------------------------------------------------------------


class ManualBlock(Body):
    """Block an address by hand (reason ``manual``)."""

    address: NonBlank
    tenant: Tenant | None = None
    note: Annotated[str, Meta(max_length=MAX_REASON)] | None = None
    expires: (
        Annotated[str, Meta(max_length=64, extra_json_schema={"format": "date-time"})] | None
    ) = None
    scope: Annotated[
        ScopeName,
        Meta(description="The streams the block stops (issue 15): all, marketing, transactional"),
    ] = "all"

    sentences: ClassVar[dict[str, str]] = {
        "address": "address is required (a string)",
        "tenant": _TENANT,
        "note": f"note must be a string of at most {MAX_REASON} characters",
        "expires": "expires must be an ISO 8601 time or a UNIX timestamp",
        "scope": 'scope must be "all", "marketing" or "transactional"',
    }


class Unblock(Body):
    """Why the address is unblocked (required here or as ``?reason=``), and in which tenant."""

    reason: Annotated[str, Meta(max_length=MAX_REASON)] | None = None
    tenant: Tenant | None = None

    sentences: ClassVar[dict[str, str]] = {
        "reason": f"reason must be a string of at most {MAX_REASON} characters",
        "tenant": _TENANT,
    }


class AddressCheck(Body):
    address: str
    tenant: (
        Annotated[
            str,
            Meta(
                max_length=200,
                description="Check as this tenant; default: smtp.default_tenant, as the intake",
            ),
        ]
        | None
    ) = None

    sentences: ClassVar[dict[str, str]] = {
        "address": "address is required (a string)",
        "tenant": _TENANT,
    }


class SendTest(Body):
    to: NonBlank
    tenant: Tenant | None = None

    sentences: ClassVar[dict[str, str]] = {
        "to": "to is required (a string)",
        "tenant": _TENANT,
    }


#: A positive duration as the config file writes them ("30d", "7d", "24h", "90m", "45s",
#: "2w"): a digit other than 0 somewhere, at most 6 digits before the point and 3 after, so
#: that every value the pattern admits is above zero and within ``timedelta``'s range.
PolicyDuration = Annotated[
    str,
    Meta(
        max_length=32,
        pattern=r"^\s*(?=[^1-9]*[1-9])\d{1,6}(\.\d{1,3})?\s*(ms|s|m|h|d|w)\s*$",
    ),
]

_SETTINGS_SENTENCES = {
    # Hold instead of refuse and the tenant pause (issue 15 items 2 and 4).
    "suppressed_action": 'suppressed_action must be "refuse", "hold" or null',
    "hold_window": 'hold_window must be a duration such as "7d", "24h" or "90m", or null',
    "pause_bounce_rate": "pause_bounce_rate must be a fraction from 0 to 1 (0.05 is 5 %) or null",
    "pause_complaint_rate": "pause_complaint_rate must be a fraction from 0 to 1 or null",
    "pause_min_messages": "pause_min_messages must be a positive integer or null",
    "pause_window": 'pause_window must be a duration such as "24h", or null',
    "pause_delivery": "pause_delivery must be true, false or null",
    "paused": "paused must be true or false",
    "note": f"note must be a string of at most {MAX_REASON} characters",
    "allowed_sender_domains": "allowed_sender_domains must be a list of domain names",
    "hourly_quota": "hourly_quota must be a positive integer or null",
    "daily_quota": "daily_quota must be a positive integer or null",
    "failure_threshold": "failure_threshold must be a positive integer or null",
    "failure_window_seconds": "failure_window_seconds must be a positive integer or null",
    "list_unsubscribe": "list_unsubscribe must be true or false",
    "bounce_notice": "bounce_notice must be true or false",
    "webhook_url": "webhook_url must be an http:// or https:// URL",
    "rotate_webhook_secret": "rotate_webhook_secret must be true or false",
    # Streams and probation (issue 15 items 1 and 3).
    "probation": 'probation must be a duration such as "30d", "12h" or "90m", or null',
    "default_stream": 'default_stream must be "transactional", "marketing" or null',
    "complaint_scope": 'complaint_scope must be "stream", "all" or null',
}

StreamName = Literal["transactional", "marketing"]
ScopeName = Literal["all", "marketing", "transactional"]


class TenantSettings(Body, forbid_unknown_fields=True):
    """A tenant's settings; only the keys present are set."""

    allowed_sender_domains: list[SenderDomain] | UnsetType = UNSET
    hourly_quota: Positive | UnsetType | None = UNSET
    daily_quota: Positive | UnsetType | None = UNSET
    list_unsubscribe: bool | UnsetType = UNSET
    bounce_notice: bool | UnsetType = UNSET
    webhook_url: Annotated[str, Meta(max_length=2000, pattern=WEBHOOK_URL)] | UnsetType = UNSET
    failure_threshold: Positive | UnsetType | None = UNSET
    failure_window_seconds: Positive | UnsetType | None = UNSET
    probation: (
        Annotated[
            PolicyDuration,
            Meta(description="How long an unblock's probation lasts; null: [policy] probation"),
        ]
        | UnsetType
        | None
    ) = UNSET
    default_stream: (
        Annotated[
            StreamName,
            Meta(description="A message's stream without X-Gateway-Stream or a login default"),
        ]
        | UnsetType
        | None
    ) = UNSET
    complaint_scope: (
        Annotated[
            Literal["stream", "all"],
            Meta(description="What a complaint suppresses: its message's stream, or all"),
        ]
        | UnsetType
        | None
    ) = UNSET
    # Hold instead of refuse and the pause thresholds (issue 15 items 2 and 4); null
    # restores the [policy] default.
    suppressed_action: (
        Annotated[
            Literal["refuse", "hold"],
            Meta(description="Mail to a suppressed address: refused (550) or held (250)"),
        ]
        | UnsetType
        | None
    ) = UNSET
    hold_window: (
        Annotated[
            PolicyDuration,
            Meta(description="How long a held recipient waits for an unblock, e.g. 7d"),
        ]
        | UnsetType
        | None
    ) = UNSET
    pause_bounce_rate: (
        Annotated[float, Meta(ge=0, le=1, description="Pause over this bounce rate (0.05)")]
        | UnsetType
        | None
    ) = UNSET
    pause_complaint_rate: (
        Annotated[float, Meta(ge=0, le=1, description="Pause over this complaint rate (0.001)")]
        | UnsetType
        | None
    ) = UNSET
    pause_min_messages: (
        Annotated[Positive, Meta(description="Fewer messages in the window never pause")]
        | UnsetType
        | None
    ) = UNSET
    pause_window: (
        Annotated[PolicyDuration, Meta(description="The rates' sliding window, e.g. 24h")]
        | UnsetType
        | None
    ) = UNSET
    pause_delivery: (
        Annotated[bool, Meta(description="A pause holds the queued mail's delivery too")]
        | UnsetType
        | None
    ) = UNSET

    sentences: ClassVar[dict[str, str]] = _SETTINGS_SENTENCES


class TenantCreate(TenantSettings, forbid_unknown_fields=True, kw_only=True):
    """A new tenant: its name, its SMTP username (default: the name) and its settings."""

    name: Annotated[str, Meta(pattern=TENANT_NAME)]
    username: Annotated[str, Meta(pattern=USERNAME)] | UnsetType = UNSET
    rotate_webhook_secret: bool | UnsetType = UNSET  # accepted, as ever; nothing to rotate

    sentences: ClassVar[dict[str, str]] = _SETTINGS_SENTENCES | {
        "name": "name must be 1-63 characters of a-z, 0-9, '.', '_', '-'",
        "username": "username must be 1-128 characters of letters, digits and ._@+-",
    }


class TenantPatch(TenantSettings, forbid_unknown_fields=True):
    """New settings for a tenant; ``rotate_webhook_secret`` makes a new webhook secret."""

    rotate_webhook_secret: bool = False
    paused: (
        Annotated[bool, Meta(description="Pause (true) or resume (false) the tenant; audited")]
        | UnsetType
    ) = UNSET
    note: (
        Annotated[
            str,
            Meta(
                max_length=MAX_REASON,
                description="Why: kept with the pause or resume when paused is given, else"
                " with the change in the audit log",
            ),
        ]
        | UnsetType
    ) = UNSET

    sentences: ClassVar[dict[str, str]] = _SETTINGS_SENTENCES | {
        # Not fields of the update: refused with the reason.
        "name": "name and username cannot be changed; create a tenant or rotate credentials",
        "username": "name and username cannot be changed; create a tenant or rotate credentials",
    }


class CredentialsRequest(Body):
    """The SMTP username to (re)issue a secret for; default: the tenant's name."""

    username: Annotated[str, Meta(pattern=USERNAME)] | UnsetType = UNSET
    default_stream: (
        Annotated[
            StreamName,
            Meta(description="The login's default stream (issue 15); null: the tenant's"),
        ]
        | UnsetType
        | None
    ) = UNSET

    sentences: ClassVar[dict[str, str]] = {
        "username": "username must be 1-128 characters of letters, digits and ._@+-",
        "default_stream": 'default_stream must be "transactional", "marketing" or null',
    }


# --- the support page (described, not validated: the page reads its own input) ------------


class PageQuery(Query):
    lang: LangParam | None = None


class LoginQuery(Query):
    lang: LangParam | None = None
    next: Annotated[str, Meta(description="A path on this site to go back to")] | None = None


class SupportQuery(Query):
    address: str | None = None
    tenant: str | None = None
    lang: LangParam | None = None


class SuppressionListQuery(Query):
    tenant: str | None = None
    reason: SuppressionReason | None = None
    cursor: Cursor | None = None
    lang: LangParam | None = None


class LoginForm(Body):
    token: str
    lang: str | None = None
    next: str | None = None


#: A page's CSRF token: checked when the caller has a session; a bearer token needs none.
Csrf = Annotated[str, Meta(description="Required with a session cookie; not read without one")]


class LogoutForm(Body):
    csrf: Csrf = ""


class UnblockForm(Body):
    address: Annotated[str, Meta(max_length=320, pattern=NOT_BLANK)]
    reason: Annotated[
        str, Meta(pattern=NOT_BLANK, description=f"Kept to its first {MAX_REASON} characters")
    ]
    csrf: Csrf = ""
    tenant: str | None = None
    lang: str | None = None


class OneClick(Body):
    """RFC 8058 §3.1: form-urlencoded or multipart/form-data."""

    list_unsubscribe: Literal["One-Click"] = msgspec.field(name="List-Unsubscribe")
