"""The listener's fast path for plain ``<local@domain>`` gives aiosmtpd's exact answer.

Async tests: aiosmtpd's SMTP takes the running loop (outside one it would make a loop
that nobody closes)."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP

from gateway.smtp_in.server import GatewaySMTP, Listener

CASES = [
    "<a@b.c>",
    "<a@b.c> SIZE=100 BODY=8BITMIME",
    "<First.Last+tag@Example.COM>",
    "<a.b.c@d-e.f>",
    "<x!#$%&'*+/=?^_`{|}~-@d.e>",
    "<a..b@c.d>",
    "<.a@b.c>",
    "<a.@b.c>",
    "<a@b..c>",
    "<a@-b.c>",
    "<a@b.c.>",
    '<"q x"@b.c>',
    "<a@[1.2.3.4]>",
    " <a@b.c>",
    "<a@b.c>x",
    "<a@b>",
    "<@r:a@b.c>",
    "<a@b.c",
    "<ü@b.c>",
    "<a@b.c>  ",
    "<a b@c.d>",
    "<a@b.c> (comment) SIZE=1",
    "<a@b.c>\tSIZE=1",
    "<a@b.c>(x)",
    "<a@b.c> \t SIZE=1 ",
    "",
    "<>",
    "a@b.c",
    "<" + "x" * 70 + "@b.c>",
]


class _Handler:
    pass


@pytest.mark.parametrize("arg", CASES)
async def test_fast_path_matches_aiosmtpd(arg: str) -> None:
    ours = GatewaySMTP(_Handler(), Listener(1))  # type: ignore[arg-type]
    theirs = SMTP(_Handler())
    assert ours._getaddr(arg) == theirs._getaddr(arg)
    assert ours._getaddr(arg) == theirs._getaddr(arg)  # the cached answer too


async def test_local_part_limit_applies_on_the_fast_path() -> None:
    ours = GatewaySMTP(_Handler(), Listener(1))  # type: ignore[arg-type]
    ours.local_part_limit = 64
    assert ours._getaddr("<" + "x" * 65 + "@b.c>") == (None, None)
    assert ours._getaddr("<" + "x" * 64 + "@b.c>") == ("x" * 64 + "@b.c", "")
