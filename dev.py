#!/usr/bin/env python3
"""Bootstrap and run the gateway or its tests on a machine that has only python3.

    python3 dev.py serve    # install into .venv, start the gateway (SQLite, example config)
    python3 dev.py test     # install into .venv (with test extras), lint, run every test
    python3 dev.py lock     # re-resolve requirements/*.lock after a change to pyproject.toml

Extra arguments go to the command (``python3 dev.py test -k relay``). The virtual
environment is made once in ``.venv`` and refreshed when ``pyproject.toml`` or a lock file
changes. Both install exactly the versions and hashes in ``requirements/runtime.lock``
(serve) or ``requirements/test.lock`` (test): a new release of a dependency cannot change
what a fresh clone runs until someone re-locks.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed"
LOCKS = ROOT / "requirements"
STATE = ROOT / "var"  # ignored by git: the SQLite store and the local admin token


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def _pip(*args: str) -> None:
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
        cwd=ROOT,
        check=True,
    )


def ensure_venv(lock: str) -> None:
    """Create .venv and install ``requirements/<lock>.lock`` (hashes required), then the
    project itself (editable, no dependencies of its own), when either has changed."""
    lockfile = LOCKS / f"{lock}.lock"
    want = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + lockfile.read_bytes() + lock.encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and (BIN / "python").exists():
        return
    if not (BIN / "python").exists():
        step(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    step(f"installing the pinned dependencies from {lockfile.relative_to(ROOT)} (pip)")
    _pip("--require-hashes", "-r", str(lockfile))
    step("installing the gateway itself (editable)")
    _pip("--no-deps", "-e", ".")
    STAMP.write_text(want)


def _listen_of(config: dict[str, dict[str, object]], section: str, default: str) -> str:
    """``section.listen`` as the gateway will see it: the environment wins over the file."""
    override = os.environ.get(f"GATEWAY__{section.upper()}__LISTEN")
    if override is not None:
        try:
            return str(tomllib.loads(f"v = {override}")["v"])
        except tomllib.TOMLDecodeError:
            return override  # the gateway itself will name the bad key at start-up
    return str(config.get(section, {}).get("listen", default))


def _local_admin_token(config: dict[str, dict[str, object]]) -> str | None:
    """The token of this checkout's support page, made once and kept in var/admin-token
    (mode 600, ignored by git); ``None`` when the config or the environment names tokens of
    their own (then those are the way in)."""
    if os.environ.get("GATEWAY__ADMIN__TOKENS") or config.get("admin", {}).get("tokens"):
        return None
    path = STATE / "admin-token"
    if not path.exists():
        STATE.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _wait_healthy(proc: subprocess.Popen[bytes], admin: str, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://{admin}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def serve(args: list[str]) -> int:
    ensure_venv("runtime")
    config_path = os.environ.get("GATEWAY_CONFIG", "config/gateway.toml")
    try:
        config = tomllib.loads((ROOT / config_path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        config = {}  # the gateway names the problem itself
    env = dict(os.environ)
    token = _local_admin_token(config)
    if token is not None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        env["GATEWAY__ADMIN__TOKENS"] = json.dumps([f"sha256:{digest}"])
    smtp = _listen_of(config, "smtp", "127.0.0.1:2525")
    admin = _listen_of(config, "admin", "127.0.0.1:8025")
    step(f"starting the gateway with {config_path} (Ctrl-C or SIGTERM to stop)")
    proc = subprocess.Popen(
        [str(BIN / "gateway"), "serve", "--config", config_path, *args], cwd=ROOT, env=env
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda n, _f: proc.send_signal(n))
    if admin and _wait_healthy(proc, admin):
        step(f"SMTP on {smtp}; admin API, metrics and support page on http://{admin}/")
        if token is not None:
            step(f"support page: http://{admin}/login  token: {token}  (kept in var/admin-token)")
        else:
            step(f"support page: http://{admin}/login with a token from [admin] tokens")
    return proc.wait()


_apt_updated: list[bool] = []


def _apt(*args: str) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)
        _apt_updated.append(True)
    subprocess.run([*sudo, "apt-get", *args], check=True, env=env)


def ensure_chromium() -> None:
    """Debian's chromium, for tests/ui (Playwright drives it; never `playwright install`)."""
    if Path("/usr/bin/chromium").exists() or not shutil.which("apt-get"):
        return
    step("installing Debian's chromium (apt-get install chromium)")
    _apt("install", "-y", "-q", "--no-install-recommends", "chromium")


def ensure_promtool() -> None:
    """promtool and prometheus, unpacked from Debian's prometheus package into .venv/bin
    (apt-get download + dpkg -x): nothing is installed system-wide and no service is started.
    The alert tests run promtool; tests/observability/test_alerts_live.py starts its own
    prometheus on loopback, with a private data directory, for the length of the test."""
    wanted = [
        name for name in ("promtool", "prometheus") if not (BIN / name).exists()
    ]  # a system-wide one is not used: the package's pair is what the tests are written for
    if not wanted or not shutil.which("apt-get"):
        return
    step(f"unpacking {' and '.join(wanted)} from Debian's prometheus package (dpkg -x)")
    if not _apt_updated:  # `apt-get download` needs the package lists
        _apt("--version")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "prometheus"], cwd=tmp, check=True)
        [deb] = glob.glob(f"{tmp}/prometheus_*.deb")
        subprocess.run(["dpkg-deb", "-x", deb, f"{tmp}/x"], check=True)
        for name in wanted:
            shutil.copy2(f"{tmp}/x/usr/bin/{name}", BIN / name)


def ensure_docker_compose() -> None:
    """The compose file is checked with `docker compose config` (or Debian's docker-compose):
    the client alone does that; no container engine runs here."""
    if shutil.which("docker-compose") or not shutil.which("apt-get"):
        return
    probe = (
        subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if shutil.which("docker")
        else None
    )
    if probe is not None and probe.returncode == 0:
        return
    step("installing Debian's docker-compose (for `docker-compose config` only)")
    _apt("install", "-y", "-q", "--no-install-recommends", "docker-compose")


def ensure_postgresql() -> None:
    """Debian's PostgreSQL server binaries, for the store contract suite (tests start their
    own server in a temporary directory; the system cluster is never created or started)."""
    if glob.glob("/usr/lib/postgresql/*/bin/pg_ctl") or shutil.which("pg_ctl"):
        return
    if not shutil.which("apt-get"):
        print("warning: no PostgreSQL and no apt-get: PostgreSQL tests will skip", flush=True)
        return
    step("installing PostgreSQL server binaries (apt-get install postgresql)")
    conf = Path("/etc/postgresql-common/createcluster.conf")
    if os.geteuid() == 0 and not conf.exists():
        # Keep Debian from creating and starting its own cluster on port 5432.
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("create_main_cluster = false\n")
    _apt("install", "-y", "-q", "--no-install-recommends", "postgresql")


def test(args: list[str]) -> int:
    ensure_venv("test")
    ensure_postgresql()
    ensure_chromium()
    ensure_promtool()
    ensure_docker_compose()
    step("ruff check")
    if subprocess.call(
        [str(BIN / "ruff"), "check", "gateway", "tests", "bench", "dev.py"], cwd=ROOT
    ):
        return 1
    step("mypy --strict gateway")
    if subprocess.call([str(BIN / "mypy")], cwd=ROOT):
        return 1
    # Two runs: the suite on TEST_WORKERS processes (pytest-xdist; 4 on 2 cores, as most tests
    # wait on sockets and timers; tests/conftest.py's XDIST_GROUPS run one after the other on
    # one worker), then, alone, the tests marked serial (timing bounds, several gateway
    # processes: tests/conftest.py's SERIAL). --durations: CI's log names the slowest tests,
    # so a slow one is seen when it comes in. The last line is the total of both runs.
    pytest = [str(BIN / "python"), "-m", "pytest", "--durations=25"]
    workers = os.environ.get("TEST_WORKERS", "4")
    runs = [
        (f"pytest on {workers} workers (all but the serial tests)",
         ["-n", workers, "--dist", "loadgroup", "-m", "not serial"]),
        ("pytest, the serial tests alone", ["-m", "serial"]),
    ]  # fmt: skip
    codes, totals = [], dict.fromkeys(("passed", "failed", "error", "skipped"), 0)
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in runs:
            step(name)
            tally = Path(tmp) / "tally.json"
            tally.unlink(missing_ok=True)
            env = {**os.environ, "GATEWAY_TEST_TALLY": str(tally)}
            codes.append(subprocess.call([*pytest, *extra, *args], cwd=ROOT, env=env))
            counts = json.loads(tally.read_text()) if tally.exists() else {}
            for kind in totals:
                totals[kind] += int(counts.get(kind, 0))
    print(
        f"total: {totals['passed']} passed, {totals['failed'] + totals['error']} failed, "
        f"{totals['skipped']} skipped",
        flush=True,
    )
    # 5 is pytest's "no tests ran": fine for one run (a -k that selects only serial tests),
    # not for both.
    failed = [code for code in codes if code not in (0, 5)]
    return failed[0] if failed else (5 if set(codes) == {5} else 0)


def lock(_args: list[str]) -> int:
    """Re-resolve both lock files with pip-tools (in a throw-away environment), with the
    hashes of every file of every pinned release. Review the diff, run the tests, commit."""
    with tempfile.TemporaryDirectory() as tmp:
        step("installing pip-tools into a temporary environment")
        venv.EnvBuilder(with_pip=True).create(tmp)
        tool = Path(tmp) / "bin"
        subprocess.run(
            [str(tool / "python"), "-m", "pip", "install", "-q", "pip-tools"], check=True
        )
        env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "python3 dev.py lock"}
        for name, extra in (("runtime", []), ("test", ["--extra", "test"])):
            step(f"resolving requirements/{name}.lock")
            subprocess.run(
                [
                    str(tool / "pip-compile"),
                    "-q",
                    "--upgrade",
                    "--generate-hashes",
                    "--strip-extras",
                    "--no-emit-index-url",
                    "--no-emit-find-links",
                    *extra,
                    "-o",
                    str(LOCKS / f"{name}.lock"),
                    "pyproject.toml",
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
    return 0


def main() -> int:
    commands = {"serve": serve, "test": test, "lock": lock}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 64
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
