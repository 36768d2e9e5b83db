"""PPO training on the batched simulator: configuration, run folders, checkpoints, resume.

Configuration follows RL Baselines3 Zoo: ``configs/ppo.yml`` holds a ``default`` entry and entries per
env id; ``-conf FILE`` replaces that file; ``-params key:value`` overrides single keys (values parsed
as YAML). Training keys beside PPO's own constructor arguments:

* ``n_envs``: parallel episodes in the one batched ``SimulatorVecEnv``;
* ``n_timesteps``: total env steps (days) to train for;
* ``frame_stack``: how many days of observations the policy sees (``VecFrameStack``);
* ``normalize``: wrap in ``VecNormalize`` (observations and reward);
* ``env_kwargs``: scenario overrides passed to the env;
* ``eval_freq`` / ``eval_episodes``: periodic deterministic evaluation on fixed seeds (0 disables);
  the best model by mean episode return is kept as ``best_model.zip``;
* ``save_freq``: steps between checkpoints (Ctrl-C also saves one; ``--resume`` continues from it).
"""

from __future__ import annotations

import csv
import difflib
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
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

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ppo.yml"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"
EVAL_SEED_BASE = 1_000_000
"""Evaluation seeds start here; training seeds stay below, so the two never overlap."""
REPORT_SEED_BASE = 1_500_000
"""The end-of-training comparison's seeds: unseen by training and by the evaluation that picks the best model."""

TRAINING_KEYS: dict[str, type | tuple[type, ...]] = {
    "n_envs": int,
    "n_timesteps": int,
    "frame_stack": int,
    "normalize": bool,
    "env_kwargs": dict,
    "eval_freq": int,
    "eval_episodes": int,
    "save_freq": int,
}
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key or file."""


def _ppo_arguments() -> dict[str, inspect.Parameter]:
    from stable_baselines3 import PPO

    params = dict(inspect.signature(PPO.__init__).parameters)
    for internal in ("self", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model"):
        params.pop(internal, None)
    return params


class _ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, except that ``1e-3`` is a float (as in YAML 1.2 and RL Zoo's files)."""


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_config_yaml(text: str) -> Any:
    """Parse config YAML with :class:`_ConfigLoader` (exponent floats as numbers)."""
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = load_config_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must map env ids (or 'default') to hyperparameters")
    return data


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``["n_envs:32", "policy_kwargs:{net_arch: [32, 32]}"]`` -> a dict, values parsed as YAML."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition(":")
        if not sep or not key:
            raise ConfigError(f"-params entry {pair!r} must look like key:value")
        try:
            out[key.strip()] = load_config_yaml(raw)
        except yaml.YAMLError:
            raise ConfigError(f"-params value for {key!r} is not valid YAML: {raw!r}") from None
    return out


def resolve_config(
    env_id: str, conf_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The default entry, then the env id's entry, then ``overrides``; every key validated."""
    data = _load_yaml(conf_file or DEFAULT_CONFIG)
    config: dict[str, Any] = dict(data.get("default") or {})
    config.update(data.get(env_id) or {})
    config.update(overrides or {})
    validate_config(config)
    config["env_id"] = env_id
    return config


def validate_config(config: dict[str, Any]) -> None:
    ppo_args = _ppo_arguments()
    known = set(TRAINING_KEYS) | set(ppo_args) | {"env_id", "seed"}
    for key, value in config.items():
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            raise ConfigError(f"unknown hyperparameter {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        expected = TRAINING_KEYS.get(key)
        if expected is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
            kind = getattr(expected, "__name__", expected)
            raise ConfigError(f"hyperparameter {key!r} must be {kind}, got {value!r}")
        default = ppo_args[key].default if key in ppo_args else None
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"hyperparameter {key!r} must be a number, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and (
            isinstance(value, bool) or not isinstance(value, int)
        ):
            raise ConfigError(f"hyperparameter {key!r} must be an integer, got {value!r}")
    for key in ("n_envs", "n_timesteps", "frame_stack"):
        if key in config and config[key] < 1:
            raise ConfigError(f"hyperparameter {key!r} must be at least 1, got {config[key]}")
    kwargs = config.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"policy_kwargs must be a mapping, got {kwargs!r}")
    if "activation_fn" in kwargs and kwargs["activation_fn"] not in ACTIVATIONS:
        raise ConfigError(f"policy_kwargs.activation_fn must be one of {ACTIVATIONS}, got {kwargs['activation_fn']!r}")


def _policy_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    import torch.nn as nn

    kwargs = dict(config.get("policy_kwargs") or {})
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}[
            kwargs["activation_fn"]
        ]
    return kwargs


def make_training_env(config: dict[str, Any], seed: int) -> Any:
    """SimulatorVecEnv -> VecNormalize -> VecFrameStack, as RL Zoo stacks them."""
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    from agents.vec_env import SimulatorVecEnv
    from envs.scenario import ScenarioError

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


def atomic_save(path: Path, save: Callable[[Path], None]) -> None:
    """Write through ``save`` to a temporary sibling, then rename over ``path``: never half a file."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    save(tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_save(path, lambda tmp: tmp.write_text(text))


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
    from agents.kpis import run_episodes

    seeds = [EVAL_SEED_BASE + i for i in range(n_episodes)]
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
                if "inboxed_share" in info:
                    self.recent.append({"return": info["episode"]["r"], "inboxed_share": info["inboxed_share"],
                                        "complaint_rate": info["complaint_rate"]})
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


def build_model(config: dict[str, Any], venv: Any, seed: int, tensorboard_log: str | None = None) -> Any:
    """A fresh PPO on ``venv`` from a resolved config's PPO arguments (CPU: the MLP is too small for a GPU)."""
    from stable_baselines3 import PPO

    ppo_kwargs = {k: v for k, v in config.items() if k in _ppo_arguments()}
    ppo_kwargs["policy_kwargs"] = _policy_kwargs(config)
    return PPO(env=venv, seed=seed, device="cpu", verbose=0, tensorboard_log=tensorboard_log, **ppo_kwargs)


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
    if not 0 <= seed < EVAL_SEED_BASE:
        raise ConfigError(f"training seed must be in [0, {EVAL_SEED_BASE}) so evaluation seeds stay unseen, got {seed}")
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
        hint = difflib.get_close_matches(env_id, envs.ENV_IDS, n=1)
        raise ConfigError(f"unknown env id {env_id!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                          + f" (known: {', '.join(envs.ENV_IDS)})")
