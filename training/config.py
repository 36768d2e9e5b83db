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
* ``jump_guard``: shield every action with :class:`core.guard.JumpGuard` (the model's spike allowance over the
  larger of yesterday's first attempts and the training prior's low cold acceptance), in training, evaluation,
  export and the runtime alike;
* ``imitate`` / ``imitate_episodes``: before PPO, clone a baseline's actions (and fit the critic to its returns)
  over that many episodes per env (:mod:`training.imitation`); the baseline must act on the observation alone.

``policy`` is ``MlpPolicy`` (SB3's PPO) or ``MlpLstmPolicy``: sb3-contrib's RecurrentPPO, whose actor and critic
read the observations through LSTMs (``policy_kwargs``: ``lstm_hidden_size``, ``n_lstm_layers``,
``shared_lstm``, ``enable_critic_lstm``; ``frame_stack`` stays 1), installed with the ``recurrent`` extra.
Cloning, evaluation, resuming, sweeps and export to ONNX take either.

Whole-number settings have bounds (:data:`agents.run_config.WHOLE_RANGES`): ``n_envs`` at most 65,536,
``frame_stack`` at most 1,000 (what an exported card holds), ``eval_episodes`` at most 500,000 (so periodic
evaluation's seeds stay below the report's), ``n_timesteps`` at most 2**53. ``eval_episodes`` must be at least 1
while ``eval_freq`` is on, checked when a run starts or resumes (an older run with 0 still loads).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.run_config import (  # noqa: F401 (re-exported: the training side's one import)
    ACTIVATIONS,
    TRAINING_KEYS,
    ConfigError,
    algorithm_class,
    check_trainable,
    make_policy_kwargs,
    ppo_arguments,
    validate_config,
)
from core.util import shorten
from training.imitation import check_teacher

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ppo.yml"


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
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer past Python's 4,300 digits
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
        except (yaml.YAMLError, ValueError):  # ValueError: an integer past Python's 4,300 digits
            raise ConfigError(f"-params value for {shorten(key)} is not valid YAML (or a number too long to read): "
                              f"{shorten(raw)}") from None
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
    check_trainable(config)
    check_teacher(config)
    config["env_id"] = env_id
    return config


def build_model(config: dict[str, Any], venv: Any, seed: int, tensorboard_log: str | None = None) -> Any:
    """A fresh PPO (or RecurrentPPO, for ``policy: MlpLstmPolicy``) on ``venv`` from a resolved config's arguments
    (CPU: the networks are too small for a GPU)."""
    ppo_kwargs = {k: v for k, v in config.items() if k in ppo_arguments(config)}
    ppo_kwargs["policy_kwargs"] = make_policy_kwargs(config)
    try:
        model = algorithm_class(config)(env=venv, seed=seed, device="cpu", verbose=0,
                                        tensorboard_log=tensorboard_log, **ppo_kwargs)
    except (AssertionError, TypeError, ValueError) as exc:  # an argument SB3 or torch refuses that validation let by
        raise ConfigError(f"the network the config describes cannot be built: {exc}") from None
    if "initial_share" in config:
        import torch

        from core.actions import share_to_action

        action_head = model.policy.action_net
        assert isinstance(action_head, torch.nn.Linear)  # SB3's Gaussian head for a Box action space
        with torch.no_grad():
            action_head.bias.fill_(float(share_to_action(np.array(config["initial_share"], np.float64))))
    return model


