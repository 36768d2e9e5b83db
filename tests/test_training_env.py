"""The training VecEnv's learning choices: readiness shaping, the horizon as an end, a price on punished jumps."""

from __future__ import annotations

import numpy as np
import pytest

from envs.simulator import Simulator, StepResult
from training.vec_env import SimulatorVecEnv


def _episode(shaping: float | None, terminal: bool = False, spike_cost: float = 0.0,
             ramp: np.ndarray | None = None) -> tuple[np.ndarray, list[dict], float]:
    venv = SimulatorVecEnv("ipwarmup/NewIP-v1", 3, seed=5, horizon=12, shaping_gamma=shaping,
                           horizon_is_terminal=terminal, spike_cost=spike_cost)
    venv.reset()
    first_potential = float(venv._potential[0])
    ramp = np.linspace(-0.3, 0.9, 12) if ramp is None else ramp
    rewards, infos = [], []
    for a in ramp:
        _, reward, done, info = venv.step(np.full((3, 5), a, np.float32))
        rewards.append(reward)
        infos = info
    assert done.all()
    return np.array(rewards), infos, first_potential


@pytest.mark.parametrize("gamma", [0.9, 0.98])
def test_shaping_telescopes_to_minus_the_first_potential(gamma: float) -> None:
    """sum_t gamma^t (gamma Phi(s_t+1) - Phi(s_t)) = -Phi(s_0) when Phi is 0 after the last day: the discounted
    return of every policy moves by the same constant, so the optimal policies are the env's."""
    raw, raw_info, _ = _episode(None)
    shaped, shaped_info, phi0 = _episode(gamma)
    discount = gamma ** np.arange(len(raw))
    assert np.allclose(((shaped - raw) * discount[:, None]).sum(0), -phi0, atol=1e-4)
    assert not np.allclose(shaped, raw)  # the credit does move between days
    # episode statistics stay the env's
    assert [i["episode"]["r"] for i in shaped_info] == [i["episode"]["r"] for i in raw_info]


def test_horizon_is_reported_as_an_episode_end_only_when_asked() -> None:
    _, truncated_info, _ = _episode(None, terminal=False)
    _, terminal_info, _ = _episode(None, terminal=True)
    assert all(i["TimeLimit.truncated"] for i in truncated_info)
    assert not any(i["TimeLimit.truncated"] for i in terminal_info)


def test_spike_cost_prices_each_provider_day_with_a_punished_jump(monkeypatch: pytest.MonkeyPatch) -> None:
    jumps: list[np.ndarray] = []  # [envs, providers] per day: which providers got a punished jump
    step = Simulator.step

    def recording_step(self: Simulator, *args: object) -> StepResult:
        result = step(self, *args)
        jumps.append(result.outcome.spike_excess > 0)
        return result

    monkeypatch.setattr(Simulator, "step", recording_step)
    # shares 0.4%, 56%, 0.4%, 56%, then a steady climb: jumps on some days and providers, not on others
    jumpy = np.array([-0.4, 0.5, -0.4, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0])
    raw, raw_info, _ = _episode(None, ramp=jumpy)
    raw_jumps, jumps[:] = np.array(jumps), []
    priced, priced_info, _ = _episode(None, spike_cost=0.5, ramp=jumpy)
    assert np.array_equal(np.array(jumps), raw_jumps)  # the price changes the reward, not the world
    per_provider = raw_jumps.sum(-1)  # [days, envs]
    assert np.allclose(raw - priced, 0.5 * per_provider, atol=1e-5)
    assert per_provider.max() >= 2 and (per_provider == 0).any()  # the count is per provider, and selective
    # the KPI counts the same days; episode statistics stay the env's
    days_with_jump = (per_provider > 0).sum(0)
    assert [i["kpis"]["spike_days"] for i in priced_info] == days_with_jump.tolist()
    assert [i["episode"]["r"] for i in priced_info] == [i["episode"]["r"] for i in raw_info]
