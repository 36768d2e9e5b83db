"""Each heuristic reacts as its rule says: fed bad metrics it holds or backs off; memory resets per episode."""

from __future__ import annotations

import numpy as np
import pytest

from agents.heuristics import (
    AIMD,
    AIMD_BACKOFF,
    AIMD_GROWTH,
    SES_MANAGED_CUT,
    SES_MANAGED_GROWTH,
    SES_MANAGED_START,
    BrazeAutomated,
    SESManaged,
)
from agents.schedules import get_schedule
from core.features import OBS_SIZE
from envs import LAYOUT, PROVIDERS, action_to_share

DEMAND = np.array([16_000.0, 8_000, 6_000, 4_000, 6_000])
HEALTHY = {"delivered_rate": 0.99, "bounce_rate": 0.01, "complaint_rate": 0.0002, "open_rate": 0.3}


def make_obs(day: int, share: np.ndarray | float = 1e-4, sent: np.ndarray | float = 0.0, **rates: float) -> np.ndarray:
    """One observation row as the env would build it; ``rates`` override the healthy per-provider rates."""
    obs = np.zeros(OBS_SIZE, np.float32)
    values = {**HEALTHY, **rates}
    for i, p in enumerate(PROVIDERS):
        obs[LAYOUT.index(p, "demand_log10")] = np.log10(1 + DEMAND[i])
        obs[LAYOUT.index(p, "warmup_share_log10")] = np.log10(np.broadcast_to(share, (5,))[i])
        obs[LAYOUT.index(p, "sent_log10")] = np.log10(1 + np.broadcast_to(sent, (5,))[i])
        for name, value in values.items():
            obs[LAYOUT.index(p, name)] = np.broadcast_to(value, (5,))[i]
    obs[LAYOUT.index(None, "day")] = day
    return obs


def volume(action: np.ndarray) -> np.ndarray:
    return action_to_share(action) * DEMAND


def test_braze_follows_moderate_when_healthy() -> None:
    policy, moderate = BrazeAutomated(), get_schedule("braze-moderate")
    for d in range(6):
        action, _ = policy.predict(make_obs(d, sent=1_000.0), episode_start=np.array([d == 0]))
        np.testing.assert_allclose(volume(action).sum(), moderate.volume(np.array([d + 1]), DEMAND[None]).sum(),
                                   rtol=1e-4)


@pytest.mark.parametrize("bad", [{"delivered_rate": 0.90}, {"bounce_rate": 0.051}, {"complaint_rate": 0.0011},
                                 {"open_rate": 0.09}])
def test_braze_holds_volume_flat_on_bad_metrics(bad: dict[str, float]) -> None:
    policy = BrazeAutomated()
    policy.predict(make_obs(0), episode_start=np.array([True]))
    day2, _ = policy.predict(make_obs(1, sent=50.0))
    held, _ = policy.predict(make_obs(2, sent=100.0, **bad))
    np.testing.assert_allclose(volume(held), volume(day2), rtol=1e-5)
    resumed, _ = policy.predict(make_obs(3, sent=100.0))
    assert volume(resumed).sum() > volume(held).sum() * 2  # moderate: 100 -> 500


def test_braze_memory_is_per_env_and_resets_on_episode_start() -> None:
    policy = BrazeAutomated()
    batch = np.stack([make_obs(0), make_obs(0)])
    policy.predict(batch, episode_start=np.array([True, True]))
    for d in range(1, 5):
        policy.predict(np.stack([make_obs(d, sent=100.0), make_obs(d, sent=100.0, bounce_rate=0.2)]))
    assert policy.memory["step"].tolist() == [5.0, 1.0]
    action, _ = policy.predict(np.stack([make_obs(5, sent=100.0), make_obs(5, sent=100.0)]),
                               episode_start=np.array([True, False]))
    assert policy.memory["step"].tolist() == [1.0, 2.0]
    np.testing.assert_allclose(volume(action[0]).sum(), 50.0, rtol=1e-4)


def test_aimd_backs_off_on_deferrals_and_grows_otherwise() -> None:
    share = np.full(5, 0.1)
    deferred = np.array([0.2, 0.0, 0.0, 0.0, 0.0])
    blocked = np.array([0.0, 0.0, 0.06, 0.0, 0.0])
    action, _ = AIMD().predict(make_obs(3, share=share, sent=1_000.0, deferred_rate=deferred, blocked_rate=blocked))
    expected = 0.1 * np.array([1 / AIMD_BACKOFF, AIMD_GROWTH, 1 / AIMD_BACKOFF, AIMD_GROWTH, AIMD_GROWTH])
    np.testing.assert_allclose(action_to_share(action), expected, rtol=1e-4)


def test_aimd_starts_with_a_few_hundred_per_provider() -> None:
    action, _ = AIMD().predict(make_obs(0))
    np.testing.assert_allclose(volume(action), 500.0, rtol=1e-4)


def test_ses_managed_grows_when_healthy_cuts_on_bad_metrics_and_follows_volume_down() -> None:
    policy = SESManaged()
    first, _ = policy.predict(make_obs(0), episode_start=np.array([True]))
    np.testing.assert_allclose(volume(first), SES_MANAGED_START, rtol=1e-4)
    sent = np.array([1_000.0, 1_000, 1_000, 1_000, 300])  # 'other' sent much less than its level
    complaint = np.array([0.0, 0.01, 0.0, 0.0, 0.0])
    deferred = np.array([0.0, 0.0, 0.5, 0.0, 0.0])
    action, _ = policy.predict(make_obs(1, sent=sent, complaint_rate=complaint, deferred_rate=deferred))
    expected = [SES_MANAGED_START * SES_MANAGED_GROWTH, SES_MANAGED_START * SES_MANAGED_CUT,
                SES_MANAGED_START * SES_MANAGED_CUT, SES_MANAGED_START * SES_MANAGED_GROWTH, SES_MANAGED_START]
    np.testing.assert_allclose(volume(action), expected, rtol=1e-4)


def test_ses_managed_ignores_apple_complaints_it_cannot_see() -> None:
    """iCloud has no feedback loop; a complaint rate there (never observed in practice) must not cut the level."""
    policy = SESManaged()
    policy.predict(make_obs(0))
    action, _ = policy.predict(make_obs(1, sent=1_000.0, complaint_rate=np.array([0, 0, 0, 0.5, 0])))
    assert volume(action)[3] == pytest.approx(SES_MANAGED_START * SES_MANAGED_GROWTH, rel=1e-4)
