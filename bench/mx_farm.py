"""Loopback MX servers with the behaviours of a realistic internet, for benchmarks.

Owns: one raw-asyncio SMTP listener per MX address (``127.x.y.z``, all on one port, as
``relay.mx_port`` and Postfix's ``[ip]:port`` next hops need), each serving its *site*'s
behaviour; and the record of what the servers saw and said: connections per site (opened,
most at once), every reply sent, and every accepted recipient with its arrival time. Does
not own: which domains exist or where they point (``bench/destinations.py``), DNS, or the
systems under test.

Behaviours (a site is the set of MX hosts of one destination or provider):

* ``fast``: greets at once, accepts everything;
* ``slow_greeting``: greets after ``SLOW_GREETING`` seconds, then as ``fast``;
* ``tarpit``: accepts the TCP connection and never says anything (the connection is
  dropped after ``TARPIT_HOLD`` seconds, or when the farm stops);
* ``refused``: nothing listens, so the kernel answers the SYN with a reset;
* ``conc421``: ``421`` greeting and hang-up when the client already holds ``CONC_LIMIT``
  connections to the site (counted per client address, over the site's addresses);
* ``greylist``: ``451 4.7.1`` to the first ``RCPT`` of each (sender, recipient) pair, and
  to every later one until ``GREYLIST_DELAY`` seconds have passed since the first (as
  greylisting servers do: the state is shared by the site's MX hosts, so trying the next
  MX at once does not get through);
* ``rcpt452``: ``452 4.5.3`` to every ``RCPT`` after the first ``RCPT_LIMIT`` of a
  transaction (RFC 5321 §4.5.3.1.8 lets a server stop at 100; some stop earlier);
* ``slow_data``: the ``250`` to the final dot comes ``SLOW_DATA`` seconds late.

Every wait is bounded: a line must arrive within ``IDLE_TIMEOUT`` seconds, a session
handles at most ``MAX_COMMANDS`` commands and ``MAX_MESSAGE`` bytes per message.
The servers run on their own event loop in a thread, so a benchmark's blocking calls
(starting Postfix, reading SQLite) never delay a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

FAST = "fast"
SLOW_GREETING = "slow_greeting"
TARPIT = "tarpit"
REFUSED = "refused"
CONC421 = "conc421"
GREYLIST = "greylist"
RCPT452 = "rcpt452"
SLOW_DATA = "slow_data"
BEHAVIOURS = (FAST, SLOW_GREETING, TARPIT, REFUSED, CONC421, GREYLIST, RCPT452, SLOW_DATA)

SLOW_GREETING_S = 20.0
SLOW_DATA_S = 2.0
GREYLIST_DELAY = 30.0
CONC_LIMIT = 8
RCPT_LIMIT = 50
TARPIT_HOLD = 900.0
IDLE_TIMEOUT = 120.0
MAX_COMMANDS = 20_000
MAX_MESSAGE = 30 * 1024 * 1024

_ID_HEADER = re.compile(rb"^X-Bench-Id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_ADDRESS = re.compile(r"<([^>]*)>")

# The replies of the behaviours: the benchmark compares the systems' records with them.
GREETING_421 = "421 4.7.0 Too many concurrent SMTP connections from this IP; try again later"
GREYLISTED = "451 4.7.1 Greylisted, please try again later"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients in this transaction"


@dataclass
class Site:
    """One destination's MX set as the farm serves it.

    Args:
        name: the site's name (its MX host names, joined), for reports.
        behaviour: one of ``BEHAVIOURS``.
        addresses: the loopback addresses of its MX hosts.
    """

    name: str
    behaviour: str
    addresses: tuple[str, ...]


@dataclass
class Arrival:
    message_id: str
    rcpt: str
    at: float  # time.monotonic() when the 250 to the final dot was sent
    site: str


@dataclass
class Record:
    """What the farm saw during one phase (one system under test)."""

    label: str
    started: float = field(default_factory=time.monotonic)
    connections: Counter[str] = field(default_factory=Counter)  # per site
    open_now: Counter[str] = field(default_factory=Counter)
    max_open: Counter[str] = field(default_factory=Counter)
    per_address_max: Counter[str] = field(default_factory=Counter)
    per_address_open: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)  # "code text" -> count
    arrivals: list[Arrival] = field(default_factory=list)
    duplicates: int = 0


class Farm:
    """The MX servers (see the module docstring).

    Args:
        sites: the sites to serve; a ``refused`` site gets no listener.
        port: the one port every MX address listens on.
    """

    def __init__(self, sites: Iterable[Site], port: int) -> None:
        self.sites = list(sites)
        self.port = port
        self._lock = threading.Lock()
        self._record = Record("idle")
        self._greylist: dict[tuple[str, str], float] = {}
        self._seen: set[tuple[str, str]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._sessions: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- phases ---------------------------------------------------------------------------
    def begin(self, label: str) -> None:
        """Start a new record; greylisting forgets every pair (a fresh internet)."""
        with self._lock:
            self._record = Record(label)
            self._greylist.clear()
            self._seen.clear()

    def snapshot(self) -> Record:
        """A copy of the current record, safe to read from another thread."""
        with self._lock:
            r = self._record
            return Record(
                r.label,
                r.started,
                Counter(r.connections),
                Counter(r.open_now),
                Counter(r.max_open),
                Counter(r.per_address_max),
                Counter(r.per_address_open),
                Counter(r.replies),
                list(r.arrivals),
                r.duplicates,
            )

    def arrived(self) -> int:
        with self._lock:
            return len(self._record.arrivals)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> Farm:
        self._thread = threading.Thread(target=self._run, name="mx-farm", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the MX farm did not start")
        if self._error is not None:
            raise RuntimeError(f"the MX farm failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                fut.result(timeout=15)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _listen(self) -> None:
        for site in self.sites:
            if site.behaviour == REFUSED:
                continue
            for address in site.addresses:

                async def serve(
                    r: asyncio.StreamReader,
                    w: asyncio.StreamWriter,
                    site: Site = site,
                    address: str = address,
                ) -> None:
                    await self._session(r, w, site, address)

                server = await asyncio.start_server(
                    serve, address, self.port, limit=1 << 20, reuse_address=True
                )
                self._servers.append(server)

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        # Drop the open connections (a tarpit's reader then sees the end of the stream),
        # then cancel whatever session is still running.
        for writer in list(self._sessions.values()):
            writer.transport.abort()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=5)
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=5)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    # --- one SMTP session -----------------------------------------------------------------
    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, site: Site, address: str
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions[task] = writer
        peer = str(writer.get_extra_info("peername", ("?", 0))[0])
        key = f"{site.name}|{peer}"
        with self._lock:
            rec = self._record
            rec.connections[site.name] += 1
            rec.open_now[key] += 1
            rec.per_address_open[address] += 1
            rec.max_open[site.name] = max(rec.max_open[site.name], rec.open_now[key])
            rec.per_address_max[address] = max(
                rec.per_address_max[address], rec.per_address_open[address]
            )
            concurrent = rec.open_now[key]
        try:
            await self._converse(reader, writer, site, concurrent, rec)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            # Only the farm's shutdown cancels a session; asyncio's stream server would log
            # the cancellation of its handler's task as an error.
            pass
        finally:
            with self._lock:
                rec.open_now[key] -= 1
                rec.per_address_open[address] -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)
            self._sessions.pop(task, None)

    async def _reply(self, writer: asyncio.StreamWriter, rec: Record, text: str) -> None:
        with self._lock:
            rec.replies[text] += 1
        writer.write(text.encode() + b"\r\n")
        await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        site: Site,
        concurrent: int,
        rec: Record,
    ) -> None:
        behaviour = site.behaviour
        host = site.name.split(",")[0]
        if behaviour == TARPIT:
            # Read and drop whatever comes, say nothing; bounded by TARPIT_HOLD.
            async with asyncio.timeout(TARPIT_HOLD):
                while await reader.read(4096):
                    pass
            return
        if behaviour == SLOW_GREETING:
            await asyncio.sleep(SLOW_GREETING_S)
        if behaviour == CONC421 and concurrent > CONC_LIMIT:
            await self._reply(writer, rec, GREETING_421)
            return
        await self._reply(writer, rec, f"220 {host} ESMTP bench")
        mail_from = ""
        rcpts: list[str] = []
        for _ in range(MAX_COMMANDS):
            line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
            if not line:
                return
            text = line.decode("latin-1").rstrip("\r\n")
            verb = text[:4].upper()
            if verb == "EHLO":
                writer.write(
                    f"250-{host}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
                    "250 SIZE 52428800\r\n".encode()
                )
                with self._lock:
                    rec.replies["250 EHLO"] += 1
                await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)
            elif verb == "HELO":
                await self._reply(writer, rec, f"250 {host}")
            elif verb == "MAIL":
                m = _ADDRESS.search(text)
                mail_from = (m.group(1) if m else "").lower()
                rcpts = []
                await self._reply(writer, rec, "250 2.1.0 Ok")
            elif verb == "RCPT":
                m = _ADDRESS.search(text)
                rcpt = (m.group(1) if m else "").lower()
                if behaviour == RCPT452 and len(rcpts) >= RCPT_LIMIT:
                    await self._reply(writer, rec, TOO_MANY_RCPTS)
                    continue
                if behaviour == GREYLIST:
                    with self._lock:
                        now = time.monotonic()
                        first = self._greylist.setdefault((mail_from, rcpt), now)
                    if now - first < GREYLIST_DELAY:
                        await self._reply(writer, rec, GREYLISTED)
                        continue
                rcpts.append(rcpt)
                await self._reply(writer, rec, "250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    await self._reply(writer, rec, "554 5.5.1 No valid recipients")
                    continue
                await self._reply(writer, rec, "354 End data with <CR><LF>.<CR><LF>")
                data = await self._read_data(reader)
                if behaviour == SLOW_DATA:
                    await asyncio.sleep(SLOW_DATA_S)
                found = _ID_HEADER.search(data)
                message_id = found.group(1).decode("latin-1") if found else "?"
                now = time.monotonic()
                with self._lock:
                    for rcpt in rcpts:
                        if (message_id, rcpt) in self._seen:
                            rec.duplicates += 1
                        self._seen.add((message_id, rcpt))
                        rec.arrivals.append(Arrival(message_id, rcpt, now, site.name))
                rcpts = []
                await self._reply(writer, rec, "250 2.0.0 Ok: queued")
            elif verb == "RSET":
                rcpts = []
                await self._reply(writer, rec, "250 2.0.0 Ok")
            elif verb == "NOOP":
                await self._reply(writer, rec, "250 2.0.0 Ok")
            elif verb == "QUIT":
                await self._reply(writer, rec, "221 2.0.0 Bye")
                return
            else:
                await self._reply(writer, rec, "502 5.5.2 Command not recognized")

    async def _read_data(self, reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
            if not line:
                raise ConnectionError("EOF in DATA")
            if line in (b".\r\n", b".\n"):
                return b"".join(chunks)
            size += len(line)
            if size > MAX_MESSAGE:
                raise ValueError("message too large")
            chunks.append(line)
