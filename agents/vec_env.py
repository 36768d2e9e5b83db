"""The batched simulator as a native stable-baselines3 ``VecEnv``: one numpy call steps every env.

SB3's DummyVecEnv would loop over N Python envs; this adapter steps :class:`envs.simulator.Simulator`
once per batch and builds per-env info dicts only where SB3 needs them (episode ends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from envs.dynamics import FBL
from envs.scenario import Scenario, get_scenario
from envs.simulator import Simulator
from envs.warmup_env import _spaces


class SimulatorVecEnv(VecEnv):
    """``n_envs`` episodes of one scenario; SB3 auto-reset semantics (terminal obs in ``info``)."""

    def __init__(self, scenario: str | Scenario, n_envs: int, seed: int | None = None, **overrides: Any) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else get_scenario(scenario, **overrides)
        self.sim = Simulator(self.scenario, n_envs)
        observation_space, action_space = _spaces()
        self.render_mode = None
        super().__init__(n_envs, observation_space, action_space)
        self._rng = np.random.default_rng(seed)
        self._actions = np.zeros((n_envs, action_space.shape[0]), np.float32)
        self._episode_sums = np.zeros((n_envs, 5))  # inbox, demand, fbl complaints, fbl delivered, return
        self._episode_len = np.zeros(n_envs, np.int64)

    def seed(self, seed: int | None = None) -> Sequence[None | int]:  # type: ignore[override]
        self._rng = np.random.default_rng(seed)
        return [seed] * self.num_envs

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
        self._reset_seeds()
        self._episode_sums[:] = 0
        self._episode_len[:] = 0
        return self.sim.reset(self._rng)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        result = self.sim.step(self._actions, self._rng)
        o = result.outcome
        self._episode_sums += np.stack(
            [o.inbox.sum(-1), self.sim.params.demand.sum(-1), (o.complaints * FBL).sum(-1),
             (o.delivered * FBL).sum(-1), result.reward], axis=-1)
        self._episode_len += 1
        dones = result.terminated | result.truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        obs = result.obs
        if dones.any():
            for i in np.flatnonzero(dones):
                inbox, demand, complaints, delivered, ret = self._episode_sums[i]
                infos[i] = {
                    "terminal_observation": obs[i].copy(),
                    "TimeLimit.truncated": bool(result.truncated[i] and not result.terminated[i]),
                    "episode": {"r": float(ret), "l": int(self._episode_len[i]), "t": 0.0},
                    "inboxed_share": float(inbox / max(demand, 1.0)),
                    "complaint_rate": float(complaints / max(delivered, 1.0)),
                    "paused": bool(result.terminated[i]),
                }
            reset_obs = self.sim.reset(self._rng, dones)
            obs[dones] = reset_obs[dones]
            self._episode_sums[dones] = 0
            self._episode_len[dones] = 0
        return obs, result.reward.astype(np.float32), dones, infos

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
