"""Behaviour cloning before PPO: start the policy from a baseline's actions, then let PPO improve on them.

From scratch, PPO on NewIP-v1 settles about a point of return below SES standard, keeping mail on the shared pool
that a steady ramp would have moved to the new IP (docs/training.md). A jump start from a teacher (kickstarting,
Schmitt et al. 2018; DAPG, Rajeswaran et al. 2018) puts PPO's first rollouts where the good schedules are. The
student clones the teacher's actions on the teacher's own days, and its critic learns the teacher's discounted
returns, so PPO's first updates start from a value that agrees with the cloned policy instead of undoing it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.vec_env import vecnormalize_of

TEACHERS_REFUSED = ("random",)
"""Baselines that cannot teach: ``random`` teaches nothing. The oracles may: they plan on the training env's hidden
state, but the student records only the observations it will act on, so what it clones is the oracle's action
averaged over the episodes that look alike to a sender (distillation from a privileged teacher, "learning by
cheating", Chen et al. 2019). Nothing the student runs on after training reads hidden state."""
CLONE_STEPS = 3_000
"""Gradient steps of the cloning fit (minibatches drawn with replacement): enough for the days that occur once
per episode, such as day 1, to be fitted too."""
CLONE_BATCH = 1_024
CLONE_LEARNING_RATE = 1e-3


def check_teacher(config: dict[str, Any]) -> None:
    """A config's ``imitate`` names a baseline that can teach (any but ``random``), or ConfigError."""
    from agents import BASELINES
    from agents.run_config import ConfigError

    teachers = [name for name in BASELINES if name not in TEACHERS_REFUSED]
    if "imitate" in config and config["imitate"] not in teachers:
        raise ConfigError(f"hyperparameter 'imitate' must be a baseline that can teach "
                          f"({', '.join(teachers)}), got {config['imitate']!r}")


def teacher_days(venv: Any, teacher: Any, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Play ``teacher`` for ``days`` steps of every env: the student's observations, the teacher's actions, the
    (normalized, shaped) rewards PPO will see and the episode ends, each ``[days, n, ...]``."""
    normalizer = vecnormalize_of(venv)
    obs = venv.reset()
    starts = np.ones(venv.num_envs, bool)
    record: dict[str, list[np.ndarray]] = {"obs": [], "action": [], "reward": [], "done": []}
    for _ in range(days):
        raw = normalizer.get_original_obs() if normalizer is not None else obs
        action, _ = teacher.predict(raw, episode_start=starts, deterministic=True)
        record["obs"].append(np.array(obs, np.float32))
        record["action"].append(np.array(action, np.float32))
        obs, reward, done, _ = venv.step(action)
        record["reward"].append(np.array(reward, np.float64))
        record["done"].append(np.array(done, bool))
        starts = done
    obs_days, action_days, reward_days, done_days = (np.stack(record[k]) for k in ("obs", "action", "reward", "done"))
    return obs_days, action_days, reward_days, done_days


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """Per day and env ``[days, n]``: the discounted reward to the episode's end (0 after the last recorded day)."""
    returns = np.zeros_like(rewards)
    ahead = np.zeros(rewards.shape[1])
    for t in range(len(rewards) - 1, -1, -1):
        ahead = rewards[t] + gamma * ahead * ~dones[t]
        returns[t] = ahead
    return returns


def clone_teacher(model: Any, venv: Any, teacher_name: str, episodes: int, seed: int) -> dict[str, float]:
    """Fit ``model``'s actor mean to ``teacher_name``'s actions and its critic to the teacher's returns, over
    ``episodes`` episodes per env. The normalizer first watches one episode of the teacher, then stays fixed
    while the days are recorded, so every recorded observation is normalized the same way. Returns the final
    mean squared errors (actions in [-1, 1]; values in normalized reward units)."""
    from agents import load_policy

    teacher = load_policy(teacher_name, venv)  # the oracles plan on venv's simulator
    guard = venv.get_attr("jump_guard")[0]
    if guard is not None and getattr(teacher, "no_jump", False):
        teacher.day1_reference = guard.base  # what the student may assume on day 1, not the true cold acceptance
    teacher.reset(seed)
    horizon = int(venv.get_attr("sim")[0].horizon)
    normalizer = vecnormalize_of(venv)
    teacher_days(venv, teacher, horizon)  # normalization statistics from the teacher's own days
    if normalizer is not None:
        normalizer.training = False
    try:
        obs, actions, rewards, dones = teacher_days(venv, teacher, episodes * horizon)
    finally:
        if normalizer is not None:
            normalizer.training = True
    returns = discounted_returns(rewards, dones, float(model.gamma))
    if is_recurrent_model(model):
        mask, (obs, actions, returns) = episode_sequences(dones, obs, actions, returns)
        return _fit_recurrent(model.policy, obs, actions, returns, mask, seed)
    return _fit_feed_forward(model.policy, obs, actions, returns, seed)


def is_recurrent_model(model: Any) -> bool:
    """Whether ``model``'s policy reads its observations through an LSTM (sb3-contrib's RecurrentPPO)."""
    return hasattr(model.policy, "lstm_actor")


def episode_sequences(dones: np.ndarray, *records: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Records ``[days, n, ...]`` from a reset of every env -> one row per complete episode ``[episodes,
    longest, ...]``, zero after the episode's end, and the mask ``[episodes, longest]`` of its real days.

    Most episodes last the scenario's horizon, but SES pausing the account ends one early; a record's last,
    unfinished episode is left out."""
    spans = [(env, start, end + 1) for env in range(dones.shape[1])
             for start, end in _episode_bounds(np.flatnonzero(dones[:, env]))]
    longest = max(end - start for _, start, end in spans)
    mask = np.zeros((len(spans), longest), bool)
    rows = [np.zeros((len(spans), longest, *r.shape[2:]), r.dtype) for r in records]
    for i, (env, start, end) in enumerate(spans):
        mask[i, : end - start] = True
        for row, record in zip(rows, records, strict=True):
            row[i, : end - start] = record[start:end, env]
    return mask, rows


def _episode_bounds(last_days: np.ndarray) -> list[tuple[int, int]]:
    """(first day, last day) of each complete episode of one env, from the days its episodes ended."""
    firsts = np.concatenate([[0], last_days[:-1] + 1])
    return [(int(f), int(last)) for f, last in zip(firsts, last_days, strict=True)]


def _fit_feed_forward(policy: Any, obs: np.ndarray, actions: np.ndarray, returns: np.ndarray,
                      seed: int) -> dict[str, float]:
    """Regress the actor's mean on the teacher's actions and the critic on its returns, day by day."""
    import torch

    x = torch.as_tensor(obs.reshape(-1, obs.shape[-1]))
    a = torch.as_tensor(actions.reshape(-1, actions.shape[-1]))
    g = torch.as_tensor(returns.reshape(-1, 1), dtype=torch.float32)

    def outputs(batch: Any) -> tuple[Any, Any]:
        return policy.get_distribution(x[batch]).distribution.mean, policy.predict_values(x[batch])

    return _fit(policy, outputs, a, g, len(x), min(CLONE_BATCH, len(x)), seed)


def _fit_recurrent(policy: Any, obs: np.ndarray, actions: np.ndarray, returns: np.ndarray, mask: np.ndarray,
                   seed: int) -> dict[str, float]:
    """The same regression through the LSTMs, a minibatch being whole episodes (``[episodes, days, ...]``, days
    after an episode's end masked out), so the memory the clone learns to keep is the one it will have from
    day 1 on."""
    import torch

    sequences, days = obs.shape[:2]
    x, a = torch.as_tensor(obs), torch.as_tensor(actions)
    g = torch.as_tensor(returns, dtype=torch.float32)
    real = torch.as_tensor(mask, dtype=torch.float32)
    lstm = policy.lstm_actor

    def outputs(batch: Any) -> tuple[Any, Any]:
        # sb3-contrib reads a flat batch as sequence after sequence; zero states and no episode start within a
        # sequence is an episode's own start, and lets one LSTM call run the whole sequence.
        flat = x[batch].reshape(-1, x.shape[-1])
        zeros = torch.zeros(lstm.num_layers, len(batch), lstm.hidden_size)
        starts = torch.zeros(len(flat))
        distribution, _ = policy.get_distribution(flat, (zeros, zeros), starts)
        return distribution.distribution.mean, policy.predict_values(flat, (zeros, zeros), starts)

    return _fit(policy, outputs, a, g, sequences, max(1, min(CLONE_BATCH // days, sequences)), seed, real)


def _fit(policy: Any, outputs: Any, a: Any, g: Any, rows: int, batch_size: int, seed: int,
         mask: Any = None) -> dict[str, float]:
    """``CLONE_STEPS`` Adam steps on minibatches of ``rows`` (days, or whole episodes) drawn with replacement; the
    final fit over every row. ``outputs(rows)`` gives the actor's mean actions and the critic's values, flat;
    ``mask`` (per row and day) leaves padded days out of the losses."""
    import torch

    def mse(output: Any, target: Any, batch: Any) -> Any:
        if mask is None:
            return torch.nn.functional.mse_loss(output, target.reshape(output.shape))
        weight = mask[batch].reshape(-1, 1)
        squared = (output - target.reshape(output.shape)) ** 2 * weight
        return squared.sum() / (weight.sum() * output.shape[-1])

    optimizer = torch.optim.Adam(policy.parameters(), lr=CLONE_LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(CLONE_STEPS):
        batch = torch.randint(rows, (batch_size,), generator=generator)
        mean, values = outputs(batch)
        action_loss = mse(mean, a[batch], batch)
        value_loss = mse(values, g[batch], batch)
        optimizer.zero_grad()
        (action_loss + value_loss).backward()
        optimizer.step()
    with torch.no_grad():
        every = torch.arange(rows)
        mean, values = outputs(every)
        return {"action_mse": float(mse(mean, a, every)), "value_mse": float(mse(values, g, every))}
