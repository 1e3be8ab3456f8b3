#!/usr/bin/env python3
"""Bootstrap and run the gateway or its tests on a machine that has only python3.

    python3 dev.py serve    # install into .venv, start the gateway (SQLite, example config)
    python3 dev.py test     # install into .venv (with test extras), lint, run every test

Extra arguments go to the command (``python3 dev.py test -k relay``). The virtual
environment is made once in ``.venv`` and refreshed when ``pyproject.toml`` changes.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed"


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project (editable) with ``extras`` when needed."""
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and (BIN / "python").exists():
        return
    if not (BIN / "python").exists():
        step(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    step("installing the gateway and its dependencies (pip)")
    target = f".[{extras}]" if extras else "."
    subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-e",
            target,
        ],
        cwd=ROOT,
        check=True,
    )
    STAMP.write_text(want)


def serve(args: list[str]) -> int:
    ensure_venv("")
    config = os.environ.get("GATEWAY_CONFIG", "config/gateway.toml")
    step(f"starting the gateway with {config} (Ctrl-C or SIGTERM to stop)")
    return subprocess.call([str(BIN / "gateway"), "--config", config, "serve", *args], cwd=ROOT)


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
    """promtool only, unpacked from Debian's prometheus package: no service is started."""
    target = BIN / "promtool"
    if target.exists() or shutil.which("promtool") or not shutil.which("apt-get"):
        return
    step("unpacking promtool from Debian's prometheus package (apt-get download + dpkg -x)")
    if not _apt_updated:  # `apt-get download` needs the package lists
        _apt("--version")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "prometheus"], cwd=tmp, check=True)
        [deb] = glob.glob(f"{tmp}/prometheus_*.deb")
        subprocess.run(["dpkg-deb", "-x", deb, f"{tmp}/x"], check=True)
        shutil.copy2(f"{tmp}/x/usr/bin/promtool", target)


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
    step("pytest (the whole suite)")
    return subprocess.call([str(BIN / "python"), "-m", "pytest", *args], cwd=ROOT)


def main() -> int:
    commands = {"serve": serve, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 64
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
