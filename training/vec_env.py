"""The batched simulator as a native stable-baselines3 ``VecEnv``: one numpy call steps every env.

SB3's DummyVecEnv would loop over N Python envs; this adapter steps :class:`envs.simulator.Simulator`
once per batch and builds per-env info dicts only where SB3 needs them (episode ends), with the episode's
KPIs from :func:`evaluation.kpis.day_kpis`, the same function every report uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from core.guard import JumpGuard
from core.providers import FEEDBACK_LOOP, PROVIDERS
from envs.scenario import Scenario, get_scenario
from envs.simulator import Simulator
from envs.warmup_env import spaces_for
from evaluation.kpis import DAY_COUNTS, day_kpis


class SimulatorVecEnv(VecEnv):
    """``n_envs`` episodes of one scenario; SB3 auto-reset semantics (terminal obs in ``info``).

    Two training choices, both leaving the episode statistics (``info['episode']``, ``info['kpis']``) as the env
    defines them:

    * ``horizon_is_terminal``: the last day is reported as an episode end, not a time limit, so PPO does not
      bootstrap a value beyond it. The horizon is part of the task (the day is observed and the readiness bonus is
      the value of what comes after), and no state past it was ever trained on.
    * ``shaping_gamma``: potential-based shaping (Ng, Harada and Russell, 1999), ``r + gamma * Phi(s') - Phi(s)``
      with ``Phi = reward_ready_value * reputation_progress`` (the readiness bonus the IP would earn at full
      share, all of it accepted) and ``Phi = 0`` after the last day: the same optimal policies, but the credit for
      building reputation arrives the day it is built instead of at the end. The potential leaves out the share itself:
      with it, the last day's share learned worse (measured in docs/training.md). ``None`` trains on the env's
      reward as it is.
    * ``spike_cost``: subtracted from the training reward once per provider and day with a jump the model punishes
      (``spike_excess > 0``): a constraint (an engineer signs no schedule with such a jump) priced as a penalty,
      beyond the reputation the model itself takes for it. 0 trains on the env's reward.
    * ``jump_guard``: a :class:`core.guard.JumpGuard` applied to every action before the day is simulated, with
      yesterday's first attempts as its reference: the policy learns in the world it will act in, where no
      provider's volume jumps. ``None`` sends the actions as they are.
    """

    def __init__(self, scenario: str | Scenario, n_envs: int, seed: int | None = None, *,
                 horizon_is_terminal: bool = False, shaping_gamma: float | None = None, spike_cost: float = 0.0,
                 jump_guard: JumpGuard | None = None, **overrides: Any) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else get_scenario(scenario, **overrides)
        self.sim = Simulator(self.scenario, n_envs)
        self.horizon_is_terminal = horizon_is_terminal
        self.shaping_gamma = shaping_gamma
        self.spike_cost = spike_cost
        self.jump_guard = jump_guard
        self._last_sent = np.zeros((n_envs, len(PROVIDERS)))
        self._potential = np.zeros(n_envs)
        observation_space, action_space = spaces_for()
        self.render_mode = None
        super().__init__(n_envs, observation_space, action_space)
        self._rng = np.random.default_rng(seed)
        self._actions = np.zeros((n_envs, action_space.shape[0]), np.float32)
        horizon = self.sim.horizon
        self._days = {k: np.zeros((n_envs, horizon, len(PROVIDERS)), np.int64) for k in DAY_COUNTS}
        self._demand = np.zeros((n_envs, horizon))
        self._rewards = np.zeros((n_envs, horizon))
        self._episode_len = np.zeros(n_envs, np.int64)

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        self._rng = np.random.default_rng(seed)
        return [seed] * self.num_envs

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
        self._reset_seeds()
        self._episode_len[:] = 0
        self._last_sent[:] = 0.0
        obs = self.sim.reset(self._rng)
        self._potential = self._readiness_potential()
        return obs

    def _readiness_potential(self) -> np.ndarray:
        return self.sim.rules.reward_ready_value * self.sim.reputation_progress()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        actions = self._actions
        if self.jump_guard is not None:
            available = self.sim.params.demand + self.sim.state.backlog.sum(-1)
            actions, _ = self.jump_guard.limit(actions, available, self._last_sent)
        result = self.sim.step(actions, self._rng)
        o = result.outcome
        self._last_sent[:] = o.first_attempts
        rows, day = np.arange(self.num_envs), self._episode_len
        for key, days in self._days.items():
            days[rows, day] = getattr(o, key)
        self._demand[rows, day] = self.sim.params.demand.sum(-1)
        self._rewards[rows, day] = result.reward
        self._episode_len += 1
        dones = result.terminated | result.truncated
        reward = result.reward
        if self.shaping_gamma is not None:
            potential = np.where(dones, 0.0, self._readiness_potential())
            reward = reward + self.shaping_gamma * potential - self._potential
            self._potential = potential
        if self.spike_cost:
            reward = reward - self.spike_cost * (o.spike_excess > 0).sum(-1)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        obs = result.obs
        if dones.any():
            for i in np.flatnonzero(dones):
                length = int(self._episode_len[i])
                kpis = day_kpis({k: days[i, :length] for k, days in self._days.items()}, self._demand[i, :length],
                                self._rewards[i, :length], bool(result.terminated[i]), self.sim.state.reputation[i],
                                FEEDBACK_LOOP)
                infos[i] = {
                    "terminal_observation": obs[i].copy(),
                    "TimeLimit.truncated": bool(result.truncated[i] and not result.terminated[i]
                                                and not self.horizon_is_terminal),
                    "episode": {"r": kpis["return"], "l": length, "t": 0.0},
                    "kpis": kpis,
                }
            reset_obs = self.sim.reset(self._rng, dones)
            obs[dones] = reset_obs[dones]
            self._episode_len[dones] = 0
            self._last_sent[dones] = 0.0
            if self.shaping_gamma is not None:
                self._potential[dones] = self._readiness_potential()[dones]
        return obs, reward.astype(np.float32), dones, infos

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


def vecnormalize_of(venv: Any) -> Any:
    """The ``VecNormalize`` inside a wrapper stack (or None): where the normalization statistics live, and
    the raw observations a baseline reads."""
    from stable_baselines3.common.vec_env import VecNormalize

    while venv is not None:
        if isinstance(venv, VecNormalize):
            return venv
        venv = getattr(venv, "venv", None)
    return None
