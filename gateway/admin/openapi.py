"""The OpenAPI 3.1 description of the admin listener, written by hand.

Owns: one operation per (method, path) of the route table in ``admin.app`` and the JSON
schemas of what they take and return. A test checks that every route of the table is
described here, so a new route without a description fails the suite. Does not own: the
routes themselves.
"""

from __future__ import annotations

from typing import Any

from gateway.core.model import Reason

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return schema


def _page(item: str) -> dict[str, Any]:
    return _obj(
        {"items": {"type": "array", "items": _ref(item)}, "next_cursor": _nullable("string")},
        ("items", "next_cursor"),
    )


_S = {"type": "string"}
_I = {"type": "integer"}
_B = {"type": "boolean"}
_T = {"type": "string", "format": "date-time"}
# The webhook ``type`` values (``gateway.observe.webhooks.ALL_TYPES``; a test keeps them equal).
WEBHOOK_TYPES = [
    "queued", "sent", "deferred", "bounced", "expired", "rejected", "suppressed", "opt_out",
    "unsuppressed", "complaint", "report", "duplicate", "held", "released", "possible_typo",
]  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"code": _S, "message": _S}, ("code", "message"))}, ("error",)),
    "Guidance": _obj(
        {"lang": {"enum": ["pt-BR", "en"]}, "title": _S, "what_to_do": _S, "customer_message": _S},
        ("lang", "title", "what_to_do", "customer_message"),
    ),
    "Event": _obj(
        {
            "id": _nullable("integer"),
            "at": _T,
            "type": _S,
            "tenant": _S,
            "address": _S,
            "category": _nullable("string"),
            "category_label": _nullable("string"),
            "reply": _S,
            "reply_code": _nullable("integer"),
            "enhanced": _nullable("string"),
            "remote_host": _S,
            "queue_id": _nullable("string"),
            "recipient_id": _nullable("integer"),
            "reason": {
                "enum": [r.value for r in Reason],
                "description": (
                    "The event's typed reason as stored; for a rejected event, the check that"
                    " refused (invalid, typo, no_such_domain, null_mx, dns_tempfail,"
                    " suppressed, quota, too_many_recipients, store_unavailable)"
                ),
            },
            "suggestion": {
                "type": ["string", "null"],
                "description": "The address a typo refusal or a possible_typo warning suggested",
            },
        }
    ),
    "PossibleTypo": {
        **_obj(
            {
                "suggestion": _S,
                "at": _T,
                "event_id": _nullable("integer"),
                "queue_id": _nullable("string"),
            },
            ("suggestion", "at"),
        ),
        "description": (
            "The last possible_typo warning: the address was accepted, but its domain looks"
            " like a misspelt popular one (suggestion: the likely address). It never changes"
            " the status."
        ),
    },
    "Suppression": _obj(
        {
            "tenant": _S,
            "address": _S,
            "hashed": _B,
            "reason": {
                "enum": [
                    "repeated_failures",
                    "nonexistent_address",
                    "complaint",
                    "opt_out",
                    "manual",
                ]
            },
            "since": _T,
            "expires": {"type": ["string", "null"], "format": "date-time"},
            "event_id": _nullable("integer"),
            "note": _S,
            "cause": {"oneOf": [_ref("Event"), {"type": "null"}]},
        }
    ),
    "RecipientRow": _obj(
        {
            "recipient_id": _I,
            "queue_id": _S,
            "tenant": _S,
            "address": _S,
            "status": _S,
            "category": _nullable("string"),
            "attempts": _I,
            "due_at": _nullable("string"),
            "updated_at": _T,
            "last_reply": _S,
        }
    ),
    "RecipientReport": _obj(
        {
            "address": _S,
            "tenant": _nullable("string"),
            "status": {
                "enum": [
                    "rejected",
                    "queued",
                    "deferred",
                    "sent",
                    "bounced",
                    "expired",
                    "suppressed",
                    "held",
                ]
            },
            "category": _nullable("string"),
            "category_label": _nullable("string"),
            "reason": {
                "enum": [*(r.value for r in Reason), None],
                "description": (
                    "The suppression's reason (suppressed) or the check that refused"
                    " (rejected), as stored; null for the other statuses"
                ),
            },
            "since": _T,
            "guidance": _ref("Guidance"),
            "recipient": {"oneOf": [_ref("RecipientRow"), {"type": "null"}]},
            "rejection": {"oneOf": [_ref("Event"), {"type": "null"}]},
            "suppression": {"oneOf": [_ref("Suppression"), {"type": "null"}]},
            "suppressions": {"type": "array", "items": _ref("Suppression")},
            "events": {"type": "array", "items": _ref("Event")},
            "possible_typo": {"oneOf": [_ref("PossibleTypo"), {"type": "null"}]},
        },
        ("address", "status", "guidance", "events"),
    ),
    "Message": _obj(
        {
            "queue_id": _S,
            "tenant": _S,
            "mail_from": _S,
            "message_id": _nullable("string"),
            "subject": _S,
            "size": _I,
            "received_at": _T,
            "client_address": _S,
            "held": _B,
            "content_kept": _B,
            "recipients": {
                "type": "array",
                "items": _obj({"address": _S, "status": _S, "category": _nullable("string")}),
            },
        }
    ),
    "MessageDetail": {
        "allOf": [
            _ref("Message"),
            _obj(
                {
                    "recipients": {
                        "type": "array",
                        "items": {
                            "allOf": [
                                _ref("RecipientRow"),
                                _obj(
                                    {
                                        "attempts_detail": {
                                            "type": "array",
                                            "items": _ref("Event"),
                                        },
                                        "events": {"type": "array", "items": _ref("Event")},
                                    }
                                ),
                            ]
                        },
                    },
                    "other_events": {"type": "array", "items": _ref("Event")},
                }
            ),
        ]
    },
    "MessagePage": _page("Message"),
    "SuppressionPage": _page("Suppression"),
    "QueueAction": _obj({"queue_id": _S, "held": _B, "deleted": _B, "recipients": _I}),
    "ManualBlock": _obj(
        {
            "address": _S,
            "tenant": _S,
            "note": _S,
            "expires": {"type": "string", "format": "date-time"},
        },
        ("address",),
    ),
    "Unblock": _obj({"reason": _S, "tenant": _S}, ("reason",)),
    "Unblocked": _obj(
        {
            "address": _S,
            "actor": _S,
            "at": _T,
            "reason": _S,
            "lifted": {
                "type": "array",
                "items": _obj({"tenant": _S, "was": _S, "since": _T, "event_id": _I}),
            },
        }
    ),
    "AddressCheck": _obj(
        {
            "address": _S,
            "tenant": _S
            | {"description": "check as this tenant; default: smtp.default_tenant, as the intake"},
        },
        ("address",),
    ),
    "AddressVerdict": _obj(
        {
            "address": _S,
            "tenant": _S | {"description": "the tenant the checks ran as"},
            "accepted": _B,
            "reason": _nullable("string"),
            "reply": _nullable("string"),
            "reply_code": _nullable("integer"),
            "enhanced": _nullable("string"),
            "suggestion": {
                "type": ["string", "null"],
                "description": (
                    "The likely address: with a refusal (reason typo, or a near miss with no"
                    " MX/A), or with a possible_typo warning on an accepted address"
                ),
            },
            "warning": _nullable("string"),
        }
    ),
    "Erasure": _obj(
        {
            "address_hash": _S,
            "events_deleted": _I,
            "recipients_hashed": _I,
            "recipients_cancelled": _I,
            "suppressions_kept_hashed": _I,
            "contents_deleted": _I,
        }
    ),
    "TenantSettings": _obj(
        {
            "allowed_sender_domains": {"type": "array", "items": _S},
            "hourly_quota": _nullable("integer"),
            "daily_quota": _nullable("integer"),
            "list_unsubscribe": _B,
            "bounce_notice": _B,
            "webhook_url": _S,
            "failure_threshold": _nullable("integer"),
            "failure_window_seconds": _nullable("integer"),
        }
    ),
    "TenantCreate": {
        "allOf": [
            _ref("TenantSettings"),
            _obj(
                {
                    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,62}$"},
                    "username": _S,
                },
                ("name",),
            ),
        ]
    },
    "TenantPatch": {"allOf": [_ref("TenantSettings"), _obj({"rotate_webhook_secret": _B})]},
    "Tenant": {
        "allOf": [
            _ref("TenantSettings"),
            _obj(
                {"name": _S, "webhook_secret_set": _B, "usernames": {"type": "array", "items": _S}}
            ),
        ]
    },
    "TenantList": _obj({"items": {"type": "array", "items": _ref("Tenant")}}),
    "TenantCreated": _obj(
        {
            "tenant": _ref("Tenant"),
            "credentials": _obj({"username": _S, "secret": _S}),
            "webhook_secret": _S,
        }
    ),
    "TenantUpdated": _obj({"tenant": _ref("Tenant"), "webhook_secret": _S}),
    "Credentials": _obj({"tenant": _S, "username": _S, "secret": _S}),
    "CredentialsRequest": _obj({"username": _S}),
    "SendTest": _obj({"to": _S, "tenant": _S}, ("to",)),
    "SendTestQueued": _obj({"queue_id": _S, "to": _S}),
    "Counts": {"type": "object", "additionalProperties": _I},
    "Stats": _obj(
        {
            "since": _T,
            "until": _T,
            "tenants": {
                "type": "object",
                "additionalProperties": _obj(
                    {
                        "events": _ref("Counts"),
                        "categories": _ref("Counts"),
                        "recipients": _ref("Counts"),
                    }
                ),
            },
            "providers": _obj(
                {
                    p: _obj(
                        {
                            "events": _ref("Counts"),
                            "categories": _ref("Counts"),
                            "mx_hosts": _ref("Counts"),
                        }
                    )
                    for p in ("gmail", "outlook", "yahoo", "uol", "terra", "other")
                }
            ),
        }
    ),
    "AuditEntry": _obj(
        {"id": _I, "at": _T, "actor": _S, "action": _S, "target": _S, "detail": {"type": "object"}}
    ),
    "AuditPage": _page("AuditEntry"),
    "WebhookPayload": _obj(
        {
            "version": {"const": 1},
            "id": _S,
            "type": {"enum": WEBHOOK_TYPES},
            "tenant": _S,
            "recipient": _S,
            "queue_id": _nullable("string"),
            "message_id": _nullable("string"),
            "event_id": _nullable("integer"),
            "status": _nullable("string"),
            "category": _nullable("string"),
            "reason": _S,
            "reply_code": _nullable("integer"),
            "enhanced_status": _nullable("string"),
            "diagnostic": _nullable("string"),
            "reply": _S,
            "remote_host": _S,
            "at": _T,
        },
        ("version", "id", "type", "tenant", "recipient", "at"),
    ),
    "WebhookDelivery": _obj(
        {
            "id": _S,
            "tenant": _S,
            "type": _S,
            "state": {"enum": ["pending", "delivered", "failed"]},
            "attempts": _I,
            "created_at": _T,
            "next_attempt_at": _nullable("string"),
            "delivered_at": _nullable("string"),
            "last_error": _nullable("string"),
            "payload": {"oneOf": [_ref("WebhookPayload"), {"type": "null"}]},
        }
    ),
    "WebhookDeliveryPage": _page("WebhookDelivery"),
    "Health": _obj({"status": {"const": "ok"}}),
    "Readiness": _obj(
        {
            "ready": _B,
            "checks": {"type": "object", "additionalProperties": _B},
            "failing": {"type": "array", "items": _S},
        }
    ),
}


def _param(
    name: str, where: str = "query", *, required: bool = False, **schema: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema or _S,
    }


def _errors(*codes: int) -> dict[str, Any]:
    names = {
        400: "Bad JSON",
        401: "No or unknown token",
        403: "Read-only token on a write route",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        422: "Validation failed",
        503: "Not ready",
    }
    return {
        str(c): {"description": names[c], "content": {_JSON: {"schema": _ref("Error")}}}
        for c in codes
    }


def _op(
    summary: str,
    ok: str | None,
    *,
    status: int = 200,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    errors: tuple[int, ...] = (),
    secured: bool = True,
    media: str = _JSON,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {"description": "OK"}
        | ({"content": {media: {"schema": _ref(ok)} if ok else {}}} if media else {})
    }
    codes = set(errors) | ({401, 403} if secured else set())
    if body:
        codes |= {400, 413, 422}
    responses |= _errors(*sorted(codes))
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {_JSON: {"schema": _ref(body)}}}
    if not secured:
        op["security"] = []
    return op


_ADDRESS = _param("address", "path")
_QUEUE_ID = _param("queue_id", "path")
_NAME = _param("name", "path")
_TENANT = _param("tenant")
_PAGE = [_param("limit", type="integer", minimum=1, maximum=200), _param("cursor")]
_HTML = "text/html"
_LANG = _param("lang", enum=["pt-BR", "en"])


def _to_login(op: dict[str, Any]) -> dict[str, Any]:
    """A page that sends a caller who is not logged in to the login form."""
    op["responses"]["303"] = {"description": "Not logged in: to /login?next=…"}
    return op


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/recipients/{address}": {
        "get": _op(
            "An address's current status, suppression, last events and guidance",
            "RecipientReport",
            params=[_ADDRESS, _TENANT, _param("lang", enum=["pt-BR", "en"])],
            errors=(404,),
        )
    },
    "/api/v1/messages": {
        "get": _op(
            "Messages, newest first (cursor-paginated)",
            "MessagePage",
            params=[
                _param("recipient"),
                _param("status"),
                _param("category"),
                _TENANT,
                _param("since", format="date-time"),
                _param("until", format="date-time"),
                *_PAGE,
            ],
            errors=(422,),
        )
    },
    "/api/v1/messages/{queue_id}": {
        "get": _op(
            "A message: envelope, subject, recipients with attempts",
            "MessageDetail",
            params=[_QUEUE_ID],
            errors=(404,),
        ),
        "delete": _op(
            "Delete a queued message: pending recipients end as expired, history kept",
            "QueueAction",
            params=[_QUEUE_ID],
            errors=(404, 409),
        ),
    },
    "/api/v1/messages/{queue_id}/hold": {
        "post": _op(
            "Hold a queued message (the relay skips it)",
            "QueueAction",
            params=[_QUEUE_ID],
            errors=(404, 409),
        )
    },
    "/api/v1/messages/{queue_id}/release": {
        "post": _op("Release a held message", "QueueAction", params=[_QUEUE_ID], errors=(404,))
    },
    "/api/v1/suppressions": {
        "get": _op(
            "The suppression list (filters, cursor-paginated)",
            "SuppressionPage",
            params=[_TENANT, _param("reason"), *_PAGE],
            errors=(422,),
        ),
        "post": _op(
            "Block an address by hand (reason manual)",
            "Suppression",
            status=201,
            body="ManualBlock",
            errors=(404,),
        ),
    },
    "/api/v1/suppressions/{address}": {
        "delete": {
            **_op(
                "Unblock an address: reason required; recorded as an unsuppressed event",
                "Unblocked",
                params=[_ADDRESS, _TENANT, _param("reason")],
                errors=(404, 422),
            ),
            "requestBody": {"required": False, "content": {_JSON: {"schema": _ref("Unblock")}}},
        }
    },
    "/api/v1/addresses/check": {
        "post": _op(
            "Run the intake checks and the typo suggestion, as a tenant (default: the"
            " intake's smtp.default_tenant)",
            "AddressVerdict",
            body="AddressCheck",
            errors=(404,),
        )
    },
    "/api/v1/addresses/{address}/data": {
        "delete": _op(
            "Erase what the gateway holds on an address (LGPD)",
            "Erasure",
            params=[_ADDRESS],
            errors=(422,),
        )
    },
    "/api/v1/tenants": {
        "get": _op("Tenants and their settings", "TenantList"),
        "post": _op(
            "Create a tenant; its SMTP secret is shown once",
            "TenantCreated",
            status=201,
            body="TenantCreate",
            errors=(409,),
        ),
    },
    "/api/v1/tenants/{name}": {
        "get": _op("One tenant", "Tenant", params=[_NAME], errors=(404,)),
        "patch": _op(
            "Update quotas, sender domains, list-unsubscribe, bounce notices, webhook",
            "TenantUpdated",
            params=[_NAME],
            body="TenantPatch",
            errors=(404,),
        ),
    },
    "/api/v1/tenants/{name}/credentials": {
        "post": _op(
            "Rotate the SMTP credentials; the secret is shown once",
            "Credentials",
            params=[_NAME],
            body="CredentialsRequest",
            errors=(404, 409),
        )
    },
    "/api/v1/send-test": {
        "post": _op(
            "Queue a small test message for the default tenant",
            "SendTestQueued",
            status=202,
            body="SendTest",
            errors=(404,),
        )
    },
    "/api/v1/stats": {
        "get": _op(
            "Counts by status and category, per tenant and per destination provider",
            "Stats",
            params=[_param("since", format="date-time")],
            errors=(422,),
        )
    },
    "/api/v1/audit": {"get": _op("The audit trail of admin actions", "AuditPage", params=_PAGE)},
    "/api/v1/webhooks/deliveries": {
        "get": _op(
            "Webhook delivery history, newest first: state, attempts, next try, last error,"
            " payload (cursor-paginated)",
            "WebhookDeliveryPage",
            params=[_TENANT, _param("state", enum=["pending", "delivered", "failed"]), *_PAGE],
            errors=(422,),
        )
    },
    "/api/openapi.json": {"get": _op("This document", None, secured=False)},
    "/healthz": {"get": _op("The process is up", "Health", secured=False)},
    "/readyz": {
        "get": _op(
            "Store reachable, intake listening, relay running",
            "Readiness",
            secured=False,
            errors=(503,),
        )
    },
    "/metrics": {
        "get": _op("Prometheus metrics", None, secured=False, errors=(404,), media="text/plain")
    },
    "/": {
        "get": _to_login(
            _op(
                "Support page: the address search", None, params=[_LANG], secured=False, media=_HTML
            )
        )
    },
    "/login": {
        "get": _op(
            "The login form (303 to the page, or to next, when already logged in)",
            None,
            params=[_LANG, _param("next")],
            secured=False,
            media=_HTML,
        ),
        "post": _op(
            "Log in with a token (sets an HttpOnly session cookie)",
            None,
            status=303,
            secured=False,
            media="",
        ),
    },
    "/logout": {
        "post": _op("Log out (CSRF token required)", None, status=303, secured=False, media="")
    },
    "/support": {
        "get": _to_login(
            _op(
                "Support page for an address",
                None,
                params=[_param("address"), _TENANT, _LANG],
                secured=False,
                media=_HTML,
            )
        )
    },
    "/support/unblock": {
        "post": _op("Unblock form (CSRF token, reason)", None, status=303, secured=False, media="")
    },
    "/support/suppressions": {
        "get": _to_login(
            _op(
                "Suppression list page",
                None,
                params=[_TENANT, _param("reason")],
                secured=False,
                media=_HTML,
            )
        )
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at ``/api/openapi.json``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mail gateway admin API",
            "version": "1",
            "description": (
                "Private admin listener. Bearer tokens from admin.tokens (full) and "
                "admin.read_only_tokens (GET only). Errors are "
                '{"error": {"code": ..., "message": ...}}.'
            ),
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
