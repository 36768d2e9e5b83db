"""The one episode loop: a policy plays one seeded episode of a Gymnasium env, deterministically.

The benchmark's runner, train.py's periodic evaluation and final report, and export's schedule rollout
all play episodes through :func:`play_episode`, and compute KPIs with :func:`evaluation.kpis.episode_kpis`.
An episode depends on its seed alone: the env is reset with it and the policy is ``reset(seed)`` first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

import envs  # noqa: F401  (registers the ipwarmup ids)
from agents.policy import PolicyProtocol
from evaluation.kpis import episode_kpis


@dataclass
class Episode:
    """What one episode showed: the reset info, then per day the action taken, the step info and the reward."""

    seed: int
    reset_info: dict[str, Any]
    actions: list[np.ndarray]
    infos: list[dict[str, Any]]
    rewards: list[float]

    def kpis(self) -> dict[str, float]:
        return episode_kpis(self.infos, self.rewards)


def play_episode(policy: PolicyProtocol, env: gymnasium.Env, seed: int) -> Episode:
    """Play one deterministic episode of ``env`` reset with ``seed``, the policy reset with the same seed."""
    policy.reset(seed=seed)
    obs, reset_info = env.reset(seed=seed)
    episode = Episode(seed, reset_info, [], [], [])
    start = True
    while True:
        action, _ = policy.predict(np.asarray(obs, np.float32)[None], episode_start=np.array([start]),
                                   deterministic=True)
        start = False
        action = np.asarray(action)[0]
        obs, reward, terminated, truncated, info = env.step(action)
        episode.actions.append(action)
        episode.infos.append(info)
        episode.rewards.append(float(reward))
        if terminated or truncated:
            return episode


def run_episodes(
    policy: PolicyProtocol | str | Path,
    env_id: str,
    seeds: Sequence[int],
    env_kwargs: Mapping[str, Any] | None = None,
) -> list[dict[str, float]]:
    """KPIs of one episode per seed, in seed order, on ``gymnasium.make(env_id, **env_kwargs)``.

    ``policy`` is a spec for ``agents.load_policy`` (a name or a path) or an object with ``predict``.
    """
    from agents.registry import load_policy

    env = gymnasium.make(env_id, **dict(env_kwargs or {}))
    try:
        actor = load_policy(policy, env) if isinstance(policy, (str, Path)) else policy
        return [play_episode(actor, env, int(seed)).kpis() for seed in seeds]
    finally:
        env.close()
