"""benchmarks/guard_ceiling.py: the never-jump ceiling, and the same planner held to a training prior's day 1."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import guard_ceiling  # noqa: E402


def test_the_prior_s_day_one_costs_the_planner_return(capsys: pytest.CaptureFixture) -> None:
    """On a short NewIP-v1 episode, starting day 1 from the Randomized prior's floor (50 a provider) instead of
    NewIP's true cold acceptance (hundreds) loses return, and the paired line is printed against ses-standard."""
    guard_ceiling.main(["-n", "3", "-w", "1", "--env", "ipwarmup/NewIP-v1:horizon=8"])
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ipwarmup/NewIP-v1")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    nojump, floor, ses = (float(c) for c in cells[1:4])
    assert nojump > floor + 0.5
    assert re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] \d/3", cells[4])
    assert abs(float(cells[4].split()[0]) - (floor - ses)) < 0.011
    assert re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] \d/3", cells[5])  # guarded - plain SES


def test_iqm_table_gives_the_floor_limited_share_of_oracle_reward(capsys: pytest.CaptureFixture) -> None:
    """The second table is each policy's IQM (25% trimmed mean) over the same seeds, and the share is the
    floor-limited planner's IQM over oracle-reward's: the figure issue 13's 95% bar is judged by."""
    env, seeds = "ipwarmup/NewIP-v1:horizon=8", 4
    guard_ceiling.main(["-n", str(seeds), "-w", "1", "--env", env])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {env}")]
    assert len(rows) == 2
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    printed = dict(zip(guard_ceiling.POLICIES, (float(c) for c in cells[1:-1]), strict=True))
    returns = guard_ceiling.returns(env, "ipwarmup/Randomized-v1",
                                    list(range(guard_ceiling.BENCHMARK_SEED_BASE,
                                               guard_ceiling.BENCHMARK_SEED_BASE + seeds)))
    for name, value in printed.items():
        assert value == pytest.approx(scipy.stats.trim_mean(returns[name], 0.25), abs=0.006)
        assert not np.isclose(value, returns[name].mean(), atol=0.006) or np.ptp(returns[name]) < 0.01
    share = float(cells[-1].rstrip("%")) / 100
    assert share == pytest.approx(printed[guard_ceiling.FLOOR] / printed["oracle-reward"], abs=0.002)


def test_guarded_ses_standard_keeps_its_plan_without_its_jumps() -> None:
    """SES's plan through the Randomized guard on NewIP-v1: the plain plan jumps on some seeds (0.44 days an
    episode on the suite's), the guarded one never does; each day the guarded action is the plan's own, or lower
    where the guard caps it; and returns() plays this guarded plan in its guarded row."""
    import gymnasium

    from agents import load_policy
    from core.guard import GuardedSends
    from envs.dynamics import jump_guard
    from envs.scenario import get_scenario
    from evaluation.episodes import play_episode

    env = gymnasium.make("ipwarmup/NewIP-v1")
    guard = jump_guard(get_scenario("ipwarmup/Randomized-v1"))
    seeds = list(range(10))

    class Recorder:
        """A policy that records the actions it answers with."""

        def __init__(self, policy: Any) -> None:
            self.policy, self.actions = policy, []

        def reset(self, seed: int | None = None) -> None:
            self.policy.reset(seed)

        def predict(self, observation, state=None, episode_start=None, deterministic=True):  # noqa: ANN001,ANN201
            action, state = self.policy.predict(observation, state, episode_start, deterministic)
            self.actions.append(np.array(action))
            return action, state

    plan = Recorder(load_policy("ses-standard", env))
    guarded = Recorder(guard_ceiling.Guarded(plan, GuardedSends(guard)))
    plain_kpis = [play_episode(load_policy("ses-standard", env), env, seed).kpis() for seed in seeds]
    guarded_kpis = [play_episode(guarded, env, seed).kpis() for seed in seeds]
    raw, out = np.concatenate(plan.actions), np.concatenate(guarded.actions)
    assert raw.shape == out.shape and np.all(out <= raw + 1e-7)  # the guard only lowers
    capped_days = int(np.any(out < raw - 1e-7, axis=1).sum())
    assert 0 < capped_days < len(raw) / 4  # capped on some days, the plan's own action on most
    assert sum(k["spike_days"] for k in plain_kpis) > 0
    assert sum(k["spike_days"] for k in guarded_kpis) == 0
    few = seeds[:3]  # returns() also plays the two planners, the slow part: three seeds show the guarded row
    rows = guard_ceiling.returns("ipwarmup/NewIP-v1", "ipwarmup/Randomized-v1", few)
    np.testing.assert_allclose(rows[guard_ceiling.GUARDED_SES], [k["return"] for k in guarded_kpis[:len(few)]])
    assert not np.allclose(rows[guard_ceiling.GUARDED_SES], rows["ses-standard"])


def test_guarded_policy_takes_one_observation_as_predict_does() -> None:
    """Like every policy, the wrapper takes a single observation [OBS_SIZE] and answers with one action [P]."""
    import gymnasium

    from agents import load_policy
    from core.guard import GuardedSends
    from envs.dynamics import jump_guard
    from envs.scenario import get_scenario

    env = gymnasium.make("ipwarmup/NewIP-v1")
    obs, _ = env.reset(seed=0)
    guarded = guard_ceiling.Guarded(load_policy("ses-standard", env),
                                    GuardedSends(jump_guard(get_scenario("ipwarmup/Randomized-v1"))))
    single, _ = guarded.predict(obs)
    guarded.reset()
    batched, _ = guarded.predict(obs[None])
    assert single.shape == env.action_space.shape and batched.shape == (1, *env.action_space.shape)
    np.testing.assert_array_equal(single, batched[0])


@pytest.mark.parametrize("args, message", [(["--prior", "nope"], "unknown scenario"),
                                           (["--env", "ipwarmup/Nope-v1"], "unknown"),
                                           (["-n", "1"], "--episodes")])
def test_bad_input_is_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        guard_ceiling.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
