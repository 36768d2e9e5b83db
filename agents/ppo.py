"""A trained PPO run as a policy: the run folder's layout, loading, and SB3-compatible ``predict``.

A run folder holds ``config.yaml`` (the resolved configuration), ``model.zip`` (SB3 PPO),
``vecnormalize.pkl`` (SB3's observation/reward normalization statistics) and, when periodic
evaluation ran, ``best_model.zip`` + ``best_vecnormalize.pkl``. The policy sees observations as in
training: each raw observation normalized with the frozen statistics (clipped), then the last
``frame_stack`` of them concatenated oldest first, zero-filled after an episode start, exactly as
``VecNormalize`` wrapped by ``VecFrameStack`` feed it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core.features import OBS_SIZE

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.zip"
VECNORM_FILE = "vecnormalize.pkl"
BEST_MODEL_FILE = "best_model.zip"
BEST_VECNORM_FILE = "best_vecnormalize.pkl"


class RunError(ValueError):
    """A run folder is missing, unreadable or inconsistent; the message names the file."""


@dataclass
class ObsNormalization:
    """Frozen VecNormalize observation statistics: ``clip((obs - mean) / sqrt(var + eps), -clip, clip)``."""

    mean: np.ndarray
    var: np.ndarray
    clip: float
    epsilon: float

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip, self.clip).astype(np.float32)

    @staticmethod
    def identity(size: int) -> ObsNormalization:
        return ObsNormalization(np.zeros(size), np.ones(size), np.inf, 0.0)


@dataclass
class RunArtifacts:
    """Everything needed to act like the trained policy (and to export it)."""

    model: Any  # stable_baselines3.PPO
    normalization: ObsNormalization
    frame_stack: int
    config: dict[str, Any]
    run_dir: Path

    @property
    def env_id(self) -> str:
        return str(self.config["env_id"])


def read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise RunError(f"run folder {run_dir} does not exist")
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing: not a training run folder") from None
    except yaml.YAMLError as exc:
        raise RunError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict) or "env_id" not in config:
        raise RunError(f"{path} has no env_id: not a training run folder")
    return config


def load_normalization(path: Path) -> ObsNormalization:
    """Observation statistics from SB3's VecNormalize pickle (only ever our own run folder's file)."""
    try:
        with path.open("rb") as handle:
            vecnorm = pickle.load(handle)  # noqa: S301 - SB3's own format, written by this project's training
    except FileNotFoundError:
        raise RunError(f"{path} is missing") from None
    except Exception as exc:  # a truncated or foreign file
        raise RunError(f"{path} is not a readable VecNormalize file ({type(exc).__name__})") from None
    if not getattr(vecnorm, "norm_obs", False):
        return ObsNormalization.identity(int(np.prod(vecnorm.observation_space.shape)))
    rms = vecnorm.obs_rms
    return ObsNormalization(np.asarray(rms.mean, np.float64), np.asarray(rms.var, np.float64),
                           float(vecnorm.clip_obs), float(vecnorm.epsilon))


def check_observation_shape(model: Any, model_path: Path, frames: int) -> None:
    """Refuse a model trained on another observation layout (an older version of the features) in one line."""
    if model.observation_space.shape != (frames * OBS_SIZE,):
        raise RunError(f"{model_path} was trained on observations of shape {model.observation_space.shape}; this "
                       f"version observes {OBS_SIZE} features x {frames} frame(s): retrain the run")


def load_run(run_dir: str | Path, best: bool = True) -> RunArtifacts:
    """Load a run folder; prefer the best evaluated model when ``best`` and it exists."""
    from stable_baselines3 import PPO

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    use_best = best and (run_dir / BEST_MODEL_FILE).exists()
    model_path = run_dir / (BEST_MODEL_FILE if use_best else MODEL_FILE)
    vecnorm_path = run_dir / (BEST_VECNORM_FILE if use_best else VECNORM_FILE)
    if not model_path.exists():
        raise RunError(f"{model_path} is missing: the run has not saved a model yet")
    try:
        model = PPO.load(model_path, device="cpu")
    except Exception as exc:
        raise RunError(f"{model_path} is not a readable SB3 model ({type(exc).__name__}: {exc})") from None
    frames = int(config.get("frame_stack", 1))
    check_observation_shape(model, model_path, frames)  # so the model sees `frames` x OBS_SIZE features
    normalization = (load_normalization(vecnorm_path) if config.get("normalize", True)
                     else ObsNormalization.identity(OBS_SIZE))
    return RunArtifacts(model, normalization, frames, config, run_dir)


class FrameStacker:
    """Per-env history of the last ``k`` normalized observations, zeroed at episode starts."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.buffer: np.ndarray | None = None

    def __call__(self, obs: np.ndarray, episode_start: np.ndarray | None) -> np.ndarray:
        n, size = obs.shape
        if self.buffer is None or self.buffer.shape[0] != n:
            self.buffer = np.zeros((n, self.k * size), np.float32)
            episode_start = np.ones(n, bool)
        if episode_start is not None:
            self.buffer[np.asarray(episode_start, bool)] = 0.0
        self.buffer[:, :-size] = self.buffer[:, size:]
        self.buffer[:, -size:] = obs
        return self.buffer.copy()


class RunPolicy:
    """A trained run behind SB3's ``predict``, batched over envs, for evaluate.py and SB3's evaluate_policy."""

    def __init__(self, artifacts: RunArtifacts) -> None:
        self.artifacts = artifacts
        self.stacker = FrameStacker(artifacts.frame_stack)

    def reset(self, seed: int | None = None) -> None:
        """Forget the frame history; the policy is deterministic, so ``seed`` has no effect."""
        self.stacker.buffer = None

    def policy_input(self, observation: np.ndarray, episode_start: np.ndarray | None = None) -> np.ndarray:
        """The network's input for raw observations [n, OBS_SIZE]: normalized, then frame-stacked."""
        return self.stacker(self.artifacts.normalization(observation), episode_start)

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        action, _ = self.artifacts.model.predict(self.policy_input(batch, episode_start), deterministic=deterministic)
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        return (action[0] if single else action), state


def load_run_policy(run_dir: str | Path, env: Any = None) -> RunPolicy:
    """``agents.load_policy`` for a training run folder; ``env`` is accepted for the common signature."""
    return RunPolicy(load_run(run_dir))
