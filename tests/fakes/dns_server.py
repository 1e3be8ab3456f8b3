"""A real DNS server on loopback for tests: authoritative answers from a dict.

Owns: a UDP and a TCP listener on ``127.0.0.1`` (same free port), each served by a
thread, so it answers while the test's asyncio loop (or a gateway subprocess) queries it.
Records are added at run time; names the fake does not know get NXDOMAIN; names can be
scripted to SERVFAIL or to never answer. Every query is counted per name and type, for
cache tests.

Usage::

    with FakeDns() as fake:
        fake.add_mx("example.test", 10, "mx1.example.test")
        fake.add_a("mx1.example.test", "127.0.0.2")
        config = fake.config(timeout=0.5)   # a DnsConfig pointing at the fake
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections import Counter
from datetime import timedelta
from types import TracebackType

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A, DNSLabel, DNSRecord

from gateway.config import DnsConfig, HostPort

_TCP_READ_TIMEOUT = 2.0


def _key(name: str) -> str:
    return name.strip().rstrip(".").lower()


_BIND_ATTEMPTS = 20


class FakeDns:
    """An authoritative DNS server for the names a test declares.

    Args:
        host: the loopback address to listen on.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._records: dict[str, list[RR]] = {}
        self._servfail: set[str] = set()
        self._timeout: set[str] = set()
        self._queries: Counter[tuple[str, str]] = Counter()
        self._udp: socketserver.ThreadingUDPServer | None = None
        self._tcp: socketserver.ThreadingTCPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- records ------------------------------------------------------------------------
    def add_mx(self, domain: str, pref: int, host: str, ttl: int = 60) -> None:
        """Add an MX record ``domain -> host`` with preference ``pref``."""
        self._add(domain, RR(_key(domain) + ".", QTYPE.MX, ttl=ttl, rdata=MX(host, pref)))

    def add_null_mx(self, domain: str, ttl: int = 60) -> None:
        """Add the RFC 7505 null MX: ``0 .``."""
        self._add(domain, RR(_key(domain) + ".", QTYPE.MX, ttl=ttl, rdata=MX(DNSLabel([]), 0)))

    def add_a(self, name: str, ip: str, ttl: int = 60) -> None:
        """Add an A record."""
        self._add(name, RR(_key(name) + ".", QTYPE.A, ttl=ttl, rdata=A(ip)))

    def add_aaaa(self, name: str, ip: str, ttl: int = 60) -> None:
        """Add an AAAA record."""
        self._add(name, RR(_key(name) + ".", QTYPE.AAAA, ttl=ttl, rdata=AAAA(ip)))

    def add_name(self, name: str) -> None:
        """Make ``name`` exist with no records (queries get NOERROR, no data)."""
        with self._lock:
            self._records.setdefault(_key(name), [])

    def set_servfail(self, name: str) -> None:
        """Answer every query for ``name`` with SERVFAIL."""
        with self._lock:
            self._servfail.add(_key(name))

    def set_timeout(self, name: str) -> None:
        """Never answer queries for ``name``."""
        with self._lock:
            self._timeout.add(_key(name))

    def clear(self, name: str) -> None:
        """Forget records and scripted faults for ``name`` (it becomes NXDOMAIN)."""
        key = _key(name)
        with self._lock:
            self._records.pop(key, None)
            self._servfail.discard(key)
            self._timeout.discard(key)

    def queries(self, name: str, rdtype: str | None = None) -> int:
        """How many queries for ``name`` (of ``rdtype``, or of any type) arrived."""
        key = _key(name)
        with self._lock:
            return sum(
                n
                for (q, t), n in self._queries.items()
                if q == key and (rdtype is None or t == rdtype.upper())
            )

    def _add(self, name: str, rr: RR) -> None:
        with self._lock:
            self._records.setdefault(_key(name), []).append(rr)

    # --- addresses ------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``"127.0.0.1:port"``, as written in ``dns.nameservers``."""
        return f"{self.host}:{self.port}"

    @property
    def nameserver(self) -> HostPort:
        return HostPort(self.host, self.port)

    def config(self, timeout: float = 1.0, **kwargs: object) -> DnsConfig:
        """A ``DnsConfig`` that points at this server only.

        Args:
            timeout: the resolver's lifetime, in seconds.
            **kwargs: other ``DnsConfig`` fields (``cache_size``, ``negative_ttl``).
        """
        return DnsConfig(
            nameservers=(self.nameserver,), timeout=timedelta(seconds=timeout), **kwargs
        )

    # --- answering ------------------------------------------------------------------------
    def answer(self, data: bytes) -> bytes | None:
        """The wire-format reply to a wire-format query, or ``None`` to stay silent."""
        request = DNSRecord.parse(data)
        qname = _key(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        reply = request.reply()  # sets QR, AA, RD, RA and copies the question
        with self._lock:
            self._queries[(qname, str(qtype))] += 1
            if qname in self._timeout:
                return None
            if qname in self._servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply.pack()
            records = self._records.get(qname)
            if records is None:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply.pack()
            for rr in records:
                if rr.rtype == request.q.qtype:
                    reply.add_answer(rr)
        return reply.pack()

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeDns:
        """Bind UDP and TCP on the same free port and serve them in threads."""
        fake = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = fake.answer(data)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(_TCP_READ_TIMEOUT)
                try:
                    head = _recv_exact(conn, 2)
                    data = _recv_exact(conn, struct.unpack("!H", head)[0])
                except (OSError, EOFError):
                    return
                out = fake.answer(data)
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)

        # UDP picks a free port; TCP must bind the same number, which another process may
        # hold: try a bounded number of fresh ports.
        for attempt in range(_BIND_ATTEMPTS):
            udp = _UdpServer((self.host, 0), Udp)
            self.port = udp.server_address[1]
            try:
                tcp = _TcpServer((self.host, self.port), Tcp)
            except OSError:
                udp.server_close()
                if attempt == _BIND_ATTEMPTS - 1:
                    raise
                continue
            break
        self._udp, self._tcp = udp, tcp
        for server in (udp, tcp):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both listeners and close their sockets."""
        for server in (self._udp, self._tcp):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._udp = self._tcp = None
        self._threads.clear()

    def __enter__(self) -> FakeDns:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


__all__ = ["FakeDns"]
