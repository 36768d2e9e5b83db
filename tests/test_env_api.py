"""The Gymnasium contract of every registered id: checkers, the vector twin, seeding, what is observed."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.env_match import check_environments_match
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from core.actions import MIN_SHARE, share_to_action
from core.features import LAYOUT, N_PROVIDER_FEATURES, OBS_SIZE
from envs.families import EpisodeParams, draw_episode_params, reputation_rate
from envs.profiles import (
    TRAIN_DEMAND,
    TRAIN_LIST_QUALITY,
    TRAIN_MAX_MICROSOFT_SHARE,
    TRAIN_WARMUP_DAYS,
)

APPLE = envs.PROVIDERS.index("apple")


def _episode(env_id: str, seed: int, steps: int, **overrides: Any) -> list[tuple[Any, ...]]:
    """(obs, reward, terminated, truncated, info) for ``steps`` seeded random actions, resetting at episode ends."""
    env = gymnasium.make(env_id, **overrides)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed + 1)
    out: list[tuple[Any, ...]] = [(obs, 0.0, False, False, info)]
    for _ in range(steps):
        action = rng.uniform(-1.0, 1.0, size=len(envs.PROVIDERS)).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs, 0.0, False, False, info))
    return out


def _same(a: Any, b: Any) -> bool:
    """Bit-for-bit equality of (nested) episode records."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b


def test_all_scenarios_registered() -> None:
    assert envs.ENV_IDS == (
        "ipwarmup/NewIP-v1",
        "ipwarmup/AddIP-v1",
        "ipwarmup/SelfHosted-v1",
        "ipwarmup/Rewarm-v1",
        "ipwarmup/Randomized-v1",
    )
    for env_id in envs.ENV_IDS:
        assert gymnasium.spec(env_id).vector_entry_point == "envs.warmup_env:WarmupVectorEnv"


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_gymnasium_check_env_without_warnings(env_id: str) -> None:
    """Gymnasium's checker (it steps, seeds and inspects spaces) raises and warns about nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gymnasium.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_sb3_check_env_without_warnings(env_id: str) -> None:
    """SB3's checker also complains about unbounded or asymmetric spaces; none of that applies here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(gymnasium.make(env_id), warn=True)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_passive_checker_quiet_over_an_episode(env_id: str) -> None:
    """gymnasium.make wraps the env in the passive checker; a full short episode must not trigger it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _episode(env_id, seed=0, steps=12, horizon=5)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("seed", [0, 7])
def test_vector_twin_matches_single_env(env_id: str, seed: int) -> None:
    """The numpy-batched vector env equals a SyncVectorEnv of WarmupEnv step for step, across autoresets."""
    vector = gymnasium.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", horizon=5)
    sync = gymnasium.make_vec(env_id, num_envs=1, vectorization_mode="sync", horizon=5)
    check_environments_match(
        vector, sync, num_steps=17, seed=seed, skip_render=True, info_comparison="equivalence"
    )


def test_vector_env_steps_many_envs_independently() -> None:
    """Rows of a batched env are independent episodes: different seeds' rows differ, all stay in space."""
    vec = gymnasium.make_vec("ipwarmup/Randomized-v1", num_envs=4, vectorization_mode="vector_entry_point", horizon=3)
    obs, _ = vec.reset(seed=3)
    done_seen = np.zeros(4, bool)
    for _ in range(7):
        obs, reward, terminated, truncated, info = vec.step(np.zeros((4, len(envs.PROVIDERS)), np.float32))
        assert vec.observation_space.contains(obs)
        assert info["sent"].shape == (4, len(envs.PROVIDERS)) and info["sent"].dtype == np.int64
        done_seen |= truncated
    assert done_seen.all()
    assert not np.array_equal(obs[0], obs[1])


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_same_seed_same_episode_bit_for_bit(env_id: str) -> None:
    first = _episode(env_id, seed=11, steps=25, horizon=10)
    second = _episode(env_id, seed=11, steps=25, horizon=10)
    assert _same(first, second)
    other = _episode(env_id, seed=12, steps=25, horizon=10)
    assert not _same(first, other)


def test_info_contract_keys_and_types() -> None:
    env = gymnasium.make("ipwarmup/NewIP-v1")
    _, info = env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(len(envs.PROVIDERS), np.float32))
    for key in ("sent", "delivered", "inbox", "junk", "deferred", "bounced", "blocked", "complaints", "opens",
                "expired", "overflow", "queued", "demand_by_provider"):
        assert info[key].dtype == np.int64 and info[key].shape == (len(envs.PROVIDERS),), key
    assert info["providers"] == envs.PROVIDERS
    assert isinstance(info["demand"], int) and isinstance(info["paused"], bool) and info["day"] == 1
    assert info["reputation"].shape == (len(envs.PROVIDERS),)
    assert isinstance(info["ses_bounce_rate"], float) and isinstance(info["ses_complaint_rate"], float)
    assert not info["fbl"][APPLE] and info["fbl"].sum() == len(envs.PROVIDERS) - 1


def _expected_observation(info: dict[str, Any], share: np.ndarray, next_available: np.ndarray) -> np.ndarray:
    """The observation rebuilt from what a sender sees (info counts, its own action); no hidden state."""
    def rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.where(den > 0, num / np.maximum(den, 1), 0.0)

    per = np.stack(
        [
            np.log10(np.clip(share, MIN_SHARE, 1.0)),
            np.log10(1.0 + info["sent"]),
            rate(info["delivered"], info["sent"]),
            rate(info["deferred"], info["sent"]),
            rate(info["bounced"], info["sent"]),
            rate(info["blocked"], info["sent"]),
            rate(info["complaints"] * info["fbl"], info["delivered"]),
            rate(info["opens"], info["delivered"]),
            np.log10(1.0 + info["expired"]),
            np.log10(1.0 + info["queued"]),
            np.log10(1.0 + next_available),
        ],
        axis=-1,
    )
    band, colour = info["postmaster_band"], info["snds_colour"]
    glob = [info["day"], np.log10(1.0 + info["demand"]), info["ses_bounce_rate"], info["ses_complaint_rate"],
            max(band, 0) / 3, float(band >= 0), max(colour, 0) / 2, float(colour >= 0), *info["audience"]]
    return np.concatenate([per.reshape(-1), glob]).astype(np.float32)


@pytest.mark.parametrize("env_id", ["ipwarmup/NewIP-v1", "ipwarmup/Rewarm-v1", "ipwarmup/Randomized-v1"])
def test_observation_is_built_only_from_observable_counts(env_id: str) -> None:
    """Every feature is a function of the day's observable counts, so hidden reputation cannot leak in."""
    env = gymnasium.make(env_id)
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    for _ in range(20):
        action = rng.uniform(-1.0, 1.0, size=len(envs.PROVIDERS)).astype(np.float32)
        obs, _, terminated, _, info = env.step(action)
        share = envs.action_to_share(action)
        expected = _expected_observation(info, share, info["demand_by_provider"])
        np.testing.assert_allclose(obs, expected, rtol=1e-6, atol=1e-7)
        if terminated:
            break
    assert OBS_SIZE == 67 and not any("reputation" in n for n in LAYOUT.names)


def test_hidden_initial_reputation_does_not_change_the_first_observation() -> None:
    """Rewarm's remaining reputation is hidden: two different hidden starts look the same at reset."""
    low, _ = gymnasium.make("ipwarmup/Rewarm-v1", initial_reputation=(0.4, 0.4)).reset(seed=0)
    high, info = gymnasium.make("ipwarmup/Rewarm-v1", initial_reputation=(0.6, 0.6)).reset(seed=0)
    assert np.allclose(info["reputation"], 0.6)
    assert np.array_equal(low, high)


def test_icloud_complaints_are_invisible() -> None:
    """Apple has no feedback loop: even with many true complaints its complaint_rate feature stays 0."""
    env = gymnasium.make("ipwarmup/NewIP-v1", tier_complaint_rate=(0.01,) * 4, enforcement="none")
    obs, _ = env.reset(seed=0)
    j = LAYOUT.index("apple", "complaint_rate")
    true_apple, seen_other = 0, 0.0
    for day in range(1, 21):
        obs, _, _, _, info = env.step(np.full(len(envs.PROVIDERS), share_to_action(min(1.0, day / 20))))
        assert obs[j] == 0.0
        true_apple += int(info["complaints"][APPLE])
        seen_other = max(seen_other, float(obs[LAYOUT.index("gmail", "complaint_rate")]))
    assert true_apple > 0 and seen_other > 0.0
    assert LAYOUT.provider_block(obs[None], "complaint_rate").shape == (1, len(envs.PROVIDERS))
    assert j == APPLE * N_PROVIDER_FEATURES + 6


@pytest.mark.parametrize("profile", sorted(envs.HELDOUT_PROFILES))
def test_heldout_profiles_through_make(profile: str) -> None:
    env = gymnasium.make("ipwarmup/Randomized-v1", profile=profile)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    spec = envs.HELDOUT_PROFILES[profile]
    if "demand" in spec:
        assert abs(info["demand"] - spec["demand"]) <= len(envs.PROVIDERS)
    if "provider_share" in spec:
        np.testing.assert_allclose(info["demand_by_provider"] / info["demand"], spec["provider_share"], atol=1e-4)
    # The profile is fixed: another seed gives the same episode parameters.
    _, info2 = env.reset(seed=1)
    assert np.array_equal(info["demand_by_provider"], info2["demand_by_provider"])
    _, _, _, _, info = env.step(np.zeros(len(envs.PROVIDERS), np.float32))
    assert info["day"] == 1


ANCHORED_OUTSIDE = {"anchor_share": 0.5, "demand": 2e7, "list_quality": 0.2}
"""An anchor at big-sender's demand and poor-list's list: the anchored draws are clipped into the family."""


@pytest.mark.parametrize("overrides", [{}, {"anchor_share": 0.5}, ANCHORED_OUTSIDE])
def test_training_sampler_never_produces_heldout_profiles(overrides: dict[str, Any]) -> None:
    """1,000 training draws stay inside the training support that every held-out profile leaves, anchored or not,
    even when the anchor itself (the scenario's demand and list) lies outside it."""
    n = 1_000
    scenario = envs.get_scenario("Randomized-v1", **overrides)
    params = EpisodeParams.empty(n)
    draw_episode_params(scenario, np.random.default_rng(0), params, np.ones(n, bool))
    demand = params.demand.sum(-1)
    mix = params.demand / demand[:, None]
    assert mix[:, envs.PROVIDERS.index("microsoft")].max() <= TRAIN_MAX_MICROSOFT_SHARE + 1e-4  # b2b-microsoft 0.6
    assert demand.min() >= TRAIN_DEMAND[0] - 5 and demand.max() <= TRAIN_DEMAND[1] + 5  # big-sender 2e7
    older = params.tier_share[:, -1]
    assert older.max() <= scenario.tier_share(TRAIN_LIST_QUALITY[0])[-1] + 1e-12  # poor-list: quality 0.2
    slowest_rate = reputation_rate(scenario, np.array(TRAIN_WARMUP_DAYS[1]))
    assert params.reputation_rate.min() >= slowest_rate - 1e-12  # slow-providers: 49 days
    # And the draws do cover the training support (the sampler is not degenerate).
    assert demand.max() / demand.min() > 1_000 and params.reputation_rate.std() > 0
    assert 0.1 < np.mean(mix[:, envs.PROVIDERS.index("microsoft")] > 0.3) < 0.4  # business audiences, a quarter
    for name, spec in envs.HELDOUT_PROFILES.items():
        outside = (
            spec.get("provider_share", (0, 0))[1] > TRAIN_MAX_MICROSOFT_SHARE
            or spec.get("demand", TRAIN_DEMAND[0]) > TRAIN_DEMAND[1]
            or spec.get("list_quality", 1.0) < TRAIN_LIST_QUALITY[0]
            or max(spec.get("warmup_days", (0,))) > TRAIN_WARMUP_DAYS[1]
        )
        assert outside, name


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_anchor_share_draws_that_share_of_episodes_from_the_scenarios_own_prior(share: float) -> None:
    """Anchored episodes carry the scenario's demand, mix and list; the rest span the family's ranges."""
    n = 2_000
    scenario = envs.get_scenario("Randomized-v1", anchor_share=share)
    params = EpisodeParams.empty(n)
    draw_episode_params(scenario, np.random.default_rng(0), params, np.ones(n, bool))
    expected = np.rint(scenario.demand * np.asarray(scenario.provider_share)).astype(np.int64)
    anchored = (params.demand == expected).all(-1)
    assert abs(anchored.mean() - share) < 0.04
    np.testing.assert_allclose(params.tier_share[anchored], np.broadcast_to(scenario.tier_share(), (anchored.sum(), 4)))
    # Anchored pace and cold acceptance still vary around the scenario's values, as NewIP-v1's do.
    if anchored.sum() > 1:
        assert params.cold_capacity[anchored].std() > 0
        median = np.median(params.cold_capacity[anchored], axis=0)
        np.testing.assert_allclose(median, scenario.cold_capacity, rtol=0.25)
        pace = np.median(params.reputation_rate[anchored], axis=0)
        np.testing.assert_allclose(pace, reputation_rate(scenario, np.asarray(scenario.warmup_days)), rtol=0.1)
    if (~anchored).sum() > 1:
        assert params.demand[~anchored].sum(-1).max() / params.demand[~anchored].sum(-1).min() > 100


@pytest.mark.parametrize(("overrides", "days"), [({"horizon": 3}, 3)])
def test_stepping_past_the_end_of_an_episode_is_a_clear_error(overrides: dict[str, Any], days: int) -> None:
    """Found by benchmarks/fuzz_env.py: stepping on after truncation used to continue silently."""
    env = envs.WarmupEnv("NewIP-v1", **overrides)
    env.reset(seed=0)
    for _ in range(days):
        *_, truncated, _ = env.step(np.zeros(len(envs.PROVIDERS), np.float32))
    assert truncated
    with pytest.raises(RuntimeError, match="episode is over.*call reset"):
        env.step(np.zeros(len(envs.PROVIDERS), np.float32))
    env.reset(seed=1)
    env.step(np.zeros(len(envs.PROVIDERS), np.float32))  # a new episode steps again


def test_first_day_allowance_is_the_spike_allowance_at_the_priors_median_cold_acceptance() -> None:
    from envs.dynamics import first_day_allowance
    from envs.scenario import get_scenario

    assert first_day_allowance(get_scenario("NewIP-v1")).tolist() == [1_120, 640, 640, 320, 1_120]
    # Randomized draws cold acceptance log-uniformly over 50-10,000, whatever the scenario's own values say
    assert first_day_allowance(get_scenario("Randomized-v1")).tolist() == [1_131] * 5
