"""The jump guard: no provider's first attempts jump past the model's spike allowance, whoever picks the action."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.actions import MIN_SHARE, action_to_share
from core.features import LAYOUT
from core.guard import GuardedSends, JumpGuard
from envs.dynamics import jump_guard
from envs.scenario import get_scenario
from envs.simulator import Simulator
from envs.warmup_env import WarmupVectorEnv

P = 5
GUARD = JumpGuard(1.6, np.array([250.0, 150.0, 150.0, 75.0, 250.0]))

emails = st.floats(0.0, 1e8, allow_nan=False)
batch = st.integers(1, 6)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_guarded_volume_never_exceeds_the_cap_and_actions_within_it_are_untouched(data: st.DataObject) -> None:
    n = data.draw(batch)
    action = data.draw(arrays(np.float32, (n, P), elements=st.floats(-1, 1, width=32)))
    available = data.draw(arrays(np.float64, (n, P), elements=emails))
    last = data.draw(arrays(np.float64, (n, P), elements=emails))
    guarded, volume = GUARD.limit(action, available, last)
    caps = GUARD.caps(last)
    minimum = np.floor(MIN_SHARE * available)  # the action space's smallest share
    assert np.all(volume <= np.maximum(caps, minimum))
    assert np.all(guarded <= action)
    np.testing.assert_array_equal(volume, np.floor(action_to_share(guarded) * available))
    within = np.floor(action_to_share(action) * available) <= caps
    np.testing.assert_array_equal(guarded[within], action[within])


def test_an_action_whose_whole_emails_are_within_the_cap_is_untouched() -> None:
    """Found by review: a share of 397.5 emails sends 397, which is the cap, so nothing is lowered."""
    from core.actions import share_to_action

    guard = JumpGuard(1.6, np.full(P, 250.0))
    assert guard.caps(np.zeros((1, P)))[0, 0] == 397
    action = share_to_action(np.full((1, P), 0.3975))
    available = np.full((1, P), 1000.0)
    assert np.floor(action_to_share(action) * available)[0, 0] == 397
    guarded, volume = guard.limit(action, available, np.zeros((1, P)))
    np.testing.assert_array_equal(guarded, action)
    assert volume[0, 0] == 397


def test_the_cap_is_the_allowance_over_the_larger_of_last_day_and_base_less_the_margin() -> None:
    caps = GUARD.caps(np.array([[0.0, 1000.0, 10.0, 10_000.0, 250.0]]))[0]
    np.testing.assert_allclose(caps, np.floor(1.6 * 0.999 * np.array([250, 1000, 150, 10_000, 250]) - 2))


@pytest.mark.parametrize("allowance, base, message", [
    (1.0, [100.0] * P, "allowance must be a finite number above 1"),
    (float("nan"), [100.0] * P, "allowance must be a finite number above 1"),
    (1.6, [0.5] * P, "base must be a list of finite emails/day >= 1"),
    (1.6, [[100.0] * P], "base must be a list"),
])
def test_a_malformed_guard_is_refused(allowance: float, base: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JumpGuard(allowance, np.array(base))


def _spikes_outside_the_documented_limits(scenario: str, steps_with_full_volume: int, **overrides: object) -> tuple:
    """Play random actions (every third day all the mail) through the guard in the simulator; return spike cells
    that neither a cold acceptance below the guard's base nor the smallest share explains, and all spike cells."""
    sc = get_scenario(scenario, **overrides)
    guard = jump_guard(sc)
    n = 256
    sim = Simulator(sc, n)
    rng = np.random.default_rng(steps_with_full_volume)
    sim.reset(rng)
    last = np.zeros((n, P))
    unexplained = spikes = 0
    for day in range(sim.horizon):
        available = sim.params.demand + sim.state.backlog.sum(-1)
        caps = guard.caps(last)
        wanted = np.ones((n, P), np.float32) if day % 3 == 0 else rng.uniform(-1, 1, (n, P)).astype(np.float32)
        action, volume = guard.limit(wanted, available, last)
        outcome = sim.step(action, rng).outcome
        np.testing.assert_array_equal(volume, outcome.first_attempts)
        spike = outcome.spike_excess > 0
        explained = (np.floor(MIN_SHARE * available) > caps) | (sim.params.cold_capacity < guard.base)
        spikes += spike.sum()
        unexplained += (spike & ~explained).sum()
        last = outcome.first_attempts.astype(np.float64)
    return unexplained, spikes


@pytest.mark.parametrize("scenario, overrides", [
    ("NewIP-v1", {}), ("AddIP-v1", {}), ("Rewarm-v1", {}), ("Randomized-v1", {}),
    ("Randomized-v1", {"profile": "big-sender"}),
])
def test_the_guard_leaves_no_jump_the_model_punishes_in_the_simulator(scenario: str, overrides: dict) -> None:
    unexplained, _ = _spikes_outside_the_documented_limits(scenario, 1, **overrides)
    assert unexplained == 0


def test_without_the_guard_the_same_actions_jump() -> None:
    """The control: the actions the guard is given would jump (so the test above could fail)."""
    sc = get_scenario("NewIP-v1")
    sim = Simulator(sc, 64)
    rng = np.random.default_rng(0)
    sim.reset(rng)
    outcome = sim.step(np.ones((64, P), np.float32), rng).outcome
    assert (outcome.spike_excess > 0).all()


def test_the_observation_guard_follows_what_was_actually_sent() -> None:
    """Reading yesterday's share and available mail from observations, the guard's estimate of yesterday's first
    attempts is within an email of the simulator's, even when the actions sent are not the guarded ones."""
    sc = get_scenario("NewIP-v1")
    guard = jump_guard(sc)
    env = WarmupVectorEnv(32, sc)
    obs, _ = env.reset(seed=4)
    watcher = GuardedSends(guard)
    rng = np.random.default_rng(4)
    for _ in range(30):
        proposed = rng.uniform(-1, 1, (32, P)).astype(np.float32)
        guarded = watcher.observed(proposed, obs, None)
        sent = np.clip(guarded + rng.normal(0, 0.05, guarded.shape), -1, 1).astype(np.float32)  # a noisy scheduler
        obs, _, _, _, info = env.step(sent)
        share = 10.0 ** LAYOUT.provider_block(np.asarray(obs, np.float64), "warmup_share_log10")
        estimate = np.floor(share * watcher.available)
        assert np.abs(estimate - info["first_attempts"]).max() <= 1


def test_a_trained_run_acts_through_its_guard_and_never_jumps() -> None:
    """A run trained with ``jump_guard: true`` (the default config) guards its own actions: played with no help
    from the env, its episodes show no jump but where a provider's cold acceptance lies below the guard's base."""
    from export_helpers import exported

    from agents.ppo import load_run_policy

    run, _ = exported()
    policy = load_run_policy(run)
    assert policy.guard is not None
    env = WarmupVectorEnv(16, "NewIP-v1", demand=400_000)
    obs, _ = env.reset(seed=11)
    start = np.ones(16, bool)
    base = policy.guard.guard.base
    jumps = 0
    for _ in range(30):
        action, _ = policy.predict(obs, episode_start=start)
        start = np.zeros(16, bool)
        obs, _, _, _, info = env.step(action)
        jumps += int(((info["spike_excess"] > 0) & (env.sim.params.cold_capacity >= base)).sum())
    assert jumps == 0
    guard = policy.guard.guard
    policy.guard = None  # the control: the network alone asks for more on day 1 than the guard allows
    obs, _ = env.reset(seed=11)
    action, _ = policy.predict(obs, episode_start=np.ones(16, bool))
    _, _, _, _, info = env.step(action)
    assert (info["first_attempts"] > guard.caps(np.zeros((16, P)))).any()
