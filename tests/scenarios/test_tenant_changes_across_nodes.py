"""Two nodes, one store: a tenant changed through one node's admin API, quotas held by both.

Each case runs twice: two ``gateway serve`` processes on one SQLite file (README, "Scaling
on one machine"), and two nodes on one PostgreSQL database. Each node has its own SMTP port
and admin listener; loopback clients send as the ``default`` tenant.

1. ``PATCH /api/v1/tenants/default`` on node A (real HTTP): node A's intake applies it to
   its next transaction, node B's within 5 s (measured and printed; the directory reads the
   store's change counter about once a second). Before the tenant directory, B's intake
   kept the tenant it had read first until it restarted. The relays' shaping follows too:
   after ``list_unsubscribe`` is switched on through A, mail accepted by B arrives with
   ``List-Unsubscribe`` within 5 s, whichever node relayed it.
2. Eight sessions at once, four on each node, each offering ten recipients to a tenant
   with an hourly quota of 20: exactly 20 are accepted and queued, whichever node took them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.core import replies
from tests.backends import Backend, PostgresBackend, SqliteBackend
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port
from tests.scenarios.harness import (
    GatewaySubprocess,
    RawClient,
    published_mx,
    write_node_config,
)
from tests.waiting import wait_until

TOKEN = "tenant-directory-admin-token-0123456789ab"
PROPAGATION_LIMIT = 5.0  # seconds: the most a change may take to reach another node
# Marketing: List-Unsubscribe is added to marketing messages only (issue 15).
CONTENT = (
    b"From: App <app@sender.example>\r\nSubject: News\r\nX-Gateway-Stream: marketing\r\n"
    b"\r\nHello.\r\n.\r\n"
)
QUOTA, SESSIONS, EACH = 20, 8, 10


@dataclass
class Node:
    process: GatewaySubprocess
    smtp_port: int
    admin_port: int


@dataclass
class Cluster:
    kind: str
    nodes: list[Node]
    mx: FakeMx
    backend: Backend

    def queued(self) -> int:
        """Recipient rows in the shared store, seen from outside the gateway."""
        return self.backend.count("recipients")


@pytest.fixture
async def cluster(backend: Backend, fake_dns: FakeDns, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two configured nodes on one store (``backend``: SQLite, then PostgreSQL), not started
    (a test starts them when it needs them)."""
    if isinstance(backend, PostgresBackend):
        store: dict[str, Any] = {"url": backend.url}
    else:
        assert isinstance(backend, SqliteBackend)
        store = {"path": str(backend.path)}
    mx = published_mx(fake_dns, "mx-nodes.test")
    nodes = []
    for name in ("node-a", "node-b"):
        smtp_port, admin_port = free_port(), free_port()
        logdir = tmp_path / name
        logdir.mkdir()
        config = write_node_config(
            fake_dns,
            tmp_path,
            mx.port,
            smtp_port,
            name,
            admin={"listen": f"127.0.0.1:{admin_port}", "tokens": [TOKEN]},
            store=store,
        )
        nodes.append(Node(GatewaySubprocess(config, smtp_port, logdir), smtp_port, admin_port))
    try:
        yield Cluster(backend.name, nodes, mx, backend)
    finally:
        for node in nodes:
            node.process.terminate()
        mx.stop()


async def patch_tenant(node: Node, **changes: Any) -> None:
    """``PATCH /api/v1/tenants/default`` on ``node`` over HTTP (its listener may still be
    coming up: connecting is retried for a bounded time)."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{node.admin_port}", timeout=10
    ) as client:

        async def patched() -> httpx.Response | None:
            try:
                return await client.patch(
                    "/api/v1/tenants/default",
                    json=changes,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
            except httpx.ConnectError:
                return None

        try:
            response = await wait_until(patched, 15, what="the admin listener up", interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{node.process.output()}") from None
    assert response.status_code == 200, response.text


async def session(node: Node) -> RawClient:
    client = await RawClient.connect(node.smtp_port)
    assert (await client.reply()).startswith("220 ")
    assert (await client.command("EHLO client.test")).startswith("250")
    return client


async def mail_from(client: RawClient, sender: str) -> str:
    answer = await client.command(f"MAIL FROM:<{sender}>")
    if answer == str(replies.SENDER_OK):
        assert (await client.command("RSET")).startswith("250")
    return answer


async def one_rcpt(client: RawClient, address: str) -> str:
    assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
    answer = await client.command(f"RCPT TO:<{address}>")
    assert (await client.command("RSET")).startswith("250")
    return answer


async def data(client: RawClient) -> str:
    assert (await client.command("DATA")).startswith("354")
    await client.send(CONTENT)
    return await client.reply(timeout=10)


def exhausted(answer: str) -> bool:
    return answer.startswith(f"{replies.QUOTA_EXHAUSTED.code} {replies.QUOTA_EXHAUSTED.enhanced} ")


async def until_shaped(client: RawClient, mx: FakeMx) -> float:
    """Send a probe through ``client`` every 100 ms until one arrives at ``mx`` with a
    ``List-Unsubscribe`` header; the seconds it took (bounded)."""
    started = time.monotonic()
    for n in range(200):
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
        address = f"probe{n}@example.com"
        assert await client.command(f"RCPT TO:<{address}>") == str(replies.RECIPIENT_OK)
        assert (await data(client)).startswith(f"{replies.QUEUED} ")
        (arrived,) = [m for m in await mx.wait_for(n + 1, timeout=10) if address in m.rcpt_tos]
        took = time.monotonic() - started
        if b"\r\nList-Unsubscribe: " in b"\r\n" + arrived.content:
            return took
        assert took < PROPAGATION_LIMIT + 5, f"not shaped after {took:.1f}s"
        await asyncio.sleep(0.1)
    raise AssertionError("no probe was shaped")


async def until_refused(ask: Any, refused: Any) -> float:
    """Ask every 50 ms until the answer is refused; the seconds it took (bounded)."""
    started = time.monotonic()
    while True:
        answer = await ask()
        took = time.monotonic() - started
        if refused(answer):
            return took
        assert took < PROPAGATION_LIMIT + 5, f"still {answer!r} after {took:.1f}s"
        await asyncio.sleep(0.05)


async def test_a_tenant_change_on_one_node_reaches_the_other_nodes_intake(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = cluster.nodes
    await a.process.start()
    await b.process.start()
    on_a, on_b = await session(a), await session(b)
    try:
        # Both have read the tenant: foreign sender domains and any number of recipients.
        assert await mail_from(on_b, "ceo@bank.example") == str(replies.SENDER_OK)
        assert await mail_from(on_a, "ceo@bank.example") == str(replies.SENDER_OK)
        assert await one_rcpt(on_b, "first@example.com") == str(replies.RECIPIENT_OK)

        await patch_tenant(a, allowed_sender_domains=["sender.example"])
        not_allowed = str(replies.SENDER_DOMAIN_NOT_ALLOWED)
        # Node A's own write: its intake applies it to the very next transaction.
        assert await mail_from(on_a, "ceo@bank.example") == not_allowed
        domains = await until_refused(
            lambda: mail_from(on_b, "ceo@bank.example"), lambda answer: answer == not_allowed
        )
        assert await mail_from(on_b, "app@sender.example") == str(replies.SENDER_OK)

        await patch_tenant(a, list_unsubscribe=True)
        shaping = await until_shaped(on_b, cluster.mx)

        # One recipient queued through B, then a quota of one set through A.
        assert await on_b.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
        assert await on_b.command("RCPT TO:<first@example.com>") == str(replies.RECIPIENT_OK)
        assert (await data(on_b)).startswith(f"{replies.QUEUED} ")
        await patch_tenant(a, hourly_quota=1)
        assert exhausted(await one_rcpt(on_a, "second@example.com"))
        quota = await until_refused(lambda: one_rcpt(on_b, "second@example.com"), exhausted)
    finally:
        await on_a.close()
        await on_b.close()
    with capsys.disabled():
        print(
            f"\n[{cluster.kind}] a PATCH on node A reached node B's intake after"
            f" {domains:.2f}s (allowed sender domains) and {quota:.2f}s (hourly quota);"
            f" mail accepted by B was shaped (List-Unsubscribe) after {shaping:.2f}s"
        )
    assert domains < PROPAGATION_LIMIT
    assert quota < PROPAGATION_LIMIT
    assert shaping < PROPAGATION_LIMIT


async def test_sessions_on_both_nodes_never_accept_more_than_the_quota(
    cluster: Cluster,
) -> None:
    a, b = cluster.nodes
    await a.process.start()
    await patch_tenant(a, hourly_quota=QUOTA)
    await b.process.start()  # reads the tenant, quota included, at its first transaction
    clients = [await session(cluster.nodes[n % 2]) for n in range(SESSIONS)]
    try:
        for client in clients:
            assert await client.command("MAIL FROM:<app@sender.example>") == str(
                replies.SENDER_OK
            )

        async def offer(index: int, client: RawClient) -> list[str]:
            return [
                await client.command(f"RCPT TO:<s{index}r{n}@example.com>") for n in range(EACH)
            ]

        async with asyncio.timeout(60):
            answers = await asyncio.gather(*(offer(i, c) for i, c in enumerate(clients)))
        flat = [answer for per in answers for answer in per]
        assert flat.count(str(replies.RECIPIENT_OK)) == QUOTA, answers
        assert all(a == str(replies.RECIPIENT_OK) or exhausted(a) for a in flat), answers
        by_node = [
            sum(per.count(str(replies.RECIPIENT_OK)) for per in answers[n::2]) for n in (0, 1)
        ]
        for client, per in zip(clients, answers, strict=True):
            if str(replies.RECIPIENT_OK) in per:
                assert (await data(client)).startswith(f"{replies.QUEUED} ")
        clients.append(await session(b))  # a new session on either node: nothing left
        assert exhausted(await one_rcpt(clients[-1], "late@example.com"))
    finally:
        for client in clients:
            await client.close()
    assert cluster.queued() == QUOTA, by_node
