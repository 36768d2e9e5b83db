"""Episode KPIs, in one place, with DESIGN.md's contract names.

:func:`day_kpis` turns one episode's daily per-provider counts into the numbers a deliverability engineer
reads; :func:`episode_kpis` does it from the episode's step infos. The benchmark, train.py's report and
periodic evaluation, export's schedule rollout and the training VecEnv's episode statistics all call them,
so every report counts the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.providers import PROVIDERS

KPI_NAMES: tuple[str, ...] = ("inboxed_share", "inboxed_share_all", "days_to_full", "complaint_rate",
                              "worst_complaint_rate", "bounce_rate", "worst_bounce_rate", "deferral_share", "blocks",
                              "spike_days", "paused", "return")
"""The contract names (DESIGN.md); each KPI dict also holds ``final_reputation_<provider>`` and ``length``."""
DAY_COUNTS: tuple[str, ...] = ("sent", "first_attempts", "delivered", "inbox", "deferred", "bounced", "blocked",
                               "complaints", "overflow", "overflow_delivered", "overflow_inbox", "overflow_bounced",
                               "overflow_complaints", "spike_excess")
"""The per-provider daily counts the KPIs are computed from (a subset of every step's info)."""
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


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def _worst(nums: np.ndarray, dens: np.ndarray) -> float:
    ok = dens >= REPRESENTATIVE
    return float(np.max(nums[ok] / dens[ok])) if ok.any() else 0.0


def days_to_full(carried: np.ndarray, demand: np.ndarray, delivered: np.ndarray, sent: np.ndarray) -> float:
    """First day (1-based) of ``FULL_RUN`` running full-volume days, or :data:`NEVER`."""
    full = (carried >= FULL_CARRY * demand) & (delivered >= FULL_DELIVERED * sent) & (sent > 0)
    if len(full) < FULL_RUN:
        return NEVER
    running = np.concatenate(([0], np.cumsum(full)))
    starts = np.flatnonzero(running[FULL_RUN:] - running[:-FULL_RUN] == FULL_RUN)  # windows of all-full days
    return float(starts[0] + 1) if starts.size else NEVER


def day_kpis(
    counts: Mapping[str, np.ndarray],
    demand: np.ndarray,
    rewards: np.ndarray,
    paused: bool,
    final_reputation: np.ndarray,
    feedback_loop: np.ndarray,
    providers: Sequence[str] = PROVIDERS,
) -> dict[str, float]:
    """KPIs of one episode from its daily counts ``counts[key]`` ``[days, P]`` (keys :data:`DAY_COUNTS`).

    * ``inboxed_share``: inboxed on the new IP / total fresh demand (``demand`` [days]);
      ``inboxed_share_all``: inboxed via any route (the new IP and the overflow route) / total fresh demand.
    * ``days_to_full``: see :func:`days_to_full`; the new IP's carried mail is its first attempts.
    * ``complaint_rate``: complaints / delivered at providers with a feedback loop, every route, SES's way.
    * ``bounce_rate``: hard bounces / sends (first attempts), every route, SES's way (a retry is not a new send).
    * ``deferral_share``: deferrals / attempts on the new IP (first attempts and retries).
    * ``worst_*``: the worst day with a representative volume (:data:`REPRESENTATIVE`).
    * ``spike_days``: days on which some provider got more first attempts than the model's spike allowance
      (1.6 x the recent peak, or x the cold acceptance on a new IP's first day): the jumps the model punishes.
    * ``blocks``: emails rejected (5xx); ``paused``: 1.0 if SES paused the account; ``return``: summed reward.
    """
    days = len(demand)
    if days == 0:
        raise ValueError("an episode needs at least one day")
    def per_day(key: str, mask: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(counts[key], np.float64).reshape(days, -1)
        return (x if mask is None else x * mask).sum(-1)

    total = {k: per_day(k) for k in DAY_COUNTS}
    fbl = np.asarray(feedback_loop, bool)
    # SES computes its rates per account, whatever route (IP) sent the mail (9.7).
    fbl_delivered = per_day("delivered", fbl) + per_day("overflow_delivered", fbl)
    complaints = per_day("complaints", fbl) + per_day("overflow_complaints", fbl)
    sends = total["first_attempts"] + total["overflow"]
    bounced = total["bounced"] + total["overflow_bounced"]
    demand = np.asarray(demand, np.float64)
    kpis = {
        "inboxed_share": _ratio(total["inbox"].sum(), demand.sum()),
        "inboxed_share_all": _ratio(total["inbox"].sum() + total["overflow_inbox"].sum(), demand.sum()),
        "days_to_full": days_to_full(total["first_attempts"], demand, total["delivered"], total["sent"]),
        "complaint_rate": _ratio(complaints.sum(), fbl_delivered.sum()),
        "worst_complaint_rate": _worst(complaints, fbl_delivered),
        "bounce_rate": _ratio(bounced.sum(), sends.sum()),
        "worst_bounce_rate": _worst(bounced, sends),
        "deferral_share": _ratio(total["deferred"].sum(), total["sent"].sum()),
        "blocks": float(total["blocked"].sum()),
        "spike_days": float((total["spike_excess"] > 0).sum()),
        "paused": float(paused),
        "return": float(np.sum(rewards)),
    }
    for name, rep in zip(providers, np.asarray(final_reputation, np.float64), strict=True):
        kpis[f"final_reputation_{name}"] = float(rep)
    kpis["length"] = float(days)
    return kpis


def episode_kpis(infos: Sequence[Mapping[str, Any]], rewards: Sequence[float]) -> dict[str, float]:
    """KPIs of one episode from its step infos (not the reset info) and rewards; see :func:`day_kpis`."""
    if not infos:
        raise ValueError("an episode needs at least one step info")
    counts = {k: np.stack([np.asarray(i[k]) for i in infos]) for k in DAY_COUNTS}
    last = infos[-1]
    return day_kpis(
        counts,
        demand=np.array([float(i["demand"]) for i in infos]),
        rewards=np.asarray(rewards, np.float64),
        paused=any(bool(i["paused"]) for i in infos),
        final_reputation=np.asarray(last["reputation"]),
        feedback_loop=np.asarray(last["fbl"], bool),
        providers=tuple(last.get("providers", PROVIDERS)),
    )


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and normal-approximation 95% CI over the finite values (NaN, e.g. 'never', are left out)."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else 0.0
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)
