"""Generalization: Randomized-v1-trained PPO (several training seeds) against every baseline on held-out profiles.

Run ``python benchmarks/bench_generalization.py RUN_DIR [RUN_DIR ...] --episodes 50``. The run folders
are pooled as one policy, ``ppo``: each training seed contributes its episodes, as rliable pools runs.
Every baseline and the oracle play the same evaluation seeds on every profile in
``envs.families.HELDOUT_PROFILES`` (never sampled in training). Prints the interquartile mean of the
share of demand inboxed with 95% stratified-bootstrap CIs, per profile and across profiles (each profile
a task), and issue 4's checks: PPO above every schedule and heuristic, and within 10% of the oracle.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from agents.registry import BASELINES, PRIVILEGED  # noqa: E402
from core.util import atomic_save  # noqa: E402
from evaluation.report import episodes_frame  # noqa: E402
from evaluation.runner import run  # noqa: E402
from evaluation.specs import parse_env_spec, parse_policy_specs  # noqa: E402
from evaluation.stats import summarize  # noqa: E402
from evaluation.suite import BENCHMARK_SEED_BASE, HELDOUT_ENV_SPECS  # noqa: E402

METRICS = ("inboxed_share", "return")
"""The headline KPI, and the objective PPO is trained for (which prices complaints: see oracle-reward)."""
POOLED = "ppo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="training run folders (Randomized-v1, one per training seed)")
    parser.add_argument("--episodes", "-n", type=int, default=50)
    parser.add_argument("--workers", "-w", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--csv", type=Path, help="also write the per-episode KPIs here")
    parser.add_argument("--from-csv", type=Path, help="summarize episodes written by an earlier --csv instead")
    args = parser.parse_args()
    if args.from_csv:
        episodes = pd.read_csv(args.from_csv)
        report(episodes, episodes["policy"].eq(POOLED).sum() // (len(HELDOUT_ENV_SPECS) * args.episodes),
               args.episodes, args.workers)
        return

    policies = parse_policy_specs([*BASELINES, *args.runs])
    envs = [parse_env_spec(text) for text in HELDOUT_ENV_SPECS]
    seeds = list(range(BENCHMARK_SEED_BASE, BENCHMARK_SEED_BASE + args.episodes))
    episodes = episodes_frame(run(policies, envs, seeds, workers=args.workers, trace_episodes=0))
    run_labels = {p.label for p in policies if p.is_path}
    episodes["policy"] = episodes["policy"].where(~episodes["policy"].isin(run_labels), POOLED)
    if args.csv:
        atomic_save(args.csv, lambda tmp: episodes.to_csv(tmp, index=False))
    report(episodes, len(run_labels), args.episodes, args.workers)


def report(episodes: pd.DataFrame, n_runs: int, n_episodes: int, workers: int) -> None:
    summary = summarize(episodes, list(METRICS), workers=workers)
    for metric in METRICS:
        print_table(summary[summary["kpi"] == metric], metric, n_runs, n_episodes)
        print()


def print_table(summary: pd.DataFrame, metric: str, n_runs: int, n_episodes: int) -> None:
    """One IQM column per profile plus 'all'; then the issue's checks on the 'all' column."""
    table = summary.pivot(index="policy", columns="env", values="iqm")
    low = summary.pivot(index="policy", columns="env", values="ci_low")
    high = summary.pivot(index="policy", columns="env", values="ci_high")
    columns = [c for c in table.columns if c != "all"] + ["all"]
    print(f"IQM of {metric} on held-out profiles, {n_episodes} episodes per policy and profile "
          f"({POOLED}: {n_runs} training seeds pooled); [95% stratified-bootstrap CI]")
    names = [c.rsplit("profile=", 1)[-1] for c in columns]
    print(f"{'policy':<20}" + "".join(f"{n:>24}" for n in names))
    for policy in table.sort_values("all", ascending=False).index:
        cells = [f"{table.at[policy, c]:.3f} [{low.at[policy, c]:.3f}, {high.at[policy, c]:.3f}]" for c in columns]
        print(f"{policy:<20}" + "".join(f"{cell:>24}" for cell in cells))
    fixed = table.drop(index=[POOLED, *PRIVILEGED, "random"], errors="ignore")["all"]
    best = fixed.idxmax()
    ppo, oracle = table.at[POOLED, "all"], table.at["oracle", "all"]
    print(f"best schedule or heuristic: {best} {fixed[best]:.3f}; {POOLED} {ppo:.3f} "
          f"({'above' if low.at[POOLED, 'all'] > high.at[best, 'all'] else 'NOT clearly above'} it, CIs)")
    reward_oracle = table.at["oracle-reward", "all"]
    print(f"{POOLED} / oracle = {ppo / oracle:.3f} (issue 4: >= 0.90 on inboxed_share); "
          f"{POOLED} / oracle-reward = {ppo / reward_oracle:.3f}")


if __name__ == "__main__":
    main()
