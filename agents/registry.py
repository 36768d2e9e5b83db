"""``load_policy(spec, env)``: one entry point for every agent (DESIGN.md, "Contracts").

``spec`` is a baseline name (:data:`BASELINES`), a training run folder (holds ``model.zip``;
loaded by ``agents.ppo.load_run_policy``) or an exported policy card (``policy.json`` or a folder
holding it; loaded by ``deploy.runtime.load_card_policy``). The PPO and runtime loaders are
imported only when asked for, so baselines need neither torch nor onnxruntime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.heuristics import AIMD, BrazeAutomated, SESManaged
from agents.oracle import NO_JUMP_ORACLE, REWARD_ORACLE, OraclePolicy
from agents.policy import NoWarmup, Policy, RandomPolicy
from agents.schedules import SchedulePolicy, schedules
from core.util import did_you_mean


def _schedule(name: str) -> Callable[[Any], Policy]:
    return lambda env: SchedulePolicy(schedules()[name])


BASELINES: dict[str, Callable[[Any], Any]] = {
    **{name: _schedule(name) for name in schedules()},
    "no-warmup": lambda env: NoWarmup(),
    "braze-automated": lambda env: BrazeAutomated(),
    "aimd": lambda env: AIMD(),
    "ses-managed": lambda env: SESManaged(),
    "oracle": lambda env: OraclePolicy(env),
    "oracle-reward": lambda env: OraclePolicy(env, **REWARD_ORACLE),
    "oracle-nojump": lambda env: OraclePolicy(env, **NO_JUMP_ORACLE),
    "random": lambda env: RandomPolicy(),
}
"""Every named agent; fixed schedules first (their names are the keys of agents/data/schedules.yaml)."""
PRIVILEGED = ("oracle", "oracle-reward", "oracle-nojump")
"""The baselines that read the simulator's hidden state: ceilings, never a sender's option."""


def unknown_policy_message(spec: str) -> str:
    return (f"unknown policy {spec!r}{did_you_mean(spec, BASELINES)} Known baselines: {', '.join(BASELINES)}; "
            "or give a training run folder (with model.zip) or a policy card (policy.json)")


def _first_env(env: Any) -> Any:
    return env[0] if isinstance(env, (list, tuple)) and env else env


def load_policy(spec: str | Path, env: Any = None) -> Any:
    """An object with SB3's ``predict`` for ``spec``, acting on ``env`` (the oracle reads its simulator).

    ``env`` may be a gymnasium env, a ``WarmupVectorEnv``, an SB3 VecEnv or a list of envs; the
    oracle needs it, the other baselines ignore it. Unknown names raise ``ValueError`` listing the
    known ones.
    """
    if isinstance(spec, str) and spec in BASELINES:
        return BASELINES[spec](env)
    path = Path(spec)
    if path.is_dir() and (path / "model.zip").is_file():
        from agents.ppo import load_run_policy

        return load_run_policy(path, _first_env(env))
    if path.name == "policy.json" and path.is_file() or path.is_dir() and (path / "policy.json").is_file():
        from deploy.runtime import load_card_policy

        return load_card_policy(path, _first_env(env))
    if path.exists():
        raise ValueError(f"{str(spec)!r} is neither a training run folder (no model.zip) nor a policy card "
                         "(no policy.json)")
    raise ValueError(unknown_policy_message(str(spec)))
