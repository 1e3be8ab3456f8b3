"""Suppression import and export as CSV (issue 16 item 7).

Owns: ``GET /api/v1/suppressions/export`` (a CSV streamed a page at a time) and ``POST
/api/v1/suppressions/import`` (a CSV read as it arrives, written in batches; a dry run
counts without writing), the columns and reason names they read (``suppression_formats.toml``:
this gateway's own, Amazon SES's and Postmark's exports) and the report of bad rows. Does
not own: the queries (``store.suppression_transfer``) or who may see which tenant
(``admin.scope``: a tenant token exports and imports its own tenant only).

Memory stays bounded by the batch and page sizes, never by the file: the request body is
read chunk by chunk, cut into complete CSV records (a record ends at a line break outside
quotes), parsed with the ``csv`` module and sent to the store ``BATCH`` rows at a time; the
export fetches ``PAGE`` rows at a time and yields each page's CSV text. An import is
idempotent: a row the store already holds with the same reason and expiry is counted
``unchanged`` and not written.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import tomllib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.admin import params, scope
from gateway.admin.api import audit_entry
from gateway.admin.deps import deps_of
from gateway.admin.errors import ApiError
from gateway.admin.operations import described, respond
from gateway.admin.request_models import Body, Query, TimeParam
from gateway.admin.response_models import Model
from gateway.core.model import Suppression, SuppressionReason
from gateway.core.streams import Scope
from gateway.core.transfer import ImportCounts, SuppressionExport

BATCH = 500  # rows per import transaction (under SQLite's bound-parameter limit)
PAGE = 1000  # rows per export query
MAX_ERRORS = 100  # bad rows reported with their line; the rest are only counted
MAX_RECORD = 64 * 1024  # characters of one CSV record (an unclosed quote stops here)
HEADER = ("tenant", "address", "reason", "scope", "since", "expires_at", "note")
#: The one cell of a record the csv module could not read, followed by its error.
_BROKEN = "\x00csv:"
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^sha256:[0-9a-f]{64}$")


def _name(text: str) -> str:
    """A header as ``suppression_formats.toml`` lists it: lower case, letters and digits."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _reason_name(text: str) -> str:
    return "".join(ch for ch in text.strip().lower() if ch.isalnum() or ch == "_")


@dataclass(frozen=True, slots=True)
class Formats:
    """``suppression_formats.toml``, loaded once."""

    columns: dict[str, tuple[str, ...]]
    reasons: dict[str, SuppressionReason]
    origin_reasons: dict[str, SuppressionReason]
    default_reason: SuppressionReason
    default_note: str

    @classmethod
    def load(cls, path: Path | None = None) -> Formats:
        raw = tomllib.loads(
            (path or Path(__file__).with_name("suppression_formats.toml")).read_text("utf-8")
        )
        return cls(
            columns={k: tuple(_name(v) for v in vs) for k, vs in raw["columns"].items()},
            reasons={r.value: r for r in SuppressionReason}
            | {_reason_name(k): SuppressionReason(v) for k, v in raw["reasons"].items()},
            origin_reasons={
                k.lower(): SuppressionReason(v) for k, v in raw["origin_reasons"].items()
            },
            default_reason=SuppressionReason(raw["defaults"]["reason"]),
            default_note=str(raw["defaults"]["note"]),
        )


FORMATS = Formats.load()


# --- models -------------------------------------------------------------------------------


class ExportQuery(Query):
    tenant: str | None = None
    reason: SuppressionReason | None = None
    scope: Scope | None = None
    since: TimeParam | None = None
    until: TimeParam | None = None

    sentences: ClassVar[dict[str, str]] = {
        "reason": "reason must be one of: " + ", ".join(r.value for r in SuppressionReason),
        "scope": "scope must be one of: all, marketing, transactional",
        "since": "since must be an ISO 8601 time",
        "until": "until must be an ISO 8601 time",
    }


class ImportQuery(Query):
    tenant: str | None = None
    dry_run: bool = False

    sentences: ClassVar[dict[str, str]] = {"dry_run": "dry_run must be true or false"}


class CsvUpload(Body):
    """A CSV file with a header row (text/csv, UTF-8). Columns (any order, case and
    punctuation ignored): address (or SES/Postmark's EmailAddress, Email), reason (or
    SuppressionReason), tenant, since (or LastUpdateTime, CreatedAt), expires_at, scope,
    note, Origin. Reasons: this gateway's, SES's BOUNCE/COMPLAINT, Postmark's HardBounce/
    SpamComplaint/ManualSuppression (README: Suppression import and export)."""


class BadRow(Model):
    line: Annotated[int, Meta(description="1-based line of the file where the row starts")]
    message: str


class ImportReport(Model):
    """What an import changed, or would change with ``dry_run``."""

    dry_run: bool
    rows: int
    added: int
    updated: int
    unchanged: int
    invalid: int
    errors: list[BadRow]
    errors_truncated: bool


# --- export -------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


async def _export_pages(request: Request, where: SuppressionExport) -> AsyncIterator[bytes]:
    store = deps_of(request).store
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    after: tuple[str, str, str] | None = None
    while True:
        page = await store.export_suppressions(where, PAGE, after)
        for s in page:
            writer.writerow(
                (
                    s.tenant,
                    s.address,
                    s.reason.value,
                    s.scope.value,
                    _iso(s.since),
                    _iso(s.expires_at),
                    s.note,
                )
            )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        if len(page) < PAGE:
            return
        after = (page[-1].tenant, page[-1].address, page[-1].scope.value)


@scope.tenant_aware
@described(
    "Export the suppression list as CSV (header row; filters tenant, reason, scope, since,"
    " until); streamed",
    query=ExportQuery,
    media="text/csv",
    errors=(404, 422),
)
async def export_suppressions(request: Request) -> Response:
    """Columns: tenant, address, reason, scope, since, expires_at, note (an erased address
    is its ``sha256:`` hash). ``since``/``until`` select by the time of the block."""
    q = params.query_of(request, ExportQuery)
    where = SuppressionExport(
        tenant=scope.tenant_filter(request, q.tenant),
        reason=q.reason,
        scope=q.scope,
        since=params.parse_time("since", q.since),
        until=params.parse_time("until", q.until),
    )
    return StreamingResponse(
        _export_pages(request, where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


# --- import -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Report:
    rows: int = 0
    invalid: int = 0
    counts: ImportCounts = field(default_factory=ImportCounts)
    errors: list[BadRow] = field(default_factory=list)

    def bad(self, line: int, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(BadRow(line=line, message=message[:300]))


async def records(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, list[str]]]:
    """The CSV records of a body read chunk by chunk, each with the line it starts on.

    A record ends at a line break outside quotes: a line is added to the pending record
    until the record holds an even number of ``"`` (RFC 4180 §2: a quote inside a quoted
    field is doubled). A leading byte-order mark is dropped; bytes that are not UTF-8
    become U+FFFD (the row is then refused for its address, not the file).

    Raises:
        ApiError: 422 for a record longer than ``MAX_RECORD`` (an unclosed quote).
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending = ""  # text after the last line break
    record: list[str] = []  # lines of an unfinished record
    quotes = 0
    size = 0
    line = 0
    start = 1

    def complete(text: str) -> Iterable[tuple[int, list[str]]]:
        nonlocal record, quotes, size, start
        record.append(text)
        quotes += text.count('"')
        size += len(text)
        if size > MAX_RECORD:
            raise ApiError(
                422, "invalid_request", f"line {start}: a record over {MAX_RECORD} characters"
            )
        if quotes % 2:
            return ()
        joined = "".join(record)
        record, quotes, size = [], 0, 0
        first, start = start, line + 1
        try:
            return [(first, row) for row in csv.reader([joined])]
        except csv.Error as exc:  # e.g. a lone carriage return inside an unquoted field
            return [(first, [_BROKEN + str(exc)])]

    async for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for text in lines:
            line += 1
            for found in complete(text + "\n"):
                yield found
        if len(pending) > MAX_RECORD:
            raise ApiError(422, "invalid_request", f"line {line + 1}: a line over {MAX_RECORD}")
    pending += decoder.decode(b"", final=True)
    if pending or record:
        line += 1
        for found in complete(pending):
            yield found
        if record:
            raise ApiError(422, "invalid_request", f"line {start}: a quoted field is not closed")


def _columns(header: list[str]) -> dict[str, int]:
    """field -> column index, from the header row (the first column named for a field)."""
    names = [_name(h) for h in header]
    found: dict[str, int] = {}
    for key, aliases in FORMATS.columns.items():
        for index, name in enumerate(names):
            if name in aliases:
                found[key] = index
                break
    return found


def _time(text: str) -> datetime:
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Context:
    columns: dict[str, int]
    default_tenant: str
    allowed: frozenset[str] | None  # None: any stored tenant (an admin)
    stored: frozenset[str]
    now: datetime


def _row(ctx: _Context, row: list[str]) -> Suppression:
    """One data row as a suppression.

    Raises:
        ValueError: the sentence that says what is wrong with the row.
    """

    if any("\x00" in cell for cell in row):  # PostgreSQL's text cannot hold a NUL
        raise ValueError("a field holds a NUL character")

    def get(key: str) -> str:
        index = ctx.columns.get(key)
        return row[index].strip() if index is not None and index < len(row) else ""

    address = get("address").lower()
    if not _ADDRESS.match(address) or len(address) > 254:
        raise ValueError(f"address {address[:80]!r} is not an e-mail address")
    tenant = get("tenant") or ctx.default_tenant
    if ctx.allowed is not None and tenant not in ctx.allowed:
        raise ValueError(f"tenant {tenant[:80]!r} is not one this token may import into")
    if tenant not in ctx.stored:
        raise ValueError(f"no tenant {tenant[:80]!r}")
    written = get("reason")
    origin = _reason_name(get("origin"))
    reason = FORMATS.default_reason
    if written:
        name = _reason_name(written)
        found = FORMATS.origin_reasons.get(f"{name}/{origin}") or FORMATS.reasons.get(name)
        if found is None:
            raise ValueError(f"reason {written[:80]!r} is not one this import knows")
        reason = found
    scope_name = get("scope").lower() or "all"
    try:
        scope_value = Scope(scope_name)
    except ValueError:
        raise ValueError("scope must be one of: all, marketing, transactional") from None
    try:
        since = _time(get("since")) if get("since") else ctx.now
        expires = _time(get("expires_at")) if get("expires_at") else None
    except (ValueError, OverflowError, OSError):
        raise ValueError("since or expires_at is not an ISO 8601 time") from None
    return Suppression(
        tenant,
        address,
        reason,
        since,
        expires,
        None,
        (get("note") or FORMATS.default_note)[:2000],
        scope_value,
    )


@scope.tenant_aware
@described(
    "Import suppressions from CSV (this gateway's, Amazon SES's or Postmark's export);"
    " idempotent; ?dry_run=true only counts",
    response=ImportReport,
    query=ImportQuery,
    body=CsvUpload,
    body_media="text/csv",
    media="application/json",
    errors=(404, 413, 422),
)
async def import_suppressions(request: Request) -> Response:
    """Rows go to ``?tenant=`` (default: the intake's default tenant) unless the file has a
    tenant column. A bad row is counted and reported with its line (the first 100); the
    others are imported. The body may be up to ``admin.max_import_size``."""
    deps = deps_of(request)
    q = params.query_of(request, ImportQuery)
    own = scope.tenant_filter(request, q.tenant)
    default_tenant = own or deps.config.smtp.default_tenant
    stored = frozenset(t.name for t in await deps.store.list_tenants())
    if q.tenant and q.tenant not in stored:
        raise ApiError(404, "not_found", f"No tenant {q.tenant}")
    allowed = None if scope.is_admin(request) else frozenset({default_tenant})
    report = _Report()
    batch: dict[tuple[str, str, str], Suppression] = {}
    ctx: _Context | None = None

    async def flush(final: bool) -> None:
        rows = list(batch.values())
        batch.clear()
        if not rows and not final:
            return
        audit = None
        if final and not q.dry_run:
            before = report.counts

            def audit(counts: ImportCounts) -> Any:
                total = before + counts
                return audit_entry(
                    request,
                    "suppression.import",
                    default_tenant,
                    added=total.added,
                    updated=total.updated,
                    unchanged=total.unchanged,
                    invalid=report.invalid,
                )

        report.counts += await deps.store.import_suppressions(rows, dry_run=q.dry_run, audit=audit)

    async for line, row in records(request.stream()):
        if ctx is None:
            columns = _columns(row)
            if "address" not in columns:
                raise ApiError(
                    422,
                    "invalid_request",
                    "line 1: the header names no address column (address, EmailAddress, Email)",
                )
            ctx = _Context(columns, default_tenant, allowed, stored, deps.clock.now())
            continue
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        report.rows += 1
        if row[0].startswith(_BROKEN):
            report.bad(line, f"line {line}: not CSV ({row[0][len(_BROKEN) :]})")
            continue
        try:
            s = _row(ctx, row)
        except ValueError as exc:
            report.bad(line, f"line {line}: {exc}")
            continue
        batch[(s.tenant, s.address, s.scope.value)] = s
        if len(batch) >= BATCH:
            await flush(final=False)
    if ctx is None:
        raise ApiError(422, "invalid_request", "The body is empty: a header row is needed")
    await flush(final=True)
    counts = report.counts
    return respond(
        ImportReport(
            dry_run=q.dry_run,
            rows=report.rows,
            added=counts.added,
            updated=counts.updated,
            unchanged=counts.unchanged,
            invalid=report.invalid,
            errors=report.errors,
            errors_truncated=report.invalid > len(report.errors),
        )
    )


__all__ = ["FORMATS", "export_suppressions", "import_suppressions", "records"]
