"""Episode KPIs from step infos and rewards, in one place, with DESIGN.md's contract names.

:func:`episode_kpis` turns one episode's step infos into the numbers a deliverability engineer
reads; :func:`run_episodes` plays a policy on an env id for given seeds and returns them, one dict
per seed. ``evaluate.py`` and ``train.py`` both use it, so every report counts the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

import envs  # noqa: F401  (registers the ipwarmup ids)
from envs.scenario import PROVIDERS

KPI_NAMES: tuple[str, ...] = ("inboxed_share", "days_to_full", "complaint_rate", "worst_complaint_rate",
                              "bounce_rate", "worst_bounce_rate", "deferral_share", "blocks", "paused", "return")
"""The contract names (DESIGN.md); each KPI dict also holds ``final_reputation_<provider>`` and ``length``."""
NEVER = math.nan
"""``days_to_full`` when the new IP never reached full volume within the episode."""
FULL_CARRY = 0.95
"""'Full volume': the new IP carries at least this share of the day's demand ..."""
FULL_DELIVERED = 0.95
"""... and at least this share of what it sends is delivered ..."""
FULL_RUN = 3
"""... on this many days running (the first of them is ``days_to_full``)."""
REPRESENTATIVE = 1_000
"""Worst-day rates only count days with at least this many emails in the denominator, as SES judges
rates only over a representative volume (``Scenario.representative_volume``); 0 if no day qualifies."""


def _total(info: Mapping[str, Any], key: str) -> float:
    return float(np.sum(info[key]))


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def _worst(nums: np.ndarray, dens: np.ndarray) -> float:
    ok = dens >= REPRESENTATIVE
    return float(np.max(nums[ok] / dens[ok])) if ok.any() else 0.0


def days_to_full(carried: np.ndarray, demand: np.ndarray, delivered: np.ndarray, sent: np.ndarray) -> float:
    """First day (1-based) of ``FULL_RUN`` running full-volume days, or :data:`NEVER`."""
    full = (carried >= FULL_CARRY * demand) & (delivered >= FULL_DELIVERED * sent) & (sent > 0)
    for t in range(len(full) - FULL_RUN + 1):
        if full[t : t + FULL_RUN].all():
            return float(t + 1)
    return NEVER


def episode_kpis(infos: Sequence[Mapping[str, Any]], rewards: Sequence[float]) -> dict[str, float]:
    """KPIs of one episode from its step infos (not the reset info) and rewards.

    * ``inboxed_share``: inboxed on the new IP / total fresh demand.
    * ``days_to_full``: see :func:`days_to_full`; the new IP's carried mail is its first attempts
      (``info['first_attempts']`` if the env reports it, else ``min(sent, demand - overflow)``,
      exact with an overflow route; with none, retries count too).
    * ``complaint_rate``: FBL complaints / delivered at FBL providers (``info['fbl']``), SES's way.
    * ``bounce_rate``, ``deferral_share``: hard bounces, deferrals / attempts on the new IP.
    * ``worst_*``: the worst day with a representative volume (:data:`REPRESENTATIVE`).
    * ``blocks``: emails rejected (5xx); ``paused``: 1.0 if SES paused the account; ``return``: summed reward.
    """
    if not infos:
        raise ValueError("an episode needs at least one step info")
    sent = np.array([_total(i, "sent") for i in infos])
    delivered = np.array([_total(i, "delivered") for i in infos])
    demand = np.array([float(i["demand"]) for i in infos])
    if "first_attempts" in infos[0]:
        carried = np.array([_total(i, "first_attempts") for i in infos])
    else:
        carried = np.minimum(sent, demand - np.array([_total(i, "overflow") for i in infos]))
    fbl = [np.asarray(i["fbl"], bool) for i in infos]
    fbl_delivered = np.array([float(np.sum(np.asarray(i["delivered"]) * f)) for i, f in zip(infos, fbl, strict=True)])
    complaints = np.array([float(np.sum(np.asarray(i["complaints"]) * f)) for i, f in zip(infos, fbl, strict=True)])
    bounced = np.array([_total(i, "bounced") for i in infos])
    last = infos[-1]
    kpis = {
        "inboxed_share": _ratio(sum(_total(i, "inbox") for i in infos), demand.sum()),
        "days_to_full": days_to_full(carried, demand, delivered, sent),
        "complaint_rate": _ratio(complaints.sum(), fbl_delivered.sum()),
        "worst_complaint_rate": _worst(complaints, fbl_delivered),
        "bounce_rate": _ratio(bounced.sum(), sent.sum()),
        "worst_bounce_rate": _worst(bounced, sent),
        "deferral_share": _ratio(sum(_total(i, "deferred") for i in infos), sent.sum()),
        "blocks": sum(_total(i, "blocked") for i in infos),
        "paused": float(any(bool(i["paused"]) for i in infos)),
        "return": float(np.sum(rewards)),
    }
    providers = last.get("providers", PROVIDERS)
    for name, rep in zip(providers, np.asarray(last["reputation"], np.float64), strict=True):
        kpis[f"final_reputation_{name}"] = float(rep)
    kpis["length"] = float(len(infos))
    return kpis


def run_episodes(
    policy: Any,
    env_id: str,
    seeds: Sequence[int],
    env_kwargs: Mapping[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Play one episode per seed and return their KPI dicts, in seed order.

    ``policy`` is a spec for ``agents.load_policy`` (a name or a path) or an object with ``predict``.
    Episode ``i`` runs on ``gymnasium.make(env_id, **env_kwargs)`` reset with ``seeds[i]``, so its
    numbers depend on its seed alone, match ``evaluate_policy`` on the same env and repeat exactly.
    The envs step in lockstep and the policy sees them as one ``[n, OBS_SIZE]`` batch per day.
    """
    from agents.registry import load_policy

    if len(seeds) == 0:
        return []
    kwargs = dict(env_kwargs or {})
    env_list = [gymnasium.make(env_id, **kwargs) for _ in seeds]
    try:
        if isinstance(policy, (str, Path)):
            policy = load_policy(policy, env_list)
        elif hasattr(policy, "bind"):
            policy.bind(env_list)
        obs = np.stack([env.reset(seed=int(seed))[0] for env, seed in zip(env_list, seeds, strict=True)])
        n = len(env_list)
        infos: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        rewards: list[list[float]] = [[] for _ in range(n)]
        active = np.ones(n, bool)
        starts = np.ones(n, bool)
        while active.any():
            actions, _ = policy.predict(obs, episode_start=starts, deterministic=True)
            starts[:] = False
            for i in np.flatnonzero(active):
                obs[i], reward, terminated, truncated, info = env_list[i].step(np.asarray(actions[i]))
                rewards[i].append(float(reward))
                infos[i].append(info)
                active[i] = not (terminated or truncated)
    finally:
        for env in env_list:
            env.close()
    return [episode_kpis(i, r) for i, r in zip(infos, rewards, strict=True)]


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and normal-approximation 95% CI over the finite values (NaN, e.g. 'never', are left out)."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else 0.0
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)
