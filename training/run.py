"""Train (or resume) a PPO run on the batched simulator: run folders, checkpoints, periodic evaluation.

The configuration keys are documented in :mod:`training.config`.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.ppo import (
    BEST_MODEL_FILE,
    BEST_VECNORM_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    VECNORM_FILE,
    ObsNormalization,
    RunArtifacts,
    RunError,
    RunPolicy,
    check_observation_shape,
    read_config,
)
from core.util import EVAL_SEED_BASE, TRAINING_SEED_LIMIT, atomic_save, atomic_write_text, did_you_mean, seed_range
from evaluation.episodes import run_episodes
from training.config import ConfigError, build_model, resolve_config

CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"

def make_training_env(config: dict[str, Any], seed: int) -> Any:
    """SimulatorVecEnv -> VecNormalize -> VecFrameStack, as RL Zoo stacks them."""
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    from envs.scenario import ScenarioError
    from training.vec_env import SimulatorVecEnv

    try:
        venv: Any = SimulatorVecEnv(config["env_id"], config["n_envs"], seed=seed, **config.get("env_kwargs", {}))
    except ScenarioError as exc:
        raise ConfigError(str(exc)) from None
    if config.get("normalize", True):
        venv = VecNormalize(venv, gamma=config.get("gamma", 0.99))
    if config.get("frame_stack", 1) > 1:
        venv = VecFrameStack(venv, n_stack=config["frame_stack"])
    return venv


def _vecnormalize(venv: Any) -> Any:
    from stable_baselines3.common.vec_env import VecNormalize

    while venv is not None:
        if isinstance(venv, VecNormalize):
            return venv
        venv = getattr(venv, "venv", None)
    return None


def save_artifacts(model: Any, venv: Any, folder: Path, model_file: str, vecnorm_file: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(folder / model_file, lambda tmp: model.save(tmp))
    vecnorm = _vecnormalize(venv)
    if vecnorm is not None:
        atomic_save(folder / vecnorm_file, lambda tmp: vecnorm.save(tmp))


def live_policy(model: Any, venv: Any, config: dict[str, Any], run_dir: Path) -> RunPolicy:
    """The policy being trained, frozen as evaluation sees it (current normalization statistics)."""
    vecnorm = _vecnormalize(venv)
    if vecnorm is not None and vecnorm.norm_obs:
        rms = vecnorm.obs_rms
        norm = ObsNormalization(rms.mean.copy(), rms.var.copy(), float(vecnorm.clip_obs), float(vecnorm.epsilon))
    else:
        norm = ObsNormalization.identity(model.observation_space.shape[0] // config.get("frame_stack", 1))
    return RunPolicy(RunArtifacts(model, norm, config.get("frame_stack", 1), config, run_dir))


def evaluate_episodes(policy: Any, config: dict[str, Any], n_episodes: int) -> list[dict[str, float]]:
    """KPIs of ``policy`` over the fixed evaluation seeds (disjoint from training seeds)."""
    seeds = seed_range(EVAL_SEED_BASE, n_episodes)
    return run_episodes(policy, config["env_id"], seeds, env_kwargs=config.get("env_kwargs") or None)


def _callbacks(config: dict[str, Any], run_dir: Path, venv: Any) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class RunCallback(BaseCallback):
        """Progress bar with warm-up metrics, periodic checkpoints and evaluation (best model kept)."""

        def __init__(self) -> None:
            super().__init__()
            self.last_save = 0
            self.last_eval = 0
            self.best_return = -np.inf
            self.recent: list[dict[str, float]] = []
            self.bar: Any = None

        def _on_training_start(self) -> None:
            from tqdm import tqdm

            self.last_save = self.last_eval = self.num_timesteps
            best = run_dir / "best.json"
            if best.exists():
                self.best_return = json.loads(best.read_text())["mean_return"]
            self.bar = tqdm(total=config["n_timesteps"], initial=self.num_timesteps, unit="step",
                            dynamic_ncols=True, disable=None, file=sys.stderr)

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "kpis" in info:
                    self.recent.append({k: info["kpis"][k] for k in ("return", "inboxed_share", "complaint_rate")})
            self.recent = self.recent[-200:]
            if self.bar is not None:
                self.bar.update(self.num_timesteps - self.bar.n)
                if self.recent and self.n_calls % 20 == 0:
                    mean = {k: float(np.mean([r[k] for r in self.recent])) for k in self.recent[0]}
                    self.bar.set_postfix(ret=f"{mean['return']:.2f}", inboxed=f"{mean['inboxed_share']:.3f}",
                                         complaints=f"{mean['complaint_rate']:.4%}", refresh=False)
            if config["save_freq"] > 0 and self.num_timesteps - self.last_save >= config["save_freq"]:
                self.save_checkpoint()
            if config["eval_freq"] > 0 and self.num_timesteps - self.last_eval >= config["eval_freq"]:
                self.evaluate()
            return True

        def save_checkpoint(self) -> None:
            self.last_save = self.num_timesteps
            save_artifacts(self.model, venv, run_dir / CHECKPOINT_DIR, MODEL_FILE, VECNORM_FILE)

        def evaluate(self) -> None:
            self.last_eval = self.num_timesteps
            episodes = evaluate_episodes(live_policy(self.model, venv, config, run_dir), config,
                                         config["eval_episodes"])
            row = {"timesteps": self.num_timesteps, "time": round(time.time(), 1)}
            for key in ("return", "inboxed_share", "complaint_rate", "bounce_rate", "paused"):
                row[key] = float(np.mean([e[key] for e in episodes]))
            _append_metrics(run_dir / METRICS_FILE, row)
            if row["return"] > self.best_return:
                self.best_return = row["return"]
                save_artifacts(self.model, venv, run_dir, BEST_MODEL_FILE, BEST_VECNORM_FILE)
                atomic_write_text(run_dir / "best.json", json.dumps({"mean_return": row["return"],
                                                                     "timesteps": self.num_timesteps}))

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.close()

    return RunCallback()


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def train(
    env_id: str | None,
    seed: int,
    out: Path | None,
    n_timesteps: int | None = None,
    conf_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    resume: Path | None = None,
    num_threads: int = 1,
    tensorboard: bool = True,
) -> Path:
    """Train (or resume) a run; returns its folder. Ctrl-C saves a checkpoint and re-raises."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(num_threads)
    if resume is not None:
        run_dir = resume
        config = read_config(run_dir)
        if n_timesteps is not None:
            config["n_timesteps"] = n_timesteps
        seed = int(config.get("seed", seed))
    else:
        if env_id is None or out is None:
            raise ConfigError("--env and --out are required unless --resume is given")
        run_dir = out
        if (run_dir / CONFIG_FILE).exists():
            raise ConfigError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        extra = dict(overrides or {})
        if n_timesteps is not None:
            extra["n_timesteps"] = n_timesteps
        config = resolve_config(env_id, conf_file, extra)
        config["seed"] = seed
    if not 0 <= seed < TRAINING_SEED_LIMIT:
        raise ConfigError(f"training seed must be in [0, {TRAINING_SEED_LIMIT}) so evaluation seeds stay unseen, "
                          f"got {seed}")
    _check_env_id(config["env_id"])

    venv = make_training_env(config, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / CHECKPOINT_DIR
    if resume is not None:
        source = checkpoint if (checkpoint / MODEL_FILE).exists() else run_dir
        if not (source / MODEL_FILE).exists():
            raise RunError(f"{run_dir} has no checkpoint or model to resume from")
        try:
            model = PPO.load(source / MODEL_FILE, device="cpu")
        except Exception as exc:
            raise RunError(f"{source / MODEL_FILE} is not a readable SB3 model ({type(exc).__name__})") from None
        check_observation_shape(model, source / MODEL_FILE, int(config.get("frame_stack", 1)))
        vecnorm_path = source / VECNORM_FILE
        if _vecnormalize(venv) is not None and vecnorm_path.exists():
            base = _vecnormalize(venv).venv
            loaded = VecNormalize.load(str(vecnorm_path), base)
            venv = loaded if config.get("frame_stack", 1) == 1 else type(venv)(loaded, n_stack=config["frame_stack"])
        model.set_env(venv)  # same spaces (checked above) and the config's n_envs
    else:
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
        atomic_write_text(run_dir / "command.txt", " ".join(sys.argv) + "\n")
        model = build_model(config, venv, seed, tensorboard_log=str(run_dir / "tb") if tensorboard else None)

    remaining = config["n_timesteps"] - model.num_timesteps
    callback = _callbacks(config, run_dir, venv)
    try:
        if remaining > 0:
            model.learn(remaining, callback=callback, reset_num_timesteps=resume is None, tb_log_name="ppo")
    except KeyboardInterrupt:
        save_artifacts(model, venv, checkpoint, MODEL_FILE, VECNORM_FILE)
        raise
    save_artifacts(model, venv, run_dir, MODEL_FILE, VECNORM_FILE)
    save_artifacts(model, venv, checkpoint, MODEL_FILE, VECNORM_FILE)
    return run_dir


def _check_env_id(env_id: str) -> None:
    import envs

    if env_id not in envs.ENV_IDS:
        raise ConfigError(f"unknown env id {env_id!r}{did_you_mean(env_id, envs.ENV_IDS)}"
                          f" (known: {', '.join(envs.ENV_IDS)})")
