"""The HTML templates of the support page and of the public unsubscribe page.

Owns: the Jinja2 environment (templates shipped as package data in
``gateway/admin/templates/``, autoescaping on for every template, undefined names an
error), the filters the templates use, and rendering a page with its security headers
and, on the support page, a per-response CSP nonce for the one inline script. Does not
own: what a page shows (``admin.pages``, ``admin.public``).

Every value a template prints is HTML-escaped by Jinja2 (``autoescape=True``); nothing is
marked safe, so a value can never bring its own markup.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates


def when(value: datetime | None) -> str:
    """A time as the page shows it (UTC), or ``""``."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = when
    return env


TEMPLATES = Jinja2Templates(env=_environment())

_COMMON = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: The public listener's pages have no script at all.
PUBLIC_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    **_COMMON,
}


def render_support(
    request: Request, name: str, context: dict[str, Any], status: int = 200
) -> Response:
    """A support page: ``name`` rendered with a fresh nonce that the CSP allows for the
    page's one inline script, and nothing else."""
    nonce = secrets.token_urlsafe(16)
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}';"
            " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        **_COMMON,
    }
    return TEMPLATES.TemplateResponse(
        request, name, {**context, "nonce": nonce}, status_code=status, headers=headers
    )


def render_public(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    """A page of the public listener (``public.html``)."""
    return TEMPLATES.TemplateResponse(
        request, "public.html", context, status_code=status, headers=PUBLIC_HEADERS
    )
