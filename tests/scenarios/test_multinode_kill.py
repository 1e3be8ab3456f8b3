"""Two gateway nodes on one PostgreSQL database; one is killed with SIGKILL mid-run.

Issue 6, "multi-node test": two real processes (``python -m gateway … serve``), each with
its own SMTP port and ``relay.node_id``, share a fresh database on the test PostgreSQL
server (``tests.pg``) and relay to one loopback ``FakeMx`` that records every delivery.
2,000 messages, each with a unique token (``X-Test-Token``, Message-ID, Subject), are
submitted across both nodes by 8 client sessions. When 40 % are acknowledged, node A is
killed with SIGKILL, then restarted a second later with the same node id.

Expected, and asserted:

* every message is acknowledged by some node: the client sessions that were on node A see
  their connection die, and submit the message they were in the middle of again on node B
  ("cut" below, counted separately). If A had committed it before dying, B finds the same
  Message-ID in the shared store and records a duplicate instead of queueing it again;
* every message arrives at the destination (none lost), within a bounded time;
* duplicates (extra deliveries of a token) are at most the recipients leased to node A when
  it died: only those can have reached the destination without their result being
  recorded. ``relay.lease`` is 5 s, so node B takes them over quickly; the restarted A also
  releases its own old leases at once.

The figures (messages, cut, duplicates, leased at the kill, seconds) are printed to the
terminal, so the CI log shows them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.backends import PostgresBackend
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port
from tests.scenarios.harness import (
    GatewaySubprocess,
    LoadClient,
    published_mx,
    token_of,
    write_node_config,
)
from tests.waiting import wait_until

MESSAGES = 2000
SESSIONS = 8
KILL_AT = 0.4  # fraction of the messages acknowledged when node A is killed
LEASE = "5s"
SUBMIT_TIMEOUT = 150.0  # seconds for the client to get every message acknowledged
DELIVER_TIMEOUT = 120.0  # seconds after that for every message to reach the destination
SETTLE = 2.0  # seconds to wait for stragglers (a late duplicate) after the queue is empty


def node_sections(url: str, node_id: str) -> dict[str, dict[str, object]]:
    return {
        "store": {"url": url},
        "relay": {
            "node_id": node_id,
            "lease": LEASE,
            "retry_intervals": ["1s"],
            "connect_timeout": "2s",
            # Generous: on a busy 2-core machine a slow reply must not look like a lost one
            # (a timeout after the final dot is a deliberate redelivery).
            "command_timeout": "30s",
            "data_timeout": "30s",
            "concurrency": 20,
            "per_destination_concurrency": 20,
            "shutdown_grace": "3s",
        },
    }


def start_nodes(
    fake_dns: FakeDns, tmp_path: Path, mx_port: int, url: str, names: list[str]
) -> list[GatewaySubprocess]:
    nodes = []
    for name in names:
        port = free_port()
        logdir = tmp_path / name
        logdir.mkdir()
        config = write_node_config(
            fake_dns, tmp_path, mx_port, port, name, **node_sections(url, name)
        )
        nodes.append(GatewaySubprocess(config, port, logdir))
    return nodes


def deliveries(mx: FakeMx) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in list(mx.messages):
        token = token_of(message.content)
        assert token is not None, message.content[:500]
        counts[token] += 1
    return counts


async def wait_all_sent(
    pg: PostgresBackend, expected: set[str], mx: FakeMx, timeout: float
) -> None:
    """Until every expected token reached the MX and no recipient is left unsent."""

    def all_sent() -> bool:
        missing = expected - set(deliveries(mx))
        return not missing and pg.count("recipients", "status <> 'sent'") == 0

    try:
        await wait_until(all_sent, timeout, interval=0.2)
    except AssertionError:
        missing = expected - set(deliveries(mx))
        unsent = pg.count("recipients", "status <> 'sent'")
        by_status = pg.rows(
            "SELECT status, lease_owner, count(*) FROM recipients GROUP BY status, lease_owner"
        )
        raise AssertionError(
            f"{len(missing)} messages never arrived (e.g. {sorted(missing)[:5]}), "
            f"{unsent} recipients not sent after {timeout:.0f}s: {by_status}"
        ) from None


async def test_two_nodes_one_killed_and_restarted_lose_nothing(
    fake_dns: FakeDns,
    tmp_path: Path,
    pg_backend: PostgresBackend,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mx = published_mx(fake_dns, "mx-multi.test", start=False)
    node_a, node_b = start_nodes(fake_dns, tmp_path, mx.port, pg_backend.url, ["node-a", "node-b"])
    load = LoadClient(
        [node_a.port, node_b.port],
        MESSAGES,
        sessions=SESSIONS,
        per_connection=25,
        deadline=SUBMIT_TIMEOUT,
    )
    try:
        mx.start()
        await node_a.start(timeout=30)
        await node_b.start(timeout=30)
        started = time.monotonic()
        load.start()

        await load.wait_acked(int(MESSAGES * KILL_AT), timeout=SUBMIT_TIMEOUT)
        node_a.kill()
        killed_at = time.monotonic() - started
        assert node_a.proc is not None
        assert node_a.proc.returncode == -9, node_a.output()
        # What node A held when it died: only these can be delivered twice.
        leased = pg_backend.count("recipients", "lease_owner = 'node-a'")
        acked_at_kill = load.acked
        delivered_at_kill = len(mx.messages)

        await asyncio.sleep(1.0)  # node A stays down a while: the outage is the scenario
        await node_a.start(timeout=30)

        assert await asyncio.to_thread(load.join, SUBMIT_TIMEOUT), "the load client hung"
        submitted = time.monotonic() - started
        assert not load.errors, load.errors[:10]
        assert not load.unacked, [item.token for item in load.unacked[:10]]

        tokens = {item.token for item in load.items}
        await wait_all_sent(pg_backend, tokens, mx, DELIVER_TIMEOUT)
        elapsed = time.monotonic() - started
        await asyncio.sleep(SETTLE)

        counts = deliveries(mx)
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        lost = tokens - set(counts)
        cut = load.cut
        dedup_events = pg_backend.count("events", "type = 'duplicate'")
        queued_rows = pg_backend.count("recipients")
        lease_lost = sum(node.output().count("relay.lease_lost") for node in (node_a, node_b))
        with capsys.disabled():
            print(
                f"\n[multinode kill] messages={MESSAGES} sessions={SESSIONS}"
                f" acknowledged={MESSAGES - len(load.unacked)} lost={len(lost)}"
                f" delivered={sum(counts.values())} duplicates={duplicates}"
                f" leased_by_A_at_kill={leased} acked_at_kill={acked_at_kill}"
                f" delivered_at_kill={delivered_at_kill} killed_at={killed_at:.1f}s"
                f" cut_and_resubmitted={len(cut)} (already committed by A: {dedup_events})"
                f" lease_lost_logged={lease_lost} submit={submitted:.1f}s"
                f" all_delivered={elapsed:.1f}s"
                f" rate={MESSAGES / elapsed:.0f} msg/s",
                flush=True,
            )

        assert not lost, sorted(lost)[:10]
        # One recipient row per message: a resubmitted message A had committed was
        # recognised by its Message-ID, not queued a second time.
        assert queued_rows == MESSAGES
        assert dedup_events <= len(cut)
        assert duplicates <= leased, (duplicates, leased)
        # Every cut message was acknowledged on the other node, then delivered.
        for item in cut:
            assert item.acked
            assert item.tries[-1].node != next(t.node for t in item.tries if t.code == -1)
            assert counts[item.token] >= 1
    finally:
        load.stop()
        node_a.terminate()
        node_b.terminate()
        mx.stop()
