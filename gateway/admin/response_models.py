"""The admin API's response bodies, as msgspec Structs.

Owns: the shape of every JSON body the admin listener answers with, errors included; the
OpenAPI document's response schemas are generated from these types (``admin.openapi``), and
``tests/admin/test_admin_schema_live.py`` checks live answers against them. Does not own:
filling them from the domain (``admin.views`` and the handlers) or the request bodies
(``admin.request_models``).

Times are ISO 8601 strings made by ``datetime.isoformat()`` (``+00:00``, as the API always
answered), typed ``Time`` so the schema says ``date-time``. A field typed ``... | UnsetType``
is left out of the body when it is ``UNSET`` (a secret shown only when one was made).
msgspec was chosen over pydantic by measurement (``bench/admin_models.py``): a Struct costs
nothing to build and encodes in about half the time of ``json.dumps`` of the same dict.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from gateway.admin.provider_hold_model import ProviderHold
from gateway.core.model import Category, EventType, Reason, Status, SuppressionReason
from gateway.core.shaping import SiteState
from gateway.core.streams import ComplaintScope, Scope, Stream
from gateway.observe.webhooks import ALL_TYPES

__all__ = ["UNSET", "ProviderHold", "UnsetType"]

Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
Lang = Literal["pt-BR", "en"]
Counts = dict[str, int]
#: The webhook ``type`` values (``gateway.observe.webhooks.ALL_TYPES``).
WEBHOOK_TYPES = sorted(ALL_TYPES)
WebhookType = Annotated[str, Meta(extra_json_schema={"enum": WEBHOOK_TYPES})]
DeliveryState = Literal["pending", "delivered", "failed"]


class Model(msgspec.Struct, kw_only=True):
    """Base of every response body: keyword construction only."""


# --- errors -------------------------------------------------------------------------------


class ErrorDetail(Model):
    code: str
    message: str


class Error(Model):
    """Every error: a stable machine code and one human sentence."""

    error: ErrorDetail


# --- recipients ---------------------------------------------------------------------------


class Event(Model):
    """One event of a recipient or a message, with its typed reason as stored."""

    id: int | None
    at: Time
    type: EventType
    tenant: str
    address: str
    category: Category | None
    category_label: str | None
    reply: str
    reply_code: int | None
    enhanced: str | None
    remote_host: str
    queue_id: str | None
    recipient_id: int | None
    reason: Annotated[
        Reason,
        Meta(
            description=(
                "The event's typed reason as stored; for a rejected event, the check that"
                " refused (invalid, typo, no_such_domain, null_mx, dns_tempfail, suppressed,"
                " quota, too_many_recipients, store_unavailable)"
            )
        ),
    ]
    suggestion: Annotated[
        str | None,
        Meta(description="The address a typo refusal or a possible_typo warning suggested"),
    ]


class PossibleTypo(Model):
    """The last possible_typo warning: the address was accepted, but its domain looks like a
    misspelt popular one (suggestion: the likely address). It never changes the status."""

    suggestion: str | None
    at: Time
    event_id: int | None
    queue_id: str | None


class Suppression(Model):
    tenant: str
    address: str
    hashed: bool
    reason: SuppressionReason
    since: Time
    expires: Time | None
    event_id: int | None
    note: str
    cause: Event | None
    scope: Annotated[
        Scope,
        Meta(
            description=(
                "The streams it stops: all, or only marketing / transactional (an opt-out"
                " stops the stream it came from; issue 15)"
            )
        ),
    ] = Scope.ALL


class Probation(Model):
    """The probation an unblock started (issue 15): the first blocking failure before
    ``probation_until`` blocks the address again (reason ``probation_failure``)."""

    tenant: str
    since: Time
    probation_until: Time
    unblock_event_id: int | None
    success_at: Annotated[
        Time | None, Meta(description="The last delivery since the unblock, if any")
    ] = None


class GuidanceCheck(Model):
    """One thing to verify in the application (an address with no record)."""

    key: str
    title: str
    detail: str


class Guidance(Model, omit_defaults=True):
    lang: Lang
    title: str
    what_to_do: str
    customer_message: str
    checks: Annotated[
        list[GuidanceCheck],
        Meta(description="What to check in the application; only for status no_record"),
    ] = []


class DayActivity(Model):
    day: Annotated[str, Meta(extra_json_schema={"format": "date"})]
    accepted: Annotated[int, Meta(description="Messages accepted from the application")]
    refused: Annotated[int, Meta(description="Recipients refused at RCPT")]


class TenantActivity(Model):
    """What the application handed to the gateway lately (UTC days, today first)."""

    tenant: Annotated[str | None, Meta(description="null: every tenant together")]
    last_accepted_at: Time | None
    today: int
    per_day: list[DayActivity]


class RecipientRow(Model):
    recipient_id: int
    queue_id: str
    tenant: str
    address: str
    status: Status
    category: Category | None
    attempts: int
    due_at: Time | None
    updated_at: Time
    last_reply: str
    # Why it is held (issue 15): suppressed (kept for a blocked address) or held_by_admin.
    reason: Annotated[
        Reason | None,
        Meta(description="With status held: suppressed (a blocked address) or held_by_admin"),
    ] = None
    held_until: Annotated[
        Time | None,
        Meta(description="A held recipient of a blocked address is sent if unblocked before"),
    ] = None


#: A recipient's status, or ``no_record`` (the gateway never received a message for it).
RecipientStatus = Annotated[
    str, Meta(extra_json_schema={"enum": [*(m.value for m in Status), "no_record"]})
]


class RecipientReport(Model):
    """An address's current status, in plain words, with what decided it."""

    address: str
    tenant: str | None
    status: RecipientStatus
    category: Category | None
    category_label: str | None
    reason: Annotated[
        Reason | None,
        Meta(
            description=(
                "The suppression's reason (suppressed) or the check that refused (rejected),"
                " as stored; null for the other statuses"
            )
        ),
    ]
    since: Annotated[Time | None, Meta(description="null for status no_record")]
    guidance: Guidance
    recipient: RecipientRow | None
    rejection: Event | None
    suppression: Suppression | None
    suppressions: list[Suppression]
    events: list[Event]
    possible_typo: PossibleTypo | None
    probation: Annotated[
        Probation | None, Meta(description="The running probation of an unblocked address")
    ] = None
    probation_until: Annotated[
        Time | None, Meta(description="When the running probation ends (null: none)")
    ] = None
    tenant_activity: Annotated[
        TenantActivity | None,
        Meta(description="The tenant's sending activity; given with status no_record"),
    ] = None
    address_check: Annotated[
        AddressVerdict | None,
        Meta(description="The intake's check of the address; given with status no_record"),
    ] = None
    provider_hold: Annotated[
        ProviderHold | None, Meta(description="With status provider_hold (issue 12)")
    ] = None


# --- messages -----------------------------------------------------------------------------


class Envelope(Model):
    queue_id: str
    tenant: str
    mail_from: str
    message_id: str | None
    subject: str
    size: int
    received_at: Time
    client_address: str
    held: bool
    content_kept: bool
    stream: Annotated[
        Stream, Meta(description="transactional or marketing (X-Gateway-Stream; issue 15)")
    ]


class MessageRecipient(Model):
    address: str
    status: Status
    category: Category | None


class Message(Envelope):
    recipients: list[MessageRecipient]


class MessagePage(Model):
    items: list[Message]
    next_cursor: str | None


class RecipientDetail(RecipientRow, kw_only=True):
    attempts_detail: list[Event]
    events: list[Event]


class MessageDetail(Envelope):
    """A message with each recipient's attempts and events."""

    recipients: list[RecipientDetail]
    other_events: list[Event]


class Held(Model):
    queue_id: str
    held: bool
    recipients: int


class Deleted(Model):
    queue_id: str
    deleted: bool
    recipients: int


# --- suppressions -------------------------------------------------------------------------


class SuppressionPage(Model):
    items: list[Suppression]
    next_cursor: str | None


class Lifted(Model):
    tenant: str
    was: SuppressionReason
    since: Time
    event_id: int
    scope: Scope = Scope.ALL
    probation_until: Annotated[
        Time | None, Meta(description="The end of the probation this unblock started")
    ] = None


class Unblocked(Model):
    address: str
    actor: str
    at: Time
    reason: str
    lifted: list[Lifted]
    probation_until: Annotated[
        Time | None,
        Meta(
            description=(
                "The end of the probation the unblock started: a blocking failure before"
                " it blocks the address again at once (reason probation_failure)"
            )
        ),
    ] = None


# --- addresses ----------------------------------------------------------------------------


class AddressVerdict(Model):
    address: str
    tenant: Annotated[str, Meta(description="The tenant the checks ran as")]
    accepted: bool
    reason: Reason | None
    reply: str | None
    reply_code: int | None
    enhanced: str | None
    suggestion: Annotated[
        str | None,
        Meta(
            description=(
                "The likely address: with a refusal (reason typo, or a near miss with no MX/A),"
                " or with a possible_typo warning on an accepted address"
            )
        ),
    ]
    warning: str | None


class Erasure(Model):
    address_hash: str
    events_deleted: int
    recipients_hashed: int
    recipients_cancelled: int
    suppressions_kept_hashed: int
    contents_deleted: int


# --- tenants ------------------------------------------------------------------------------


class Tenant(Model):
    name: str
    allowed_sender_domains: list[str]
    hourly_quota: int | None
    daily_quota: int | None
    list_unsubscribe: bool
    bounce_notice: bool
    webhook_url: str
    webhook_secret_set: bool
    failure_threshold: int | None
    failure_window_seconds: float | None
    usernames: list[str]
    # Streams and probation (issue 15); null: the default ([policy] probation,
    # "transactional", "stream").
    probation: Annotated[
        str | None, Meta(description="How long an unblock's probation lasts, e.g. 30d")
    ] = None
    default_stream: Stream | None = None
    complaint_scope: ComplaintScope | None = None
    login_streams: Annotated[
        dict[str, str], Meta(description="SMTP username -> its default stream, where set")
    ] = {}
    # Hold instead of refuse and the pause (issue 15 items 2 and 4), defaults applied.
    suppressed_action: Annotated[
        Literal["refuse", "hold"],
        Meta(description="Mail to a suppressed address: refused (550) or held (250)"),
    ] = "refuse"
    hold_window: Annotated[
        str, Meta(description="How long a held recipient waits for an unblock, e.g. 7d")
    ] = "7d"
    paused: Annotated[
        bool, Meta(description="New mail gets 451 4.7.1 while paused; resume with paused=false")
    ] = False
    paused_at: Time | None = None
    pause_cause: Annotated[
        Literal["bounce_rate", "complaint_rate", "manual"] | None,
        Meta(description="Why it is paused (null when not paused)"),
    ] = None
    pause_note: str = ""
    pause_bounce_rate: float = 0.05
    pause_complaint_rate: float = 0.001
    pause_min_messages: int = 500
    pause_window: str = "24h"
    pause_delivery: Annotated[
        bool, Meta(description="A pause holds the queued mail's delivery too")
    ] = True


class TenantList(Model):
    items: list[Tenant]


class SmtpCredentials(Model):
    username: str
    secret: str


class TenantCreated(Model):
    """A new tenant; its SMTP secret (and webhook secret) are shown here only."""

    tenant: Tenant
    credentials: SmtpCredentials
    webhook_secret: str | UnsetType = UNSET


class TenantUpdated(Model):
    tenant: Tenant
    webhook_secret: str | UnsetType = UNSET


class Credentials(Model):
    """New SMTP credentials; the secret is shown here only."""

    tenant: str
    username: str
    secret: str
    default_stream: Annotated[
        Stream | None, Meta(description="The login's default stream; null: the tenant's")
    ] = None


# --- send-test, stats, audit --------------------------------------------------------------


class SendTestQueued(Model):
    queue_id: str
    to: str


class TenantCounts(Model):
    events: Counts
    categories: Counts
    recipients: Counts


class ProviderCounts(Model):
    events: Counts
    categories: Counts
    mx_hosts: Counts


class Providers(Model):
    """Counts grouped by the MX host that answered (``core.routing.provider_of``)."""

    gmail: ProviderCounts
    outlook: ProviderCounts
    yahoo: ProviderCounts
    uol: ProviderCounts
    terra: ProviderCounts
    other: ProviderCounts


class Stats(Model):
    since: Time
    until: Time
    tenants: dict[str, TenantCounts]
    providers: Providers


class Destination(Model):
    """A destination site as the relay holds it (``core.shaping.SiteView``)."""

    site: str
    provider: str
    state: SiteState
    since: Time | None
    until: Time | None
    queued: int
    active: int
    connections: int
    throttled: bool
    last_error: str


class Destinations(Model):
    destinations: list[Destination]


class AuditEntry(Model):
    id: int | None
    at: Time
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(Model):
    items: list[AuditEntry]
    next_cursor: str | None


# --- webhooks -----------------------------------------------------------------------------


class WebhookPayload(Model):
    """The JSON object POSTed to a tenant's webhook (``gateway.observe.webhooks.payload``)."""

    version: Literal[1]
    id: str
    type: WebhookType
    tenant: str
    recipient: str
    queue_id: str | None
    message_id: str | None
    event_id: int | None
    status: Status | None
    category: Category | None
    reason: str
    reply_code: int | None
    enhanced_status: str | None
    diagnostic: str | None
    reply: str
    remote_host: str
    at: Time
    scope: Annotated[
        Scope | None,
        Meta(description="A suppression's scope (suppressed, opt_out, unsuppressed; issue 15)"),
    ] = None
    stream: Annotated[
        Stream | None,
        Meta(description="The message's stream, where the event names it (issue 15)"),
    ] = None
    provider: Annotated[str | None, Meta(description="provider_challenge: uol, bol, terra")] = None
    challenge_url: Annotated[str | None, Meta(description="provider_challenge: its link")] = None


class WebhookDelivery(Model):
    id: str
    tenant: str
    type: str
    state: DeliveryState
    attempts: int
    created_at: Time
    next_attempt_at: Time | None
    delivered_at: Time | None
    last_error: str | None
    payload: WebhookPayload | None


class WebhookDeliveryPage(Model):
    items: list[WebhookDelivery]
    next_cursor: str | None


# --- probes -------------------------------------------------------------------------------


class Health(Model):
    status: Literal["ok"]


class Readiness(Model):
    ready: bool
    checks: dict[str, bool]
    failing: list[str]
