"""The recipient checklist: syntax → typo → domain (MX/A) → suppression → quota.

Owns: the order of the checks and the reply each refusal gets, shared by the SMTP intake
(``RCPT TO``), ``gateway check`` and the admin API's address check. At the intake the
quota step holds the recipient (``Store.reserve_quota``): recipients accepted earlier in
the transaction and by concurrent sessions and nodes count; elsewhere it only counts.
Does not own: the SMTP session (``smtp_in``), DNS transport (``dns``), persistence
(``store``; it reaches them through the ``Resolver`` and ``Store`` ports) or which domains
are typos (``core.addresses``).

The typo step refuses (553 5.1.3, naming the likely address) only a domain on the list of
known typo domains (``core.addresses.typo_table``: the shipped list with
``smtp.typo_domains`` applied). Any other domain that merely looks like a popular one
(``bol.com``, ``terra.com``) goes through the remaining checks like any domain — refused
when it has neither MX nor A, the refusal naming the suggestion — and, if accepted,
carries a ``possible_typo`` warning with the suggested address, which intake records as
an event on the recipient.

Addresses are canonicalised once (lower-cased local part and IDNA domain) and every later
lookup keys on that form.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from email_validator import EmailNotValidError, validate_email

from gateway.core import replies
from gateway.core.addresses import typo_suggestion, typo_table
from gateway.core.errors import DnsPermanent, DnsTemporary, StoreError
from gateway.core.model import Reason
from gateway.core.ports import Quotas, Suppressions
from gateway.core.streams import Stream

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gateway.core.model import Suppression, Tenant
    from gateway.core.ports import Clock, Resolver
    from gateway.core.replies import Reply

MAX_ADDRESS_LENGTH = 320  # RFC 5321 §4.5.3.1: 64 local + @ + 255 domain


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checklist's answer for one address.

    ``reply`` is ``None`` when the address would be accepted; ``reason`` is the typed
    reason of the refusal (``invalid``, ``typo``, ``no_such_domain``, ``null_mx``,
    ``dns_tempfail``, ``suppressed``, ``quota``, ``store_unavailable``: the intake stores it
    on the ``rejected`` event as it is); ``suggestion`` is the whole address the domain was
    probably meant to be (a typo refusal, a refusal of a near miss, or a ``possible_typo``
    warning); ``warning`` carries a non-fatal note for an accepted address and
    ``warning_reason`` its reason (``possible_typo``).
    """

    address: str
    reply: Reply | None = None
    reason: Reason | None = None
    suggestion: str | None = None
    warning: str = ""
    warning_reason: Reason | None = None
    #: The suppression that refused (reason ``suppressed``): a tenant that holds instead of
    #: refusing keeps the recipient ``held`` with it (``services.holds``, issue 15).
    suppression: Suppression | None = None

    @property
    def accepted(self) -> bool:
        return self.reply is None


# The fast path of ``canonical``: an ASCII dot-atom local part (email-validator's own rule)
# at an LDH domain. For these the answer is the local part, lower-cased, at the domain's
# checked form: the domain is what costs, and it is validated once per domain.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_LDH_DOMAIN = re.compile(r"[A-Za-z0-9.-]+\Z")
_EMAIL_MAX_LENGTH = 254  # email-validator's limit on each form of the whole address


# A pure function of the domain, asked at every RCPT: remembered per domain.
_typo_suggestion = functools.lru_cache(maxsize=4096)(typo_suggestion)


@functools.lru_cache(maxsize=4096)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """(display form, ASCII form) of a valid domain, or ``None``; checked by email-validator
    on a one-letter local part, which is valid whatever the domain."""
    try:
        result = validate_email(
            f"a@{domain}", check_deliverability=False, allow_smtputf8=True, allow_quoted_local=False
        )
    except EmailNotValidError:
        return None
    return result.domain, result.ascii_domain or result.domain


@functools.lru_cache(maxsize=8192)
def canonical(address: str) -> str | None:
    """The canonical form of an address, or ``None`` when it is not a valid address.

    email-validator with ``check_deliverability=False``: its own DNS check would query the
    machine's resolver; ours runs through the ``Resolver`` port.
    """
    if not address or len(address) > MAX_ADDRESS_LENGTH:
        return None
    if any(c in address for c in "\r\n\x00"):
        return None
    local, _, domain = address.rpartition("@")
    if address.isascii() and _DOT_ATOM.match(local) and _LDH_DOMAIN.match(domain):
        forms = _domain_forms(domain)
        if forms is None:
            return None
        shown, ascii_domain = forms
        longest = max(
            len(address), len(f"{local}@{shown}".encode()), len(local) + 1 + len(ascii_domain)
        )
        if longest <= _EMAIL_MAX_LENGTH:
            return f"{local.lower()}@{ascii_domain.lower()}"
    try:
        result = validate_email(
            address, check_deliverability=False, allow_smtputf8=True, allow_quoted_local=False
        )
    except EmailNotValidError:
        return None
    domain = (result.ascii_domain or result.domain).lower()
    return f"{result.local_part.lower()}@{domain}"


def syntax_verdict(address: str) -> Verdict:
    """Only the syntax and typo steps (no I/O)."""
    norm = canonical(address)
    if norm is None:
        return Verdict(address, replies.RECIPIENT_SYNTAX, Reason.INVALID)
    return Verdict(norm)


class CheckStore(Quotas, Suppressions, Protocol):
    """What the checklist reads and holds: suppressions and quotas."""


class RecipientChecker:
    """Runs the checklist for a tenant's recipient.

    Args:
        resolver: DNS for the domain check (answers are cached by the resolver).
        store: suppressions and quota counts.
        clock: the time for suppression expiry and quota windows.
        typo_mode: ``smtp.typo_check``: ``reject`` (a known typo domain gets 553 naming the
            likely address; a near miss is accepted with a ``possible_typo`` warning),
            ``warn`` (both accepted with the warning) or ``off`` (no typo step at all).
        typo_domains: ``smtp.typo_domains``, applied to the shipped list of known typo
            domains (``core.addresses.typo_table``).
        hold_lifetime: how long a quota hold outlives its ``RCPT`` when nothing settles or
            releases it (its process died): longer than a live transaction takes from an
            ``RCPT`` to its end.
    """

    def __init__(
        self,
        resolver: Resolver,
        store: CheckStore,
        clock: Clock,
        typo_mode: str,
        typo_domains: Iterable[tuple[str, str]] = (),
        hold_lifetime: timedelta = timedelta(minutes=15),
    ) -> None:
        self.resolver = resolver
        self.store = store
        self.clock = clock
        self.typo_mode = typo_mode
        self.typo_domains = typo_table(typo_domains)
        self.hold_lifetime = hold_lifetime

    async def check(
        self,
        address: str,
        tenant: Tenant | None,
        hold: str = "",
        stream: Stream = Stream.TRANSACTIONAL,
    ) -> Verdict:
        """Run every check in order and return the first refusal (or acceptance).

        Args:
            address: the recipient as given.
            tenant: whose suppressions and quotas apply (``None``: neither).
            hold: the intake's transaction id: an accepted recipient of a tenant with a
                quota is then held against it (``Store.reserve_quota``) until the message
                is queued or the transaction ends; without one the quota is only counted
                (``gateway check``, the admin API's address check).
            stream: the message's stream as known at ``RCPT`` (``core.streams``): only the
                suppressions whose scope stops it refuse.
        """
        norm = canonical(address)
        if norm is None:
            return Verdict(address, replies.RECIPIENT_SYNTAX, Reason.INVALID)
        local, _, domain = norm.rpartition("@")
        likely: str | None = None
        if self.typo_mode != "off":
            known = self.typo_domains.get(domain)
            if known is not None and self.typo_mode == "reject":
                likely = f"{local}@{known}"
                reply = replies.RECIPIENT_TYPO.with_text(
                    f"The recipient domain looks misspelt: did you mean {likely}?"
                )
                return Verdict(norm, reply, Reason.TYPO, likely)
            suggestion = known or _typo_suggestion(domain)
            likely = None if suggestion is None else f"{local}@{suggestion}"
        refusal = await self._domain(norm, domain, likely)
        if refusal is not None:
            return refusal
        if tenant is not None:
            refusal = await self.suppressed(norm, tenant.name, stream)
            if refusal is None and (tenant.hourly_quota or tenant.daily_quota):
                quota = self._hold(norm, tenant, hold) if hold else self._quota(norm, tenant)
                refusal = await quota
            if refusal is not None:
                return refusal
        if likely is None:
            return Verdict(norm)
        return Verdict(
            norm,
            suggestion=likely,
            warning=f"The recipient domain may be misspelt: did you mean {likely}?",
            warning_reason=Reason.POSSIBLE_TYPO,
        )

    async def _domain(self, norm: str, domain: str, likely: str | None) -> Verdict | None:
        """The domain check; a refusal of a near miss names the likely address too."""
        try:
            answer = await self.resolver.mx(domain)
        except DnsPermanent:
            return _refusal(norm, replies.NO_SUCH_DOMAIN, Reason.NO_SUCH_DOMAIN, likely)
        except DnsTemporary:
            return Verdict(norm, replies.DNS_TEMPFAIL, Reason.DNS_TEMPFAIL)
        if answer.null:
            return _refusal(norm, replies.NULL_MX, Reason.NULL_MX, likely)
        return None

    async def suppressed(self, norm: str, tenant: str, stream: Stream) -> Verdict | None:
        """The suppression check alone, for a message of ``stream``: at ``RCPT`` (the stream
        the login or the tenant defaults to) and again at the end of ``DATA`` when the
        message's ``X-Gateway-Stream`` names another stream (``smtp_in.handler``)."""
        now = self.clock.now()
        try:
            # An erased address (LGPD) keeps only a hashed suppression: both in one look-up.
            found = await self.store.suppression_for(tenant, norm, stream, now)
        except StoreError:
            return Verdict(norm, replies.STORE_FAILED, Reason.STORE_UNAVAILABLE)
        if found is None:
            return None
        since = found.since.strftime("%Y-%m-%d")
        scope = "" if found.scope.value == "all" else f", {found.scope.value} mail"
        text = (
            f"The recipient is on the suppression list ({found.reason.value}{scope}) since {since}"
        )
        return Verdict(
            norm, replies.SUPPRESSED.with_text(text), Reason.SUPPRESSED, suppression=found
        )

    async def _quota(self, norm: str, tenant: Tenant) -> Verdict | None:
        """The quota counted as the intake's hold counts it (what every session and node
        holds or queued), nothing held: would one more recipient fit now?"""
        now = self.clock.now()
        limits = _limits(tenant)
        try:
            index = await self.store.quota_exceeded(
                tenant.name, [(limit, window) for limit, window, _ in limits], now
            )
        except StoreError:
            return Verdict(norm, replies.STORE_FAILED, Reason.STORE_UNAVAILABLE)
        if index is None:
            return None
        return _exhausted(norm, now, *limits[index])

    async def _hold(self, norm: str, tenant: Tenant, hold: str) -> Verdict | None:
        """The quota held: one recipient more for ``hold``, if every limit has room for it
        with what other sessions and nodes hold and queued (one atomic store write)."""
        now = self.clock.now()
        limits = _limits(tenant)
        try:
            index = await self.store.reserve_quota(
                tenant.name,
                hold,
                norm,
                [(limit, window) for limit, window, _ in limits],
                now,
                now + self.hold_lifetime,
            )
        except StoreError:
            return Verdict(norm, replies.STORE_FAILED, Reason.STORE_UNAVAILABLE)
        if index is None:
            return None
        return _exhausted(norm, now, *limits[index])


def _limits(tenant: Tenant) -> list[tuple[int, timedelta, str]]:
    """The tenant's quotas as (most recipients, sliding window, name)."""
    return [
        (limit, window, name)
        for limit, window, name in (
            (tenant.hourly_quota, timedelta(hours=1), "hourly"),
            (tenant.daily_quota, timedelta(days=1), "daily"),
        )
        if limit
    ]


def _exhausted(norm: str, now: datetime, limit: int, window: timedelta, name: str) -> Verdict:
    resets = _window_reset(now, window)
    text = (
        f"The tenant's {name} quota of {limit} recipients is exhausted;"
        f" it frees up gradually, fully by {resets:%Y-%m-%d %H:%M} UTC"
    )
    return Verdict(norm, replies.QUOTA_EXHAUSTED.with_text(text), Reason.QUOTA)


def _refusal(norm: str, reply: Reply, reason: Reason, likely: str | None) -> Verdict:
    if likely is None:
        return Verdict(norm, reply, reason)
    return Verdict(norm, reply.with_text(f"{reply.text}; did you mean {likely}?"), reason, likely)


def _window_reset(now: datetime, window: timedelta) -> datetime:
    """A sliding window is fully free again one window from now at the latest."""
    return (now + window).replace(second=0, microsecond=0)
