"""Issue 17 item 4: what request and response models cost on the admin API's hot routes.

    .venv/bin/python bench/admin_models.py            # 3 runs, best of each
    .venv/bin/python bench/admin_models.py --runs 5

Compares, per request, the CPU of today's hand-built dicts + ``json.dumps`` (what Starlette's
``JSONResponse`` does) with pydantic v2 and msgspec models of the same JSON:

* ``GET /api/v1/recipients/{address}``: a report with 20 events, 2 suppressions with their
  causes, the recipient row and the guidance (about 8 KB of JSON): build + serialise.
* ``GET /api/v1/suppressions?limit=200``: a page of 200 suppressions: build + serialise.
* the list routes' query (``limit``, ``cursor``, ``reason``, ``tenant``): validate strings.
* ``POST /api/v1/suppressions``: a JSON body (bytes) decoded and validated.

pydantic is measured two ways: validated construction (``Model(...)``) and
``model_construct`` (no validation: what a response built from trusted domain objects needs),
both serialised with ``model_dump_json``. msgspec Structs never validate on construction;
``msgspec.json.encode`` serialises. Only the library's cost is measured: no HTTP, no store.

pydantic is not a dependency of the gateway: ``.venv/bin/pip install pydantic`` first.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
import pydantic

from gateway.core.model import Category, Event, EventType, Reason, Suppression, SuppressionReason

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- realistic domain objects -------------------------------------------------------------


def _events(n: int) -> list[Event]:
    kinds = [EventType.QUEUED, EventType.DEFERRED, EventType.BOUNCED, EventType.SUPPRESSED]
    return [
        Event(
            1000 + i,
            "acme",
            "maria.silva@example.com.br",
            kinds[i % 4],
            T0 + timedelta(minutes=i),
            queue_id=f"Q{i:05d}ABCDEF",
            category=Category.NONEXISTENT_ADDRESS if i % 4 == 2 else None,
            reply_code=550 if i % 4 == 2 else None,
            enhanced="5.1.1" if i % 4 == 2 else None,
            text="User unknown in virtual mailbox table" if i % 4 == 2 else "",
            remote_host="mx.example.com.br",
            reason=Reason.PERMANENT_FAILURE if i % 4 == 2 else Reason.QUEUED,
            details={"suggestion": "maria.silva@gmail.com"} if i == 0 else {},
            event_id=5000 + i,
        )
        for i in range(n)
    ]


def _suppressions(n: int) -> list[Suppression]:
    return [
        Suppression(
            "acme" if i % 3 else "default",
            f"user{i:04d}@example.com.br",
            list(SuppressionReason)[i % len(SuppressionReason)],
            T0 - timedelta(days=i),
            None if i % 2 else T0 + timedelta(days=30),
            5000 + i,
            "ticket #1234" if i % 5 == 0 else "",
        )
        for i in range(n)
    ]


# --- today: dicts + json.dumps ------------------------------------------------------------


def dict_event(e: Event) -> dict[str, Any]:
    return {
        "id": e.event_id,
        "at": _iso(e.at),
        "type": e.type.value,
        "tenant": e.tenant,
        "address": e.address,
        "category": e.category.value if e.category else None,
        "category_label": "Endereço inexistente" if e.category else None,
        "reply": e.text,
        "reply_code": e.reply_code,
        "enhanced": e.enhanced,
        "remote_host": e.remote_host,
        "queue_id": e.queue_id,
        "recipient_id": e.recipient_id,
        "reason": str(e.reason),
        "suggestion": e.details.get("suggestion"),
    }


def dict_suppression(s: Suppression, cause: Event | None = None) -> dict[str, Any]:
    return {
        "tenant": s.tenant,
        "address": s.address,
        "hashed": s.address.startswith("sha256:"),
        "reason": s.reason.value,
        "since": _iso(s.since),
        "expires": _iso(s.expires_at),
        "event_id": s.event_id,
        "note": s.note,
        "cause": None if cause is None else dict_event(cause),
    }


def _head() -> dict[str, Any]:
    return {
        "address": "maria.silva@example.com.br",
        "tenant": None,
        "status": "suppressed",
        "category": "nonexistent_address",
        "category_label": "Endereço inexistente",
        "reason": "nonexistent_address",
        "since": _iso(T0),
        "guidance": {
            "lang": "pt-BR",
            "title": "Endereço inexistente",
            "what_to_do": "Peça ao cliente um endereço válido e corrija o cadastro." * 2,
            "customer_message": "Olá! Não conseguimos entregar o e-mail ..." * 4,
        },
        "recipient": {
            "recipient_id": 1,
            "queue_id": "Q00001ABCDEF",
            "tenant": "acme",
            "address": "maria.silva@example.com.br",
            "status": "bounced",
            "category": "nonexistent_address",
            "attempts": 1,
            "due_at": None,
            "updated_at": _iso(T0),
            "last_reply": "550 5.1.1 User unknown",
        },
        "rejection": None,
        "possible_typo": None,
    }


def dict_report(events: list[Event], supps: list[Suppression]) -> dict[str, Any]:
    return _head() | {
        "suppression": dict_suppression(supps[0], events[2]),
        "suppressions": [dict_suppression(s, events[2]) for s in supps],
        "events": [dict_event(e) for e in events],
    }


def dumps(value: Any) -> bytes:  # starlette.responses.JSONResponse.render
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


# --- msgspec ------------------------------------------------------------------------------


class MEvent(msgspec.Struct):
    id: int | None
    at: str
    type: str
    tenant: str
    address: str
    category: str | None
    category_label: str | None
    reply: str
    reply_code: int | None
    enhanced: str | None
    remote_host: str
    queue_id: str | None
    recipient_id: int | None
    reason: str
    suggestion: str | None


class MSuppression(msgspec.Struct):
    tenant: str
    address: str
    hashed: bool
    reason: str
    since: str
    expires: str | None
    event_id: int | None
    note: str
    cause: MEvent | None


class MGuidance(msgspec.Struct):
    lang: str
    title: str
    what_to_do: str
    customer_message: str


class MRecipientRow(msgspec.Struct):
    recipient_id: int
    queue_id: str
    tenant: str
    address: str
    status: str
    category: str | None
    attempts: int
    due_at: str | None
    updated_at: str
    last_reply: str


class MReport(msgspec.Struct):
    address: str
    tenant: str | None
    status: str
    category: str | None
    category_label: str | None
    reason: str | None
    since: str
    guidance: MGuidance
    recipient: MRecipientRow | None
    rejection: MEvent | None
    suppression: MSuppression | None
    suppressions: list[MSuppression]
    events: list[MEvent]
    possible_typo: dict[str, Any] | None


class MPage(msgspec.Struct):
    items: list[MSuppression]
    next_cursor: str | None


class MQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50
    cursor: str | None = None
    reason: (
        Literal["repeated_failures", "nonexistent_address", "complaint", "opt_out", "manual"] | None
    ) = None
    tenant: str | None = None


class MManualBlock(msgspec.Struct, forbid_unknown_fields=True):
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    tenant: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    expires: Annotated[str, msgspec.Meta(max_length=64)] | None = None


def m_event(e: Event) -> MEvent:
    return MEvent(**dict_event(e))


def m_suppression(s: Suppression, cause: Event | None = None) -> MSuppression:
    d = dict_suppression(s)
    d["cause"] = None if cause is None else m_event(cause)
    return MSuppression(**d)


def m_report(events: list[Event], supps: list[Suppression]) -> MReport:
    d = _head()
    d["guidance"] = MGuidance(**d["guidance"])
    d["recipient"] = MRecipientRow(**d["recipient"])
    d["suppression"] = m_suppression(supps[0], events[2])
    d["suppressions"] = [m_suppression(s, events[2]) for s in supps]
    d["events"] = [m_event(e) for e in events]
    return MReport(**d)


# --- pydantic -----------------------------------------------------------------------------


class PEvent(pydantic.BaseModel):
    id: int | None
    at: str
    type: str
    tenant: str
    address: str
    category: str | None
    category_label: str | None
    reply: str
    reply_code: int | None
    enhanced: str | None
    remote_host: str
    queue_id: str | None
    recipient_id: int | None
    reason: str
    suggestion: str | None


class PSuppression(pydantic.BaseModel):
    tenant: str
    address: str
    hashed: bool
    reason: str
    since: str
    expires: str | None
    event_id: int | None
    note: str
    cause: PEvent | None


class PGuidance(pydantic.BaseModel):
    lang: str
    title: str
    what_to_do: str
    customer_message: str


class PRecipientRow(pydantic.BaseModel):
    recipient_id: int
    queue_id: str
    tenant: str
    address: str
    status: str
    category: str | None
    attempts: int
    due_at: str | None
    updated_at: str
    last_reply: str


class PReport(pydantic.BaseModel):
    address: str
    tenant: str | None
    status: str
    category: str | None
    category_label: str | None
    reason: str | None
    since: str
    guidance: PGuidance
    recipient: PRecipientRow | None
    rejection: PEvent | None
    suppression: PSuppression | None
    suppressions: list[PSuppression]
    events: list[PEvent]
    possible_typo: dict[str, Any] | None


class PPage(pydantic.BaseModel):
    items: list[PSuppression]
    next_cursor: str | None


class PQuery(pydantic.BaseModel, extra="forbid"):
    limit: Annotated[int, pydantic.Field(ge=1, le=200)] = 50
    cursor: str | None = None
    reason: (
        Literal["repeated_failures", "nonexistent_address", "complaint", "opt_out", "manual"] | None
    ) = None
    tenant: str | None = None


class PManualBlock(pydantic.BaseModel, extra="forbid"):
    address: Annotated[str, pydantic.Field(min_length=1, max_length=320)]
    tenant: Annotated[str, pydantic.Field(max_length=200)] | None = None
    note: Annotated[str, pydantic.Field(max_length=500)] | None = None
    expires: Annotated[str, pydantic.Field(max_length=64)] | None = None


def p_event(e: Event, construct: bool) -> PEvent:
    d = dict_event(e)
    return PEvent.model_construct(**d) if construct else PEvent(**d)


def p_suppression(s: Suppression, cause: Event | None, construct: bool) -> PSuppression:
    d = dict_suppression(s)
    d["cause"] = None if cause is None else p_event(cause, construct)
    return PSuppression.model_construct(**d) if construct else PSuppression(**d)


def p_report(events: list[Event], supps: list[Suppression], construct: bool) -> PReport:
    d = _head()
    make = "model_construct" if construct else "__call__"
    d["guidance"] = getattr(PGuidance, make)(**d["guidance"])
    d["recipient"] = getattr(PRecipientRow, make)(**d["recipient"])
    d["suppression"] = p_suppression(supps[0], events[2], construct)
    d["suppressions"] = [p_suppression(s, events[2], construct) for s in supps]
    d["events"] = [p_event(e, construct) for e in events]
    return PReport.model_construct(**d) if construct else PReport(**d)


# --- the measurement ----------------------------------------------------------------------


def best_us(fn: Callable[[], object], runs: int, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=runs)) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    events, supps, page = _events(20), _suppressions(2), _suppressions(200)
    query = {"limit": "200", "cursor": "YWNtZSB1c2VyMDAwMUBleGFtcGxlLmNvbS5icg", "reason": "manual",
             "tenant": "acme"}  # fmt: skip
    body = json.dumps(
        {
            "address": "maria.silva@example.com.br",
            "tenant": "acme",
            "note": "ticket #1234",
            "expires": "2026-04-01T00:00:00Z",
        }
    ).encode()

    # The three produce the same JSON (pydantic's separators differ: compare parsed).
    assert json.loads(dumps(dict_report(events, supps))) == json.loads(
        msgspec.json.encode(m_report(events, supps))
    ) == json.loads(p_report(events, supps, False).model_dump_json())  # fmt: skip

    page_cursor = "YWJj"
    cases: dict[str, dict[str, Callable[[], object]]] = {
        "recipient report (20 events)": {
            "dict + json.dumps (today)": lambda: dumps(dict_report(events, supps)),
            "msgspec Struct + encode": lambda: msgspec.json.encode(m_report(events, supps)),
            "pydantic validated + dump_json": lambda: p_report(
                events, supps, False
            ).model_dump_json(),
            "pydantic construct + dump_json": lambda: p_report(
                events, supps, True
            ).model_dump_json(),
        },
        "suppression page (200 rows)": {
            "dict + json.dumps (today)": lambda: dumps(
                {"items": [dict_suppression(s) for s in page], "next_cursor": page_cursor}
            ),
            "msgspec Struct + encode": lambda: msgspec.json.encode(
                MPage([m_suppression(s) for s in page], page_cursor)
            ),
            "pydantic validated + dump_json": lambda: PPage(
                items=[p_suppression(s, None, False) for s in page], next_cursor=page_cursor
            ).model_dump_json(),
            "pydantic construct + dump_json": lambda: PPage.model_construct(
                items=[p_suppression(s, None, True) for s in page], next_cursor=page_cursor
            ).model_dump_json(),
        },
        "list query (4 params, strings)": {
            "msgspec convert(strict=False)": lambda: msgspec.convert(query, MQuery, strict=False),
            "pydantic model_validate": lambda: PQuery.model_validate(query),
        },
        "manual block body (bytes)": {
            "json.loads only (today, before checks)": lambda: json.loads(body),
            "msgspec json.decode(type=)": lambda: msgspec.json.decode(body, type=MManualBlock),
            "pydantic model_validate_json": lambda: PManualBlock.model_validate_json(body),
        },
    }
    print(f"python {sys.version.split()[0]}, pydantic {pydantic.VERSION}, "
          f"msgspec {msgspec.__version__}; best of {args.runs} runs, µs per request")  # fmt: skip
    for case, variants in cases.items():
        print(f"\n{case}")
        base = None
        for name, fn in variants.items():
            number = max(1, int(0.2 / max(timeit.timeit(fn, number=5) / 5, 1e-7)))
            us = best_us(fn, args.runs, number)
            base = base or us
            print(f"  {name:<40} {us:9.1f} µs  ×{us / base:4.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
