"""Throughput benchmark (issue 5): the gateway vs a private Postfix vs smtp-sink alone.

One command from the project root::

    .venv/bin/python bench/throughput.py [--messages 20000] [--sessions 20] [--rcpts 1 10]
                                         [--runs 3] [--systems gateway,postfix,sink]

Everything runs on loopback. Per run and recipient count, the systems are measured in a
rotating order (run 1: gateway, postfix, sink; run 2: postfix, sink, gateway; ...), each
with a fresh temporary directory and a fresh ``smtp-sink`` as the destination:

* ``gateway``: ``.venv/bin/gateway --config <tmp>/gateway.toml serve`` relaying everything to
  the sink (``relay.smarthost``), trusting loopback, its SQLite store in the temp dir, DNS
  from a ``FakeDns`` in this process (MX + A for the recipient domain, so the intake's MX
  check stays on and nothing queries the machine's resolver), ``log.level = "warning"``.
  As a user starts it: one ``gateway serve`` with ``smtp.workers`` (``--workers``, default
  ``"auto"``: one worker process per core). ``--processes N`` instead starts N single-worker
  processes by hand on the one store and the one SMTP port (``smtp.reuse_port``), each with
  its own ``relay.node_id`` and admin port (README, "Scaling on one machine"). CPU is that
  of every process of the tree; peak RSS the sum of each process's peak (an upper bound of
  the peak of the sum).
* ``postfix``: a private instance (``postfix -c <tmp>/postfix start``), its own queue and
  data directory, listening on 127.0.0.1:<port>, ``relayhost = [127.0.0.1]:<sink>``, DNS
  off, no chroot. The system instance is never configured or started.
* ``sink``: ``smtp-source`` straight into ``smtp-sink`` (the ceiling of the tools).

The load is ``smtp-source -s SESSIONS -m N -l 5120 -r RCPTS -d -N``: ``-d`` sessions send
their messages over one connection (``--no-reuse``: one connection per message); ``-N``
every recipient address is distinct (``--same-rcpt``: the same address(es) in every message,
a hot-recipient case). Each line also shows the machine's 1-minute load average at the start
of the trial: other work on a shared machine shows up there.

Figures, per system and run:

* accept/s: N / time until ``smtp-source`` exits (exit status 0 = every reply positive;
  smtp-source aborts on anything but 2xx/3xx without ``-A``);
* e2e/s: N / time until the sink has counted N messages (``smtp-sink -c`` counters);
* latency p50/p99 from ``250`` to arrival, taken from each system's own record for every
  message (no separate probe): gateway = store ``events.at`` of the ``sent`` event (set
  after the sink's ``250`` to the relayed DATA) minus ``messages.received_at`` (set at
  end of DATA, *before* the fsync'd commit, so it slightly overstates); Postfix = the
  ``delay=`` field of its ``status=sent`` log lines (``maillog_file``; from queue-file
  creation to delivery);
* CPU ms/msg: utime+stime (``/proc/<pid>/stat``) of the system's process tree, including
  reaped children (cutime+cstime), between the start of the load and the last arrival.
  For Postfix the tree is ``master`` and all its children except ``postlogd`` (logging,
  which a syslogd would otherwise do outside the instance);
* peak RSS: ``VmHWM`` of the gateway process; for Postfix the sum of the processes' PSS
  (proportional set size: shared pages split between processes) at the last arrival,
  since the sum of per-process peaks would count the shared libraries 25 times.

It prints one line per system per run, then medians (min-max) and the ratios
gateway/Postfix (e2e rate and CPU per message, computed within each run).

``--profile FILE`` records a py-spy flame graph of the gateway during its first trial
(``.venv/bin/pip install py-spy``); with ``BENCH_PROFILE_GIL=1`` in the environment, only
samples of the thread holding the GIL (``py-spy --gil``), which shows where a GIL-bound
gateway spends its one core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.dns_server import FakeDns  # noqa: E402

VENV_BIN = Path(sys.executable).parent
GATEWAY_BIN = VENV_BIN / "gateway"
SENDER = "app@sender.example"
DOMAIN = "dest.example"
RECIPIENT = f"user@{DOMAIN}"
MX_NAME = f"mx.{DOMAIN}"
MESSAGE_BYTES = 5120
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- installing the tools ------------------------------------------------------------------


def postfix_running() -> list[str]:
    """Command lines of Postfix ``master`` processes (any instance)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            comm = (proc / "comm").read_text().strip()
            if comm == "master":
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                if "postfix" in cmd or cmd.startswith("/usr/lib/postfix"):
                    found.append(f"{proc.name}: {cmd}")
    return found


def ensure_postfix() -> None:
    """Install Debian's postfix for smtp-source/smtp-sink if missing; never start it."""
    if shutil.which("smtp-source") and shutil.which("smtp-sink") and shutil.which("postfix"):
        return
    if os.geteuid() != 0:
        sys.exit("smtp-source/smtp-sink missing and not root: apt-get install postfix first")
    log("installing postfix (for smtp-source, smtp-sink; the system instance stays unconfigured)")
    before = set(postfix_running())
    subprocess.run(
        ["debconf-set-selections"],
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        check=True,
        timeout=60,
    )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "postfix"], env=env, check=True, timeout=900)
    # If the package's postinst started the system instance anyway, stop it again.
    started = set(postfix_running()) - before
    if started:
        log(f"postinst started the system postfix ({started}); stopping it")
        subprocess.run(["postfix", "stop"], timeout=60, check=False)
        if shutil.which("systemctl") and Path("/run/systemd/system").exists():
            subprocess.run(["systemctl", "stop", "postfix"], timeout=60, check=False)
            subprocess.run(["systemctl", "disable", "postfix"], timeout=60, check=False)
    for tool in ("smtp-source", "smtp-sink", "postfix"):
        if not shutil.which(tool):
            sys.exit(f"{tool} still missing after installing postfix")


# --- small helpers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, timeout: float, alive: Callable[[], bool] = lambda: True, greeting: bytes = b"220"
) -> None:
    """Wait until ``port`` accepts a connection and sends ``greeting`` (``b""``: connecting
    is enough, e.g. for an HTTP port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server for port {port} exited before listening")
        with socket.socket() as s:
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                time.sleep(0.1)
                continue
            if not greeting:
                return
            with contextlib.suppress(OSError):
                s.settimeout(5)
                if s.recv(512).startswith(greeting):
                    return
        time.sleep(0.1)
    raise TimeoutError(f"nothing answered 220 on 127.0.0.1:{port} within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """SIGTERM, wait ``timeout`` s, then SIGKILL; only this process (by pid)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                children.setdefault(int(_stat_fields(int(proc.name))[1]), []).append(int(proc.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


def tree_cpu_seconds(root: int, exclude: tuple[str, ...] = ()) -> float:
    """utime+stime+cutime+cstime over ``root``'s live tree (reaped children included)."""
    total = 0
    for pid in process_tree(root):
        if exclude and _comm(pid) in exclude:
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            f = _stat_fields(pid)
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK_TCK


def tree_pids(root: int) -> list[int]:
    """``root`` and its descendants (``/proc/<pid>/task/<pid>/children``)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError, ValueError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            todo.extend(int(c) for c in children)
    return found


def vm_hwm_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    index = min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))
    return values[index]


# --- smtp-sink: the destination ------------------------------------------------------------


class Sink:
    """``smtp-sink -c`` on 127.0.0.1:<port>; counts received messages from its counters."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.messages = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sink:
        cmd = ["smtp-sink", "-c", "-m", "1024", "-t", "300"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += [f"127.0.0.1:{self.port}", "1024"]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=open(self.workdir / "sink.err", "wb"),  # noqa: SIM115
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_port(self.port, 10, lambda: self.proc is not None and self.proc.poll() is None)
        return self

    def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        pattern = re.compile(rb"mesg=(\d+)")
        buf = b""
        while chunk := self.proc.stdout.read1(65536):
            *complete, buf = re.split(rb"[\r\n]", buf + chunk)
            for part in reversed(complete):
                if m := pattern.search(part):
                    self.messages = max(self.messages, int(m.group(1)))
                    break

    def wait_for(self, count: int, timeout: float, label: str, started: float) -> float | None:
        """Poll until the sink counted ``count`` messages; the arrival time or None."""
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.messages >= count:
                return time.monotonic()
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("smtp-sink exited")
            if time.monotonic() >= next_report:
                log(
                    f"    {label}: sink {self.messages}/{count}"
                    f" at {time.monotonic() - started:.0f}s"
                )
                next_report += 5
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        stop_process(self.proc, timeout=5)


# --- the systems under test ----------------------------------------------------------------


class System:
    name = "?"
    port = 0

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def cpu_seconds(self) -> float | None:
        return None

    def peak_rss_mib(self) -> float | None:
        return None

    def latencies(self) -> list[float]:
        return []

    def last_delivery_wall(self) -> float | None:
        """Wall-clock time of the last delivery, when the system records it."""
        return None

    def check_done(self, messages: int, rcpts: int) -> str:
        """Empty when every recipient is delivered, else what is missing."""
        return ""


class SinkOnly(System):
    name = "sink"

    def __init__(self, sink: Sink) -> None:
        self.port = sink.port


class GatewaySystem(System):
    name = "gateway"

    def __init__(
        self,
        workdir: Path,
        sink: Sink,
        dns: FakeDns,
        overrides: list[str],
        profile: Path | None,
        processes: int = 1,
        workers: str = "auto",
    ) -> None:
        self.workdir = workdir
        self.sink = sink
        self.dns = dns
        self.overrides = overrides
        self.profile = profile
        self.processes = processes
        self.workers = workers if processes == 1 else "1"
        self.port = free_port()
        self.db = workdir / "gateway.db"
        self.proc: subprocess.Popen[bytes] | None = None  # the first process
        self.procs: list[subprocess.Popen[bytes]] = []
        self.spy: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        sections: dict[str, dict[str, str]] = {
            "smtp": {
                "listen": json.dumps(f"127.0.0.1:{self.port}"),
                "hostname": '"gateway.bench.example"',
                "trusted_networks": '["127.0.0.0/8"]',
                "reuse_port": "true" if self.processes > 1 else "false",
                "workers": json.dumps(self.workers) if self.workers == "auto" else self.workers,
            },
            "store": {"path": json.dumps(str(self.db))},
            "dns": {"nameservers": json.dumps([self.dns.address]), "timeout": '"2s"'},
            "relay": {"smarthost": json.dumps(f"127.0.0.1:{self.sink.port}")},
            "bounce": {
                "domain": '"bounces.gateway.bench.example"',
                "secret": json.dumps(secrets.token_hex(16)),
            },
            "admin": {"listen": '""'},
            "log": {"level": '"warning"'},
        }
        for item in self.overrides:  # --set section.key=<TOML value>
            key, _, value = item.partition("=")
            section, _, name = key.partition(".")
            sections.setdefault(section, {})[name] = value
        lines = []
        for section, values in sections.items():
            lines.append(f"[{section}]")
            lines.extend(f"{k} = {v}" for k, v in values.items())
            lines.append("")
        return "\n".join(lines)

    def start(self) -> None:
        config = self.workdir / "gateway.toml"
        config.write_text(self.config_text())
        base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        # Several processes: nodes on the one store (their own relay.node_id), sharing the
        # SMTP port (smtp.reuse_port); each is ready when its own admin port answers. The
        # first creates the database before the others start.
        for index in range(self.processes):
            env = dict(base)
            admin_port = 0
            if self.processes > 1:
                admin_port = free_port()
                env["GATEWAY__RELAY__NODE_ID"] = f'"bench-{index + 1}"'
                env["GATEWAY__ADMIN__LISTEN"] = f'"127.0.0.1:{admin_port}"'
            out = self.workdir / f"gateway{index + 1 if index else ''}.out"
            proc = subprocess.Popen(
                [str(GATEWAY_BIN), "--config", str(config), "serve"],
                cwd=self.workdir,
                env=env,
                stdout=open(out, "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
            self.procs.append(proc)
            self.proc = self.procs[0]
            try:
                if admin_port:  # the admin listener starts after the SMTP one
                    wait_port(admin_port, 60, lambda p=proc: p.poll() is None, greeting=b"")
                else:
                    wait_port(self.port, 60, lambda p=proc: p.poll() is None)
            except Exception:
                log(out.read_text(errors="replace")[-3000:])
                raise
        if self.profile is not None:
            spy = VENV_BIN / "py-spy"
            if not spy.exists():
                log("    (no py-spy in the venv: .venv/bin/pip install py-spy; not profiling)")
            else:
                self.profile.parent.mkdir(parents=True, exist_ok=True)
                self.spy = subprocess.Popen(
                    [
                        str(spy),
                        "record",
                        "--pid",
                        str(self.proc.pid),
                        "--rate",
                        "100",
                        "--format",
                        "speedscope" if self.profile.suffix == ".json" else "flamegraph",
                        "--output",
                        str(self.profile),
                        "--nonblocking",
                        *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else []),
                    ],
                    stdout=open(self.workdir / "py-spy.out", "wb"),  # noqa: SIM115
                    stderr=subprocess.STDOUT,
                )
                time.sleep(1.0)

    def stop(self) -> None:
        if self.spy is not None:
            # py-spy writes its output on SIGINT.
            with contextlib.suppress(ProcessLookupError):
                self.spy.send_signal(signal.SIGINT)
            try:
                self.spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stop_process(self.spy, timeout=5)
            self.spy = None
            log(f"    py-spy profile: {self.profile}")
        for proc in self.procs:
            stop_process(proc, timeout=40)

    def cpu_seconds(self) -> float | None:
        return sum(tree_cpu_seconds(p.pid) for p in self.procs) if self.procs else None

    def peak_rss_mib(self) -> float | None:
        # Several processes (by hand, or a supervisor's workers): the sum of their peaks (an
        # upper bound of the peak of the sum).
        pids = [pid for p in self.procs for pid in tree_pids(p.pid)]
        return sum(vm_hwm_kib(pid) for pid in pids) / 1024 if pids else None

    def _query(self, sql: str) -> list[tuple[object, ...]]:
        with contextlib.closing(
            sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        ) as c:
            return c.execute(sql).fetchall()

    def last_delivery_wall(self) -> float | None:
        row = self._query("SELECT max(at) FROM events WHERE type = 'sent'")
        return float(row[0][0]) if row and row[0][0] is not None else None

    def latencies(self) -> list[float]:
        rows = self._query(
            "SELECT max(e.at) - m.received_at FROM events e JOIN messages m"
            " ON m.queue_id = e.queue_id WHERE e.type = 'sent' GROUP BY e.queue_id"
        )
        return [float(r[0]) for r in rows]

    def check_done(self, messages: int, rcpts: int) -> str:
        rows = dict(self._query("SELECT status, count(*) FROM recipients GROUP BY status"))
        if rows.get("sent", 0) != messages * rcpts or len(rows) != 1:
            return f"recipients by status {rows}, expected {messages * rcpts} sent"
        return ""


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixSystem(System):
    name = "postfix"

    def __init__(self, workdir: Path, sink: Sink) -> None:
        self.dir = workdir / "postfix"  # config directory
        self.queue = workdir / "postfix-queue"  # outside the config directory
        self.sink = sink
        self.port = free_port()
        self.master_pid: int | None = None
        self.started = False

    def start(self) -> None:
        self.dir.mkdir(mode=0o755)
        for parent in (self.dir, self.dir.parent):
            parent.chmod(0o755)  # the postfix user walks down to its queue
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.queue.parent / "postfix-data"),
            "maillog_file": str(self.dir / "maillog"),
            "maillog_file_prefixes": str(self.dir),
            "syslog_name": "postfix-bench",
            "myhostname": "postfix.bench.example",
            "mydomain": "bench.example",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_peername_lookup": "no",
            "relayhost": f"[127.0.0.1]:{self.sink.port}",
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "default_process_limit": "200",
            "biff": "no",
            "append_dot_mydomain": "no",
        }
        self.queue.mkdir(mode=0o755)
        data = self.queue.parent / "postfix-data"
        data.mkdir(mode=0o700)
        shutil.chown(data, "postfix", "postfix")
        (self.dir / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (self.dir / "master.cf").write_text(MASTER_CF.format(port=self.port))
        out = subprocess.run(
            ["postfix", "-c", str(self.dir), "start"], capture_output=True, timeout=120, check=False
        )
        self.started = True
        if out.returncode != 0:
            # Postfix writes its fatal errors to syslog, or to stderr only when it is a tty.
            why = subprocess.run(
                ["script", "-qc", f"postfix -c {self.dir} check", "/dev/null"],
                capture_output=True,
                timeout=60,
                check=False,
            ).stdout.decode(errors="replace")
            raise RuntimeError(f"postfix start failed: {out.stderr.decode(errors='replace')} {why}")
        pid_file = self.queue / "pid" / "master.pid"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.master_pid is None:
            with contextlib.suppress(OSError, ValueError):
                self.master_pid = int(pid_file.read_text().strip())
            time.sleep(0.1)
        wait_port(self.port, 30)

    def stop(self) -> None:
        if not self.started:
            return
        subprocess.run(
            ["postfix", "-c", str(self.dir), "stop"], capture_output=True, timeout=120, check=False
        )
        self.started = False
        if self.master_pid is not None:  # wait for master to go; it stops its children
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and Path(f"/proc/{self.master_pid}").exists():
                if _comm(self.master_pid) != "master":
                    break
                time.sleep(0.1)

    def cpu_seconds(self) -> float | None:
        if self.master_pid is None:
            return None
        return tree_cpu_seconds(self.master_pid, exclude=("postlogd",))

    def peak_rss_mib(self) -> float | None:
        if self.master_pid is None:
            return None
        return sum(pss_kib(p) for p in process_tree(self.master_pid)) / 1024

    def latencies(self) -> list[float]:
        path = self.dir / "maillog"
        if not path.exists():
            return []
        pattern = re.compile(r" delay=([0-9.]+),.* status=sent ")
        out = []
        for line in path.read_text(errors="replace").splitlines():
            if m := pattern.search(line):
                out.append(float(m.group(1)))
        return out

    def check_done(self, messages: int, rcpts: int) -> str:
        queue = self.queue
        left = sum(
            1
            for sub in ("incoming", "active", "deferred", "hold", "maildrop")
            if (queue / sub).exists()
            for p in (queue / sub).rglob("*")
            if p.is_file()
        )
        return f"{left} messages still in the Postfix queue" if left else ""


# --- one measurement -----------------------------------------------------------------------


@dataclass
class Result:
    system: str
    run: int
    rcpts: int
    messages: int
    accept_s: float | None = None
    e2e_s: float | None = None
    accept_rate: float | None = None
    e2e_rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    latency_samples: int = 0
    cpu_ms_per_msg: float | None = None
    peak_rss_mib: float | None = None
    load1: float | None = None  # the machine's 1-minute load average when the trial started
    error: str = ""
    notes: list[str] = field(default_factory=list)


def smtp_source(
    port: int,
    messages: int,
    sessions: int,
    rcpts: int,
    reuse: bool,
    timeout: float,
    label: str,
    sink: Sink,
    distinct: bool = True,
) -> tuple[float, str]:
    """Run smtp-source; returns (elapsed seconds, error text or '')."""
    cmd = [
        "smtp-source",
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-l",
        str(MESSAGE_BYTES),
        "-r",
        str(rcpts),
        "-f",
        SENDER,
        "-t",
        RECIPIENT,
        "-M",
        "client.bench.example",
    ]
    if reuse:
        cmd.append("-d")
    if distinct:
        cmd.append("-N")  # a non-repeating number before each recipient: all distinct
    cmd.append(f"127.0.0.1:{port}")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err_chunks: list[bytes] = []

    def drain(stream: object, into: list[bytes] | None) -> None:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            if into is not None:
                into.append(chunk)

    threads = [
        threading.Thread(target=drain, args=(proc.stdout, None), daemon=True),
        threading.Thread(target=drain, args=(proc.stderr, err_chunks), daemon=True),
    ]
    for t in threads:
        t.start()
    deadline = started + timeout
    next_report = started + 5
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now > deadline:
                stop_process(proc, timeout=5)
                return now - started, f"smtp-source still running after {timeout:.0f}s"
            if now >= next_report:
                log(f"    {label}: injecting, {now - started:.0f}s, sink has {sink.messages}")
                next_report += 5
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    finally:
        stop_process(proc, timeout=5)
    for t in threads:
        t.join(timeout=5)
    err = b"".join(err_chunks).decode(errors="replace").strip()
    if proc.returncode != 0:
        return elapsed, f"smtp-source exit {proc.returncode}: {err[-500:]}"
    return elapsed, ""


def measure(
    kind: str,
    run: int,
    rcpts: int,
    args: argparse.Namespace,
    base: Path,
    dns: FakeDns,
    profile: Path | None,
) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-r{rcpts}-run{run}-", dir=base))
    result = Result(kind, run, rcpts, args.messages, load1=os.getloadavg()[0])
    label = f"run {run} {kind} r={rcpts}"
    sink = Sink(workdir)
    system: System | None = None
    try:
        sink.start()
        if kind == "gateway":
            system = GatewaySystem(
                workdir, sink, dns, args.set, profile, args.processes, args.workers
            )
        elif kind == "postfix":
            system = PostfixSystem(workdir, sink)
        else:
            system = SinkOnly(sink)
        log(f"  {label}: starting")
        system.start()
        cpu0 = system.cpu_seconds()
        t0 = time.monotonic()
        t0_wall = time.time()
        elapsed, error = smtp_source(
            system.port,
            args.messages,
            args.sessions,
            rcpts,
            not args.no_reuse,
            args.timeout,
            label,
            sink,
            distinct=not args.same_rcpt,
        )
        result.accept_s = elapsed
        result.accept_rate = args.messages / elapsed
        if error:
            result.error = error
            return result
        arrived = sink.wait_for(args.messages, args.timeout, label, t0)
        if arrived is None:
            result.error = f"sink had {sink.messages}/{args.messages} after {args.timeout:.0f}s"
            return result
        result.e2e_s = arrived - t0
        result.e2e_rate = args.messages / result.e2e_s
        cpu1 = system.cpu_seconds()
        if cpu0 is not None and cpu1 is not None:
            result.cpu_ms_per_msg = (cpu1 - cpu0) * 1000 / args.messages
        result.peak_rss_mib = system.peak_rss_mib()
        if sink.messages > args.messages:
            result.notes.append(f"sink counted {sink.messages} > {args.messages}")
        # All N arrived; the systems may still be writing their last records.
        deadline = time.monotonic() + 30
        missing = system.check_done(args.messages, rcpts)
        while missing and time.monotonic() < deadline:
            time.sleep(0.2)
            missing = system.check_done(args.messages, rcpts)
        if missing:
            result.notes.append(missing)
        last = system.last_delivery_wall()
        if last is not None and last - t0_wall > result.e2e_s:
            # The sink counts transactions: a message split over several transactions
            # makes the sink reach N before every recipient has arrived.
            result.notes.append("e2e from the last 'sent' event, not the sink's count")
            result.e2e_s = last - t0_wall
            result.e2e_rate = args.messages / result.e2e_s
        lat = system.latencies()
        result.latency_samples = len(lat)
        if lat:
            result.p50_ms = (percentile(lat, 50) or 0) * 1000
            result.p99_ms = (percentile(lat, 99) or 0) * 1000
        return result
    except Exception as exc:  # one failed trial must not lose the others
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        if system is not None:
            with contextlib.suppress(Exception):
                system.stop()
        sink.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


# --- reporting -----------------------------------------------------------------------------


def fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def line(r: Result) -> str:
    text = (
        f"run {r.run}  {r.system:<8} r={r.rcpts:<2} N={r.messages}  "
        f"accept {fmt(r.accept_rate, '7.0f', '/s')}  e2e {fmt(r.e2e_rate, '7.0f', '/s')}  "
        f"p50 {fmt(r.p50_ms, '6.0f', 'ms')}  p99 {fmt(r.p99_ms, '6.0f', 'ms')}  "
        f"cpu {fmt(r.cpu_ms_per_msg, '5.2f', ' ms/msg')}  rss {fmt(r.peak_rss_mib, '5.0f', ' MiB')}"
        f"  load {fmt(r.load1, '.1f')}"
    )
    if r.error:
        text += f"  ERROR {r.error}"
    if r.notes:
        text += "  [" + "; ".join(r.notes) + "]"
    return text


def spread(values: list[float], spec: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:{spec}}"
    return f"{med:{spec}} ({min(values):{spec}}-{max(values):{spec}})"


def summary(results: list[Result], rcpt_cases: list[int]) -> Iterator[str]:
    for rcpts in rcpt_cases:
        yield f"--- r={rcpts}: median (min-max) over runs ---"
        for system in ("gateway", "postfix", "sink"):
            rs = [r for r in results if r.system == system and r.rcpts == rcpts and not r.error]
            if not rs:
                continue

            def vals(attr: str, rs: list[Result] = rs) -> list[float]:
                return [getattr(r, attr) for r in rs if getattr(r, attr) is not None]

            yield (
                f"{system:<8} accept/s {spread(vals('accept_rate'), '.0f')}  "
                f"e2e/s {spread(vals('e2e_rate'), '.0f')}  p50 ms {spread(vals('p50_ms'), '.0f')}  "
                f"p99 ms {spread(vals('p99_ms'), '.0f')}  "
                f"cpu ms/msg {spread(vals('cpu_ms_per_msg'), '.2f')}  "
                f"rss MiB {spread(vals('peak_rss_mib'), '.0f')}"
            )
        e2e, cpu = [], []
        for run in sorted({r.run for r in results}):
            g = next(
                (r for r in results if (r.system, r.rcpts, r.run) == ("gateway", rcpts, run)), None
            )
            p = next(
                (r for r in results if (r.system, r.rcpts, r.run) == ("postfix", rcpts, run)), None
            )
            if g and p and g.e2e_rate and p.e2e_rate:
                e2e.append(g.e2e_rate / p.e2e_rate)
            if g and p and g.cpu_ms_per_msg and p.cpu_ms_per_msg:
                cpu.append(g.cpu_ms_per_msg / p.cpu_ms_per_msg)
        if e2e or cpu:
            yield (
                f"ratio gateway/postfix  e2e rate {spread(e2e, '.2f')} (target >= 1.0)  "
                f"cpu ms/msg {spread(cpu, '.2f')} (target <= 1.0)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", "-n", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rcpts", type=int, nargs="+", default=[1], help="e.g. --rcpts 1 10")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--systems", default="gateway,postfix,sink")
    parser.add_argument(
        "--timeout", type=float, default=0, help="seconds per phase (default: 120 + N/20)"
    )
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="one connection per message (smtp-source without -d)",
    )
    parser.add_argument(
        "--same-rcpt",
        action="store_true",
        help="the same recipient address(es) in every message (smtp-source "
        "without -N); default: every recipient distinct",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=TOML",
        help="gateway config override, e.g. --set relay.concurrency=200",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy output (.svg flame graph or .json speedscope) of the gateway's first trial",
    )
    parser.add_argument(
        "--workers",
        default="auto",
        help='smtp.workers of the one gateway serve (default "auto": one per core)',
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="gateway serve processes started by hand on the one store and SMTP port "
        "(smtp.reuse_port, one relay.node_id each, smtp.workers = 1); default 1",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        args.timeout = 120 + args.messages / 20
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ("gateway", "postfix", "sink"):
            parser.error(f"unknown system {s!r}")
    ensure_postfix()
    if not GATEWAY_BIN.exists():
        sys.exit(f"{GATEWAY_BIN} missing: run python3 dev.py test (or pip install -e .) first")

    base = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    base.chmod(0o755)
    dns = FakeDns()
    results: list[Result] = []
    profile = args.profile.resolve() if args.profile else None
    try:
        dns.start()
        dns.add_mx(DOMAIN, 10, MX_NAME, ttl=86400)
        dns.add_a(MX_NAME, "127.0.0.1", ttl=86400)
        log(
            f"throughput: N={args.messages} x {MESSAGE_BYTES} B, {args.sessions} sessions, "
            f"rcpts {args.rcpts}, {args.runs} runs, systems {systems}, "
            f"{'one connection per session' if not args.no_reuse else 'one connection per message'}"
            f", {os.cpu_count()} CPUs, tmp {base}"
        )
        for run in range(1, args.runs + 1):
            order = systems[(run - 1) % len(systems) :] + systems[: (run - 1) % len(systems)]
            for rcpts in args.rcpts:
                for kind in order:
                    r = measure(
                        kind,
                        run,
                        rcpts,
                        args,
                        base,
                        dns,
                        profile
                        if kind == "gateway" and not any(x.system == "gateway" for x in results)
                        else None,
                    )
                    results.append(r)
                    print(line(r), flush=True)
        for text in summary(results, args.rcpts):
            print(text, flush=True)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    finally:
        dns.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log(f"kept {base}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
