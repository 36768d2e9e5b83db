"""Training configuration, RL Baselines3 Zoo style: ``configs/ppo.yml``, ``-conf FILE``, ``-params key:value``.

``configs/ppo.yml`` holds a ``default`` entry and entries per env id; ``-conf FILE`` replaces that file;
``-params key:value`` overrides single keys (values parsed as YAML). Training keys beside PPO's own
constructor arguments:

* ``n_envs``: parallel episodes in the one batched ``SimulatorVecEnv``;
* ``n_timesteps``: total env steps (days) to train for;
* ``frame_stack``: how many days of observations the policy sees (``VecFrameStack``);
* ``normalize``: wrap in ``VecNormalize`` (observations and reward);
* ``env_kwargs``: scenario overrides passed to the env;
* ``eval_freq`` / ``eval_episodes``: periodic deterministic evaluation on fixed seeds (0 disables);
  the best model by mean episode return is kept as ``best_model.zip``;
* ``save_freq``: steps between checkpoints (Ctrl-C also saves one; ``--resume`` continues from it);
* ``horizon_is_terminal``: PPO does not bootstrap past the last day (:class:`training.vec_env.SimulatorVecEnv`);
* ``initial_share``: the share of each provider's mail the untrained policy's mean action puts on the new IP (the
  action head's bias; SB3 starts it at 0, i.e. 10%): where PPO starts exploring from;
* ``readiness_shaping``: potential-based shaping with the readiness bonus as the potential, at PPO's ``gamma``
  (same optimal policies, denser credit; episode statistics stay unshaped);
* ``spike_cost``: training-reward cost per provider and day with a jump the model punishes (>= 0; episode
  statistics stay unshaped);
* ``imitate`` / ``imitate_episodes``: before PPO, clone a baseline's actions (and fit the critic to its returns)
  over that many episodes per env (:mod:`training.imitation`); the baseline must act on the observation alone.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core.util import did_you_mean

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ppo.yml"

TRAINING_KEYS: dict[str, type | tuple[type, ...]] = {
    "n_envs": int,
    "n_timesteps": int,
    "frame_stack": int,
    "normalize": bool,
    "env_kwargs": dict,
    "eval_freq": int,
    "eval_episodes": int,
    "save_freq": int,
    "horizon_is_terminal": bool,
    "readiness_shaping": bool,
    "initial_share": (int, float),
    "spike_cost": (int, float),
    "imitate": str,
    "imitate_episodes": int,
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
            raise ConfigError(f"unknown hyperparameter {key!r}{did_you_mean(key, known)}")
        expected = TRAINING_KEYS.get(key)
        numeric_bool = isinstance(value, bool) and expected is not bool  # YAML's true is no number
        if expected is not None and (not isinstance(value, expected) or numeric_bool):
            kind = "a number" if expected == (int, float) else getattr(expected, "__name__", expected)
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
    if "initial_share" in config and not 1e-4 <= config["initial_share"] <= 1.0:
        raise ConfigError(f"hyperparameter 'initial_share' must be between 0.0001 and 1, got {config['initial_share']}")
    if "spike_cost" in config and not 0.0 <= config["spike_cost"] < float("inf"):
        raise ConfigError(f"hyperparameter 'spike_cost' must be a finite number >= 0, got {config['spike_cost']}")
    if "imitate" in config:
        from agents import BASELINES
        from training.imitation import TEACHERS_REFUSED

        teachers = [name for name in BASELINES if name not in TEACHERS_REFUSED]
        if config["imitate"] not in teachers:
            raise ConfigError(f"hyperparameter 'imitate' must be a baseline that acts on the observation alone "
                              f"({', '.join(teachers)}), got {config['imitate']!r}")
    if "imitate_episodes" in config and config["imitate_episodes"] < 1:
        raise ConfigError(f"hyperparameter 'imitate_episodes' must be at least 1, got {config['imitate_episodes']}")
    kwargs = config.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"policy_kwargs must be a mapping, got {kwargs!r}")
    if "activation_fn" in kwargs and kwargs["activation_fn"] not in ACTIVATIONS:
        raise ConfigError(f"policy_kwargs.activation_fn must be one of {ACTIVATIONS}, got {kwargs['activation_fn']!r}")


def make_policy_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    import torch.nn as nn

    kwargs = dict(config.get("policy_kwargs") or {})
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}[
            kwargs["activation_fn"]
        ]
    return kwargs


def build_model(config: dict[str, Any], venv: Any, seed: int, tensorboard_log: str | None = None) -> Any:
    """A fresh PPO on ``venv`` from a resolved config's PPO arguments (CPU: the MLP is too small for a GPU)."""
    from stable_baselines3 import PPO

    ppo_kwargs = {k: v for k, v in config.items() if k in _ppo_arguments()}
    ppo_kwargs["policy_kwargs"] = make_policy_kwargs(config)
    model = PPO(env=venv, seed=seed, device="cpu", verbose=0, tensorboard_log=tensorboard_log, **ppo_kwargs)
    if "initial_share" in config:
        import torch

        from core.actions import share_to_action

        action_head = model.policy.action_net
        assert isinstance(action_head, torch.nn.Linear)  # SB3's Gaussian head for a Box action space
        with torch.no_grad():
            action_head.bias.fill_(float(share_to_action(np.array(config["initial_share"], np.float64))))
    return model


