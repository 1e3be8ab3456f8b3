"""The tenant pause's verdict and the policy's defaults (issue 15 items 2 and 4), as tables;
the ``[policy]`` keys refused with their names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway import config as config_module
from gateway.core.errors import ConfigError
from gateway.core.tenant_policy import (
    PauseCause,
    PolicyDefaults,
    SuppressedAction,
    TenantPolicy,
    WindowCounts,
    pause_verdict,
    resolve,
)
from gateway.services.pause import policy_defaults

DEFAULTS = resolve(TenantPolicy(), PolicyDefaults())


@pytest.mark.parametrize(
    ("sent", "bounced", "complaints", "cause"),
    [
        (0, 0, 0, None),  # nothing sent
        (470, 29, 0, None),  # 5.8 % bounces but 499 messages: too few to judge
        (475, 25, 0, None),  # exactly 5 %: at the threshold, not over
        (474, 26, 0, PauseCause.BOUNCE_RATE),  # 5.2 %
        (1000, 0, 1, None),  # exactly 0.1 % complaints
        (1000, 0, 2, PauseCause.COMPLAINT_RATE),  # 0.2 %
        (400, 100, 5, PauseCause.BOUNCE_RATE),  # both over: bounces judged first
    ],
)
def test_pause_verdict(sent: int, bounced: int, complaints: int, cause: PauseCause | None) -> None:
    verdict = pause_verdict(WindowCounts(sent, bounced, complaints), DEFAULTS)
    assert verdict.cause is cause
    assert verdict.messages == sent + bounced


def test_a_tenant_s_own_thresholds_win_over_the_defaults() -> None:
    own = TenantPolicy(
        suppressed_action=SuppressedAction.HOLD, hold_window=timedelta(days=2), pause_min_messages=4
    )
    policy = resolve(own, PolicyDefaults())
    assert policy.holds
    assert policy.hold_window == timedelta(days=2)
    assert policy.pause_bounce_rate == 0.05  # the default where the tenant set none
    assert pause_verdict(WindowCounts(3, 1, 0), policy).cause is PauseCause.BOUNCE_RATE
    assert "25.00%" in pause_verdict(WindowCounts(3, 1, 0), policy).sentence()


def test_policy_config_defaults_and_refusals() -> None:
    raw = {"bounce": {"secret": "x" * 20}}
    defaults = policy_defaults(config_module.from_dict(raw).policy)
    assert defaults == PolicyDefaults()
    bad = {"pause_bounce_rate": 5, "suppressed_action": "drop", "hold_window": "soon"}
    for key, value in bad.items():
        with pytest.raises(ConfigError) as refused:
            config_module.from_dict(raw | {"policy": {key: value}})
        assert refused.value.key == f"policy.{key}"
