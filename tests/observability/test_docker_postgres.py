"""docker/compose.postgres.yaml: two gateway nodes on one PostgreSQL, checked without an engine.

- ``docker compose config`` (v2 plugin) or Debian's ``docker-compose config``: the file parses,
  interpolates and resolves; with no compose client at all the test is skipped, except in CI
  (``tests/observability/tools.py``: CI installs one, so a missing client is a failure).
- It refuses to resolve without the secrets (database password, bounce secret, admin token).
- The resolved environment of each node, on ``config/gateway.toml`` plus the Dockerfile's
  environment, is a configuration the gateway loads: a PostgreSQL ``store.url`` on the
  ``postgres`` service, distinct ``relay.node_id`` values, the same database for both.

Nothing here builds an image or starts a container.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gateway import config as config_module
from tests.observability.tools import find, in_ci

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.postgres.yaml"
ENV = {
    "POSTGRES_PASSWORD": "compose-check-db-password-0123",
    "GATEWAY_BOUNCE_SECRET": "compose-check-bounce-secret-0123",
    "GATEWAY_ADMIN_TOKEN": "compose-check-admin-token-0123",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}
NODES = ("gateway-1", "gateway-2")


def compose_command() -> list[str]:
    """``docker compose`` when the v2 plugin answers, else ``docker-compose``; without either,
    skip (or fail in CI)."""
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
    message = "no docker compose client (docker CLI with the compose plugin, or docker-compose)"
    if in_ci():
        pytest.fail(f"{message}; CI must install one", pytrace=False)
    pytest.skip(message)


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )


def _scalar(text: str) -> str:
    """A YAML scalar as ``compose config`` prints it (plain, '…' or "…") to its string."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return str(json.loads(text))
    return text


def resolved() -> tuple[str, dict[str, dict[str, str]]]:
    """The resolved file, and each service's environment read from it (no YAML library in
    the venv: the output of both clients is regular enough for two patterns)."""
    result = compose_config(ENV)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    services: dict[str, dict[str, str]] = {}
    current = None
    for line in out.splitlines():
        if header := re.fullmatch(r"  ([A-Za-z0-9_.-]+):", line):
            current = services.setdefault(header.group(1), {})
        elif current is not None and (item := re.fullmatch(r"      ([A-Z][A-Z0-9_]*): (.*)", line)):
            current[item.group(1)] = _scalar(item.group(2))
    return out, services


def test_compose_postgres_config_resolves() -> None:
    out, services = resolved()
    assert set(services) >= {"postgres", *NODES}, list(services)
    assert re.search(r"image: postgres:\d+", out)
    # The admin listeners are published on host loopback only (v1 short form, v2 long form).
    for host_port in ("8025", "8026"):
        assert f"127.0.0.1:{host_port}:8025" in out or (
            "host_ip: 127.0.0.1" in out and f'published: "{host_port}"' in out
        ), host_port
    for node in NODES:
        url = services[node]["GATEWAY__STORE__URL"]
        assert ENV["POSTGRES_PASSWORD"] in url
        assert "@postgres:5432/" in url


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "GATEWAY_BOUNCE_SECRET"])
def test_compose_postgres_refuses_to_start_without_the_secrets(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    result = compose_config(env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_each_nodes_environment_is_a_valid_gateway_config() -> None:
    """Each node's resolved environment (plus the Dockerfile's) on config/gateway.toml loads:
    both on the same PostgreSQL database, each with its own node id."""
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    base = dict(re.findall(r"(GATEWAY__[A-Z_]+)='([^']*)'", dockerfile))
    _, services = resolved()
    loaded = []
    for node in NODES:
        env = base | services[node]
        cfg = config_module.load(ROOT / "config/gateway.toml", env=env)
        loaded.append(cfg)
        assert cfg.store.url.startswith("postgresql://")
        assert cfg.relay.node_id == node
        assert cfg.bounce.secret == ENV["GATEWAY_BOUNCE_SECRET"]
        # The lease must outlast one slow delivery attempt, or it is taken over and sent
        # twice: the bound the gateway warns about at start.
        assert cfg.relay.lease > cfg.relay.slow_attempt, (cfg.relay.lease, cfg.relay.slow_attempt)
    assert loaded[0].store.url == loaded[1].store.url
    assert loaded[0].relay.node_id != loaded[1].relay.node_id
