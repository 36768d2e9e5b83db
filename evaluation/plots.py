"""PNG figures read before the tables: ramps, rates against thresholds, hidden reputation, and rliable plots.

Per-day curves are the day-wise median over the traced episodes of a (policy, env); an episode that
SES paused stops early and its last day is marked with a cross. All figures use matplotlib's Agg
backend so the benchmark runs headless.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from evaluation.runner import Trace  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rliable import plot_utils  # noqa: E402

# Thresholds drawn on the rate plots (calibration/domain-facts.md 1.4 and 3.1).
SES_COMPLAINT_REVIEW, SES_COMPLAINT_PAUSE = 0.001, 0.005
SES_BOUNCE_REVIEW, SES_BOUNCE_PAUSE = 0.05, 0.10
GMAIL_COMPLAINT_SAFE, GMAIL_COMPLAINT_LIMIT = 0.001, 0.003
DEFERRAL_MARK = 0.05
"""A ramp-curve day is marked 'deferred' when more than this share of the new IP's attempts got a 4xx."""

DPI = 80


def policy_colors(policies: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One stable color per policy across every figure of a run."""
    cmap = plt.get_cmap("tab20" if len(policies) > 10 else "tab10")
    return {p: cmap(i % cmap.N) for i, p in enumerate(policies)}


def _stack(traces: Sequence[Trace], key: str) -> np.ndarray:
    """[episodes, days, ...] padded with NaN after an episode ended."""
    days = max(t.arrays["sent"].shape[0] for t in traces)
    values = [t.arrays[key] if key in t.arrays else getattr(t, key) for t in traces]
    out = np.full((len(values), days, *values[0].shape[1:]), np.nan)
    for i, v in enumerate(values):
        out[i, : v.shape[0]] = v
    return out


def _median(traces: Sequence[Trace], key: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(_stack(traces, key), axis=0)


def _ratio(traces: Sequence[Trace], num: str, den: str) -> np.ndarray:
    n, d = _stack(traces, num), _stack(traces, den)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.where(d > 0, n / np.maximum(d, 1), 0.0), axis=0)


def _ends(traces: Sequence[Trace]) -> list[int]:
    return [t.arrays["sent"].shape[0] for t in traces]


def _finish(fig: plt.Figure, path: Path, handles_from: plt.Axes | None = None) -> None:
    if handles_from is not None:
        handles, labels = handles_from.get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def plot_ramps(traces: Mapping[str, Sequence[Trace]], env_label: str, path: Path, colors: Mapping[str, tuple]) -> None:
    """Daily volume on the new IP per provider (log scale) with days of heavy deferral or any block marked."""
    providers = next(iter(traces.values()))[0].providers
    fig, axes = plt.subplots(1, len(providers), figsize=(3.2 * len(providers), 3.2), sharey=True)
    for j, provider in enumerate(providers):
        ax = axes[j]
        demand = _median(next(iter(traces.values())), "demand_by_provider")[:, j]
        days = np.arange(1, len(demand) + 1)
        ax.plot(days, demand, color="0.5", linestyle="--", linewidth=1, label="demand")
        for policy, ts in traces.items():
            sent = _median(ts, "sent")[:, j]
            x = np.arange(1, len(sent) + 1)
            ax.plot(x, np.where(sent > 0, sent, np.nan), color=colors[policy], linewidth=1.4, label=policy)
            deferred = _ratio(ts, "deferred", "sent")[:, j] > DEFERRAL_MARK
            blocked = _median(ts, "blocked")[:, j] > 0
            ax.scatter(x[deferred], sent[deferred], marker="v", s=14, color=colors[policy], zorder=3)
            ax.scatter(x[blocked], sent[blocked], marker="s", s=16, facecolors="none", edgecolors="k", zorder=4)
        ax.set_yscale("log")
        ax.set_title(provider)
        ax.set_xlabel("day")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("emails/day on the new IP")
    axes[0].scatter([], [], marker="v", color="0.3", label=f"> {DEFERRAL_MARK:.0%} deferred")
    axes[0].scatter([], [], marker="s", facecolors="none", edgecolors="k", label="blocks")
    fig.suptitle(f"Ramp curves: {env_label} (median of traced episodes)")
    _finish(fig, path, axes[0])


def plot_rates(traces: Mapping[str, Sequence[Trace]], env_label: str, path: Path, colors: Mapping[str, tuple]) -> None:
    """SES dashboard complaint and bounce rates and Gmail's daily complaint rate against their thresholds."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    gmail = next(iter(traces.values()))[0].providers.index("gmail")
    for policy, ts in traces.items():
        c = colors[policy]
        ses_c = _median(ts, "ses_complaint_rate")
        axes[0].plot(np.arange(1, len(ses_c) + 1), 100 * ses_c, color=c, label=policy)
        gm = _ratio(ts, "complaints", "delivered")[:, gmail]
        axes[1].plot(np.arange(1, len(gm) + 1), 100 * gm, color=c, label=policy)
        ses_b = _median(ts, "ses_bounce_rate")
        axes[2].plot(np.arange(1, len(ses_b) + 1), 100 * ses_b, color=c, label=policy)
        for end in _ends(ts):
            if end < len(ses_c):
                axes[0].plot(end, 100 * ses_c[end - 1], "x", color=c, markersize=8)
    lines = [
        (axes[0], SES_COMPLAINT_REVIEW, "SES review 0.1%", "orange"),
        (axes[0], SES_COMPLAINT_PAUSE, "SES pause 0.5%", "red"),
        (axes[1], GMAIL_COMPLAINT_SAFE, "Gmail safe < 0.1%", "orange"),
        (axes[1], GMAIL_COMPLAINT_LIMIT, "Gmail limit 0.3%", "red"),
        (axes[2], SES_BOUNCE_REVIEW, "SES review 5%", "orange"),
        (axes[2], SES_BOUNCE_PAUSE, "SES pause 10%", "red"),
    ]
    for ax, value, text, color in lines:
        ax.axhline(100 * value, color=color, linestyle=":", linewidth=1.2)
        ax.annotate(text, (0.01, 100 * value), xycoords=("axes fraction", "data"), fontsize="x-small", color=color,
                    va="bottom")
    titles = ("SES complaint rate (dashboard window)", "Gmail complaint rate (daily, FBL)",
              "SES bounce rate (dashboard window)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("day")
        ax.set_ylabel("%")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylim(top=max(axes[0].get_ylim()[1], 100 * SES_COMPLAINT_PAUSE * 1.15))
    axes[1].set_ylim(top=max(axes[1].get_ylim()[1], 100 * GMAIL_COMPLAINT_LIMIT * 1.3))
    axes[2].set_ylim(top=max(axes[2].get_ylim()[1], 100 * SES_BOUNCE_PAUSE * 1.15))
    fig.suptitle(f"Complaint and bounce rates: {env_label}")
    _finish(fig, path, axes[0])


def plot_reputation(traces: Mapping[str, Sequence[Trace]], env_label: str, path: Path, colors: Mapping[str, tuple],
                    high_reputation: float | None = None) -> None:
    """Hidden per-provider reputation (never observed by the policies) over time."""
    providers = next(iter(traces.values()))[0].providers
    fig, axes = plt.subplots(1, len(providers), figsize=(3.2 * len(providers), 3.0), sharey=True)
    for j, provider in enumerate(providers):
        ax = axes[j]
        for policy, ts in traces.items():
            rep = _median(ts, "reputation")[:, j]
            ax.plot(np.arange(1, len(rep) + 1), rep, color=colors[policy], label=policy)
        if high_reputation is not None:
            ax.axhline(high_reputation, color="0.4", linestyle=":", linewidth=1)
        ax.set_title(provider)
        ax.set_xlabel("day")
        ax.set_ylim(0, 1)
        ax.grid(True, alpha=0.3)
    warm = f" (dotted: warm at {high_reputation:g})" if high_reputation is not None else ""
    axes[0].set_ylabel("hidden reputation" + warm)
    fig.suptitle(f"Hidden reputation: {env_label}")
    _finish(fig, path, axes[0])


def plot_profiles(profiles: Mapping[str, np.ndarray], cis: Mapping[str, np.ndarray], taus: np.ndarray, metric: str,
                  path: Path, colors: Mapping[str, tuple]) -> None:
    """rliable performance profiles: the share of episodes (all envs) scoring above each threshold."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    plot_utils.plot_performance_profiles(dict(profiles), taus, performance_profile_cis=dict(cis), ax=ax,
                                         colors=dict(colors), xlabel=f"{metric} threshold $\\tau$",
                                         ylabel=f"fraction of episodes with {metric} > $\\tau$")
    ax.set_title(f"Performance profiles ({metric}, all envs, 95% CIs)")
    _finish(fig, path, ax)


def plot_intervals(points: Mapping[str, np.ndarray], intervals: Mapping[str, np.ndarray], metric_names: Sequence[str],
                   path: Path, colors: Mapping[str, tuple]) -> None:
    """rliable interval estimates: IQM (or PoI) per policy with 95% stratified-bootstrap CIs."""
    algorithms = list(points)
    fig, _ = plot_utils.plot_interval_estimates(dict(points), dict(intervals), list(metric_names),
                                                algorithms=algorithms, colors=dict(colors), xlabel="",
                                                subfigure_width=3.6, row_height=0.42)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
