"""Property tests: over random scenarios, seeds and actions, counts add up and observations stay valid."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
from envs.warmup_env import WarmupEnv, WarmupVectorEnv

P = len(envs.PROVIDERS)
COUNTS = ("sent", "delivered", "inbox", "junk", "deferred", "bounced", "blocked", "complaints", "opens", "expired",
          "overflow", "overflow_delivered", "overflow_inbox", "overflow_bounced", "overflow_complaints", "trap_hits",
          "queued", "first_attempts", "backlog")

scenario_ids = st.sampled_from([name.removeprefix("ipwarmup/") for name in envs.ENV_IDS])
overrides = st.fixed_dictionaries(
    {},
    optional={
        "demand": st.floats(1.0, 5e6),
        "list_quality": st.floats(0.0, 1.0),
        "overflow": st.sampled_from(["shared_pool", "warm_pool", "none"]),
        "retry_window_hours": st.floats(1.0, 240.0),
        "audience_order": st.sampled_from(["engaged_first", "random"]),
        "randomize": st.booleans(),
        "anchor_share": st.floats(0.0, 1.0),
        "capacity_noise": st.floats(0.0, 0.5),
        "tier_complaint_rate": st.tuples(*[st.floats(0.0, 0.05)] * 4),
        "tier_unknown_user_rate": st.tuples(*[st.floats(0.0, 0.3)] * 4),
        "tier_trap_rate": st.tuples(*[st.floats(0.0, 0.01)] * 4),
        "cold_capacity_spread": st.floats(0.0, 2.0),
        "pool_headroom": st.floats(0.0, 3.0),
        "engagement_noise": st.floats(0.0, 1.0),
        "inbox_noise": st.floats(0.0, 0.5),
    },
)
# Actions include the edges, values outside [-1, 1] (clipped) and long runs of one value.
action_value = st.one_of(st.floats(-1.0, 1.0, width=32), st.sampled_from([-1.0, 1.0, -3.0, 2.5, 0.0]))
actions = st.lists(st.lists(action_value, min_size=P, max_size=P), min_size=1, max_size=24)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(scenario: str, extra: dict[str, Any], seed: int, acts: list[list[float]]) -> list[tuple[Any, ...]]:
    env = WarmupEnv(scenario, horizon=12, **extra)
    obs, info = env.reset(seed=seed)
    records: list[tuple[Any, ...]] = [(obs, 0.0, False, False, info)]
    for a in acts:
        obs, reward, terminated, truncated, info = env.step(np.asarray(a, np.float32))
        records.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            records.append((obs, 0.0, False, False, info))
    return records


def _check_step(env: WarmupEnv, obs: np.ndarray, reward: float, info: dict[str, Any]) -> None:
    for key in COUNTS:
        assert info[key].dtype == np.int64 and info[key].shape == (P,), key
        assert (info[key] >= 0).all(), (key, info[key])
    assert np.array_equal(info["sent"], info["delivered"] + info["deferred"] + info["bounced"] + info["blocked"])
    assert np.array_equal(info["delivered"], info["inbox"] + info["junk"])
    assert (info["complaints"] <= info["inbox"]).all() and (info["opens"] <= info["inbox"]).all()
    assert (info["first_attempts"] <= info["sent"]).all() and (info["backlog"] <= info["queued"]).all()
    assert (info["trap_hits"] <= info["first_attempts"]).all()
    assert np.array_equal(info["overflow"], info["overflow_delivered"] + info["overflow_bounced"])
    assert (info["overflow_inbox"] <= info["overflow_delivered"]).all()
    assert (info["overflow_complaints"] <= info["overflow_inbox"]).all()
    assert -1 <= info["postmaster_band"] <= 3 and -1 <= info["snds_colour"] <= 2
    assert ((info["reputation"] >= 0) & (info["reputation"] <= 1)).all()
    assert obs.dtype == np.float32 and np.isfinite(obs).all() and env.observation_space.contains(obs)
    assert np.isfinite(reward)


@SETTINGS
@given(scenario=scenario_ids, extra=overrides, seed=st.integers(0, 2**32 - 1), acts=actions)
def test_counts_add_up_and_observations_valid(
    scenario: str, extra: dict[str, Any], seed: int, acts: list[list[float]]
) -> None:
    env = WarmupEnv(scenario, horizon=12, **extra)
    obs, info = env.reset(seed=seed)
    _check_step(env, obs, 0.0, info)
    routed = env.scenario.overflow != "none"
    for a in acts:
        obs, reward, terminated, truncated, info = env.step(np.asarray(a, np.float32))
        _check_step(env, obs, reward, info)
        if info["day"] == 1:  # day 1's mail goes to the new IP, the overflow route or the backlog, never lost
            assert np.array_equal(info["first_attempts"] + info["overflow"] + info["backlog"],
                                  info["demand_by_provider"])
        if not routed:
            assert info["overflow"].sum() == 0
        assert not (terminated and truncated)
        if terminated or truncated:
            obs, info = env.reset()
            _check_step(env, obs, 0.0, info)


@SETTINGS
@given(scenario=scenario_ids, extra=overrides, seed=st.integers(0, 2**32 - 1), acts=actions)
def test_same_seed_same_episode(scenario: str, extra: dict[str, Any], seed: int, acts: list[list[float]]) -> None:
    first, second = _run(scenario, extra, seed, acts), _run(scenario, extra, seed, acts)
    for a, b in zip(first, second, strict=True):
        assert a[0].tobytes() == b[0].tobytes() and a[1:4] == b[1:4]
        for key in (*COUNTS, "reputation", "demand_by_provider"):
            assert a[4][key].tobytes() == b[4][key].tobytes(), key


@settings(max_examples=15, deadline=None)
@given(extra=overrides, seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), days=st.integers(1, 20))
def test_vector_env_counts_add_up(extra: dict[str, Any], seed: int, n: int, days: int) -> None:
    """The batched env keeps the same accounting in every row, across autoresets."""
    vec = WarmupVectorEnv(n, "NewIP-v1", horizon=5, **extra)
    vec.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(days):
        obs, reward, _, _, info = vec.step(rng.uniform(-1.2, 1.2, size=(n, P)).astype(np.float32))
        for key in COUNTS:
            assert info[key].dtype == np.int64 and (info[key] >= 0).all(), key
        assert np.array_equal(info["sent"], info["delivered"] + info["deferred"] + info["bounced"] + info["blocked"])
        assert np.array_equal(info["delivered"], info["inbox"] + info["junk"])
        assert obs.dtype == np.float32 and vec.observation_space.contains(obs) and np.isfinite(reward).all()
