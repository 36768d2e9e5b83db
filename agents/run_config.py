"""What a training run's configuration may hold: the keys, their types and limits, the network arguments.

Both sides of a run read it: ``train.py`` validates a config before training (:mod:`training.config` resolves
the YAML), and loading a finished run (:mod:`agents.ppo`) validates the ``config.yaml`` it finds and rebuilds
the network from it. The keys are documented in :mod:`training.config`.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from core.features import MAX_FRAME_STACK
from core.guard import JumpGuard
from core.util import EVAL_SEED_BASE, REPORT_SEED_BASE, did_you_mean, is_finite_number, is_whole_number, shorten

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
    "jump_guard": bool,
}
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu")
FEED_FORWARD_POLICY = "MlpPolicy"
RECURRENT_POLICY = "MlpLstmPolicy"
"""sb3-contrib's RecurrentPPO: an LSTM (its memory carried from day to day) before the same MLP, for a reputation
the sender sees only through noisy, lagged signals. Installed with the ``recurrent`` extra."""
POLICIES = (FEED_FORWARD_POLICY, RECURRENT_POLICY)
LSTM_KWARGS: dict[str, type] = {"lstm_hidden_size": int, "n_lstm_layers": int, "shared_lstm": bool,
                                "enable_critic_lstm": bool}
"""The recurrent policy's own ``policy_kwargs`` (sb3-contrib's ``RecurrentActorCriticPolicy``)."""
LSTM_LIMITS = {"lstm_hidden_size": 1024, "n_lstm_layers": 8}
"""At most about 130M LSTM weights (actor and critic): far above anything measured (64 units, one layer), far below
what exhausts memory."""
MAX_WHOLE = 2**53
"""The largest whole number an integer argument may be: the largest every float holds exactly, far above any
meaningful count of steps, epochs or seeds, and small enough that no arithmetic on it overflows."""
WHOLE_RANGES: dict[str, tuple[int, int]] = {
    "n_envs": (1, 65_536),
    "n_timesteps": (1, MAX_WHOLE),
    "n_steps": (1, MAX_WHOLE),
    "n_epochs": (1, MAX_WHOLE),
    "frame_stack": (1, MAX_FRAME_STACK),
    "eval_episodes": (0, REPORT_SEED_BASE - EVAL_SEED_BASE),
    "imitate_episodes": (1, 100_000),
}
"""Bounds of the whole-number settings. They catch a typo before a run starts: a frame stack the exported card
could not hold, periodic-evaluation seeds that would run into the report's, more envs or imitation episodes than
any machine steps through."""
MAX_LAYER_WIDTH = 4096
"""The widest hidden layer ``net_arch`` may ask for: 64x the default's, well below what exhausts memory."""
CLASS_ARGUMENTS = ("features_extractor_class", "features_extractor_kwargs", "optimizer_class")
"""Policy arguments that name Python classes (or their arguments): a YAML file cannot give them, so they are refused
rather than passed on to fail inside SB3."""
RANGES: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, float("inf"), False),
    "clip_range": (0.0, float("inf"), False),
    "max_grad_norm": (0.0, float("inf"), False),
    "target_kl": (0.0, float("inf"), False),
    "ent_coef": (0.0, float("inf"), True),
    "vf_coef": (0.0, float("inf"), True),
    "gamma": (0.0, 1.0, False),
    "gae_lambda": (0.0, 1.0, True),
}
"""(low, high, low included) of PPO's numeric hyperparameters; the high end is always included (gamma 1 is an
undiscounted return). Outside them PPO trains without complaint into a policy that means nothing."""


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key or file."""


def is_recurrent(config: dict[str, Any]) -> bool:
    """Whether the config trains sb3-contrib's RecurrentPPO (``policy: MlpLstmPolicy``) rather than SB3's PPO."""
    return config.get("policy", FEED_FORWARD_POLICY) == RECURRENT_POLICY


def algorithm_class(config: dict[str, Any]) -> type:
    """The SB3 algorithm a config's ``policy`` trains with: PPO, or RecurrentPPO (sb3-contrib, an optional extra)."""
    if not is_recurrent(config):
        from stable_baselines3 import PPO

        return PPO
    try:
        from sb3_contrib import RecurrentPPO
    except ImportError:
        raise ConfigError(f"policy {RECURRENT_POLICY} trains with sb3-contrib's RecurrentPPO, which is not "
                          'installed: pip install -e ".[recurrent]"') from None
    return RecurrentPPO


def policy_arguments(config: dict[str, Any]) -> dict[str, inspect.Parameter]:
    """The network arguments ``policy_kwargs`` may set: the policy class's constructor arguments (SB3's
    ``ActorCriticPolicy``, or sb3-contrib's ``RecurrentActorCriticPolicy``) but the spaces and the schedule."""
    from stable_baselines3.common.policies import ActorCriticPolicy

    policy_class: type = ActorCriticPolicy
    if is_recurrent(config):
        algorithm_class(config)  # names the missing extra
        from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

        policy_class = RecurrentActorCriticPolicy
    excluded = {"observation_space", "action_space", "lr_schedule", *CLASS_ARGUMENTS}
    return {name: p for name, p in inspect.signature(policy_class).parameters.items() if name not in excluded}


def ppo_arguments(config: dict[str, Any] | None = None) -> dict[str, inspect.Parameter]:
    """The algorithm's constructor arguments a config may set (the env, seed, device and logging are the run's):
    PPO's, or RecurrentPPO's when ``config`` asks for the recurrent policy."""
    params = dict(inspect.signature(algorithm_class(config or {})).parameters)
    for internal in ("env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model"):
        params.pop(internal, None)
    return params


def validate_config(config: dict[str, Any]) -> None:
    policy = config.get("policy", FEED_FORWARD_POLICY)
    if policy not in POLICIES:
        raise ConfigError(f"hyperparameter 'policy' must be one of {', '.join(POLICIES)}, got {shorten(policy)}")
    ppo_args = ppo_arguments(config)
    known = set(TRAINING_KEYS) | set(ppo_args) | {"env_id", "seed"}
    for key, value in config.items():
        if key not in known:
            if key in ppo_arguments():
                raise ConfigError(f"hyperparameter {shorten(key)} is PPO's; policy {policy} trains with RecurrentPPO, "
                                  "which takes no such argument")
            raise ConfigError(f"unknown hyperparameter {shorten(key)}{did_you_mean(key, known)}")
        expected = TRAINING_KEYS.get(key)
        numeric_bool = isinstance(value, bool) and expected is not bool  # YAML's true is no number
        if expected is not None and (not isinstance(value, expected) or numeric_bool):
            kind = "a number" if expected == (int, float) else getattr(expected, "__name__", expected)
            raise ConfigError(f"hyperparameter {shorten(key)} must be {kind}, got {shorten(value)}")
        if key in ppo_args:
            _check_like_default(f"hyperparameter {shorten(key)}", value, ppo_args[key].default)
    for key, (low, high) in WHOLE_RANGES.items():
        if key in config and not low <= config[key] <= high:
            bound = f"at least {low}" if config[key] < low else f"at most {high:,}"
            raise ConfigError(f"hyperparameter {shorten(key)} must be {bound}, got {shorten(config[key])}")
    _check_ranges(config)
    _check_minibatches(config, ppo_args, policy)
    if "initial_share" in config and not 1e-4 <= config["initial_share"] <= 1.0:
        raise ConfigError("hyperparameter 'initial_share' must be between 0.0001 and 1, "
                          f"got {shorten(config['initial_share'])}")
    if "spike_cost" in config and not (is_finite_number(config["spike_cost"]) and config["spike_cost"] >= 0):
        raise ConfigError("hyperparameter 'spike_cost' must be a finite number >= 0, "
                          f"got {shorten(config['spike_cost'])}")
    kwargs = config.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ConfigError(f"policy_kwargs must be a mapping, got {shorten(kwargs)}")
    _check_network_arguments(kwargs, policy)
    if "activation_fn" in kwargs and kwargs["activation_fn"] not in ACTIVATIONS:
        raise ConfigError(f"policy_kwargs.activation_fn must be one of {ACTIVATIONS}, "
                          f"got {shorten(kwargs['activation_fn'])}")
    if policy == RECURRENT_POLICY and config.get("frame_stack", 1) != 1:
        raise ConfigError(f"policy {RECURRENT_POLICY} reads one day at a time and remembers the rest: frame_stack "
                          f"must be 1, got {config['frame_stack']}")
    for key, kind in LSTM_KWARGS.items():
        if key not in kwargs:
            continue
        value = kwargs[key]
        if policy != RECURRENT_POLICY:
            raise ConfigError(f"policy_kwargs.{key} is for policy {RECURRENT_POLICY} (an LSTM), not {policy}")
        limit = LSTM_LIMITS.get(key, 0)
        if not (is_whole_number(value, 1, limit) if kind is int else isinstance(value, bool)):
            wanted = f"a whole number in [1, {limit}]" if kind is int else "true or false"
            raise ConfigError(f"policy_kwargs.{key} must be {wanted}, got {shorten(value)}")
    if kwargs.get("shared_lstm", False) and kwargs.get("enable_critic_lstm", True):
        raise ConfigError("policy_kwargs.shared_lstm: true needs enable_critic_lstm: false (the critic either shares "
                          "the actor's LSTM or has its own)")
    known_kwargs = policy_arguments(config)
    for key, value in kwargs.items():
        if key not in known_kwargs:
            raise ConfigError(f"policy_kwargs has no argument {shorten(key)} for policy {policy}"
                              f"{did_you_mean(str(key), known_kwargs)}")
        _check_like_default(f"policy_kwargs.{key}", value, known_kwargs[key].default)
        if str(key).endswith("_kwargs") and value is not None and not isinstance(value, dict):
            raise ConfigError(f"policy_kwargs.{key} must be a mapping, got {shorten(value)}")
    if "lstm_kwargs" in kwargs:
        raise ConfigError("policy_kwargs.lstm_kwargs is not supported: the run format describes the LSTM by "
                          f"{', '.join(LSTM_KWARGS)} alone")


def check_trainable(config: dict[str, Any]) -> None:
    """What training needs beyond a valid config: checked before a run starts or resumes, not when a finished run
    is loaded, which evaluating and exporting do not need (an older run with eval_episodes 0 still loads)."""
    if config.get("eval_freq", 0) > 0 and config.get("eval_episodes", 1) < 1:
        raise ConfigError("hyperparameter 'eval_episodes' must be at least 1 while eval_freq is on (0 turns it off): "
                          "an evaluation of no episodes has no mean return to pick best_model by")


def _check_like_default(name: str, value: Any, default: Any) -> None:
    """A value of its default's kind (an argument of PPO or of the policy): true or false for a flag (SB3 reads any
    truthy string as true), a whole number for an integer, a finite number for a number."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {shorten(value)}")
    elif isinstance(default, (int, float)):
        whole = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):  # YAML's true is no number
            raise ConfigError(f"{name} must be {'an integer' if whole else 'a number'}, got {shorten(value)}")
        if not (is_whole_number(value, -MAX_WHOLE, MAX_WHOLE) if whole else is_finite_number(value)):
            bounds = f"a whole number of at most {MAX_WHOLE:,} in size" if whole else "a finite number"
            raise ConfigError(f"{name} must be {bounds}, got {shorten(value)}")


def _check_ranges(config: dict[str, Any]) -> None:
    """PPO's coefficients in their meaningful ranges (:data:`RANGES`)."""
    for key, (low, high, low_included) in RANGES.items():
        value = config.get(key)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"hyperparameter {shorten(key)} must be a number, got {shorten(value)}")
        if not is_finite_number(value):  # target_kl and clip_range_vf default to None, so nothing else checks them
            raise ConfigError(f"hyperparameter {shorten(key)} must be a finite number, got {shorten(value)}")
        if not (low <= value if low_included else low < value) or value > high:
            bounds = f"{'[' if low_included else '('}{low:g}, {high:g}{')' if math.isinf(high) else ']'}"
            raise ConfigError(f"hyperparameter {shorten(key)} must be in {bounds}, got {shorten(value)}")


def _check_minibatches(config: dict[str, Any], ppo_args: dict[str, inspect.Parameter], policy: str) -> None:
    """A rollout split into minibatches of at least two steps: the advantages are normalized per minibatch, and
    sb3-contrib's RecurrentPPO turns a one-step minibatch's (a standard deviation of NaN) into NaN weights."""
    n_steps = config.get("n_steps", ppo_args["n_steps"].default)
    batch_size = config.get("batch_size", ppo_args["batch_size"].default)
    rollout = n_steps * config.get("n_envs", 1)
    if batch_size < 2:
        raise ConfigError(f"hyperparameter 'batch_size' must be at least 2, got {batch_size}")
    if rollout < 2:
        raise ConfigError(f"a rollout of n_steps x n_envs = {rollout} step cannot be split into minibatches: "
                          "raise n_steps or n_envs")
    if policy == RECURRENT_POLICY and rollout % batch_size == 1:
        raise ConfigError(f"n_steps x n_envs = {rollout} leaves a minibatch of one step after batch_size "
                          f"{batch_size}, which RecurrentPPO trains into NaN weights: make batch_size divide {rollout}")


def _check_network_arguments(kwargs: dict[str, Any], policy: str) -> None:
    """The network's shape (``net_arch``) and the combinations of policy arguments SB3 would reject mid-build."""
    arch = kwargs.get("net_arch", [])
    widths = actor_critic_widths(arch)
    if widths is None or not all(is_whole_number(w, 1, MAX_LAYER_WIDTH) for w in widths[0] + widths[1]):
        raise ConfigError(f"policy_kwargs.net_arch must be a list of layer widths in [1, {MAX_LAYER_WIDTH}] or "
                          f"{{pi: [...], vf: [...]}}, got {shorten(arch)}")
    for key in CLASS_ARGUMENTS:
        if key in kwargs:
            raise ConfigError(f"policy_kwargs.{key} names a Python class or its arguments, which a config file "
                              "cannot give")
    if kwargs.get("squash_output", False) and not kwargs.get("use_sde", False):
        raise ConfigError("policy_kwargs.squash_output: true needs use_sde: true (SB3 squashes only gSDE's actions)")
    if policy == RECURRENT_POLICY and kwargs.get("shared_lstm", False) and \
            not kwargs.get("share_features_extractor", True):
        raise ConfigError("policy_kwargs.shared_lstm: true needs share_features_extractor: true (one LSTM reads the "
                          "features both heads share)")


def actor_critic_widths(arch: Any) -> tuple[list[Any], list[Any]] | None:
    """The actor's and the critic's layer widths of a ``net_arch`` (a list both share, or ``{pi: [...], vf:
    [...]}``), or None if it is neither. The widths are not checked: validation and the weight count read them."""
    if isinstance(arch, list):
        return arch, arch
    if isinstance(arch, dict) and set(arch) <= {"pi", "vf"} and all(isinstance(v, list) for v in arch.values()):
        return arch.get("pi", []), arch.get("vf", [])
    return None


def jump_guard_of(config: dict[str, Any]) -> JumpGuard | None:
    """The jump guard a run trains and acts with (``jump_guard: true``), built from its env and its ``env_kwargs``
    (the training prior's low cold acceptance and the model's spike allowance); None without one."""
    if not config.get("jump_guard", False):
        return None
    from envs.dynamics import jump_guard
    from envs.scenario import get_scenario

    return jump_guard(get_scenario(config["env_id"], **(config.get("env_kwargs") or {})))


def make_policy_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    import torch.nn as nn

    kwargs = dict(config.get("policy_kwargs") or {})
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}[
            kwargs["activation_fn"]
        ]
    return kwargs
