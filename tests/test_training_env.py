"""The training VecEnv's two learning choices: potential-based readiness shaping and the horizon as an end."""

from __future__ import annotations

import numpy as np
import pytest

from training.vec_env import SimulatorVecEnv


def _episode(shaping: float | None, terminal: bool = False) -> tuple[np.ndarray, list[dict], float]:
    venv = SimulatorVecEnv("ipwarmup/NewIP-v1", 3, seed=5, horizon=12, shaping_gamma=shaping,
                           horizon_is_terminal=terminal)
    venv.reset()
    first_potential = float(venv._potential[0])
    ramp = np.linspace(-0.3, 0.9, 12)
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
