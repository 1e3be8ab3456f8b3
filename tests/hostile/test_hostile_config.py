"""The intake's hostile-client keys: each bad value stops start-up naming its key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway import config as config_module
from gateway.core.errors import ConfigError

BASE: dict[str, Any] = {
    "smtp": {"hostname": "gateway.test"},
    "bounce": {"domain": "bounces.gateway.test", "secret": "s" * 32},
}


def _load(**smtp: Any) -> config_module.Config:
    return config_module.from_dict({**BASE, "smtp": {**BASE["smtp"], **smtp}})


def test_defaults() -> None:
    smtp = _load().smtp
    assert (smtp.max_sessions_per_client, smtp.max_sessions_per_network) == (20, 50)
    assert smtp.max_connections_per_minute == 60
    assert (smtp.trusted_sessions_per_client, smtp.trusted_connections_per_minute) == (None, None)
    assert smtp.session_lifetime == timedelta(minutes=30)
    assert smtp.min_data_rate == 500
    assert (smtp.error_soft_limit, smtp.error_hard_limit) == (20, 50)
    assert smtp.greeting_delay == timedelta(seconds=1)
    assert smtp.max_hops == 50
    assert smtp.postmaster_address == ""


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_sessions_per_client", 0),
        ("max_sessions_per_client", "many"),
        ("max_sessions_per_client", 60),  # above max_sessions_per_network (50)
        ("max_sessions_per_network", -1),
        ("max_connections_per_minute", 0),
        ("trusted_sessions_per_client", -3),
        ("trusted_connections_per_minute", "x"),
        ("session_lifetime", "0s"),
        ("session_lifetime", "forever"),
        ("min_data_rate", -1),
        ("error_soft_limit", 0),
        ("error_soft_limit", 60),  # above error_hard_limit (50)
        ("error_hard_limit", 0),
        ("greeting_delay", "10m"),  # not shorter than command_timeout (5m)
        ("greeting_delay", "soon"),
        ("max_hops", 0),
        ("postmaster_address", "not an address"),
        ("postmaster_address", "postmaster@bounces.gateway.test"),  # a loop
        ("postmaster_address", "ops@gateway.test"),  # a loop
    ],
)
def test_a_bad_value_names_its_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(**{key: value})
    assert caught.value.key == f"smtp.{key}"


def test_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[smtp]\nhostname = "gateway.test"\n[bounce]\nsecret = "' + "s" * 32 + '"\n')
    loaded = config_module.load(
        path, env={"GATEWAY__SMTP__MAX_HOPS": "30", "GATEWAY__SMTP__SESSION_LIFETIME": '"10m"'}
    )
    assert loaded.smtp.max_hops == 30
    assert loaded.smtp.session_lifetime == timedelta(minutes=10)
