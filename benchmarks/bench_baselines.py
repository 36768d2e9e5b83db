"""Every baseline and the oracle on every scenario: mean and 95% CI of each episode KPI.

Run ``python benchmarks/bench_baselines.py`` (``--episodes 50`` seeds per scenario by default) and
it prints the markdown tables that ``docs/baselines.md`` holds. Same seeds, same numbers.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.registry import BASELINES  # noqa: E402
from envs import ENV_IDS  # noqa: E402
from evaluation.kpis import KPI_NAMES, mean_ci, run_episodes  # noqa: E402

DIGITS = {"inboxed_share": 4, "days_to_full": 1, "blocks": 0, "paused": 2, "return": 1}
PERCENT = {"complaint_rate", "worst_complaint_rate", "bounce_rate", "worst_bounce_rate", "deferral_share"}


def cell(name: str, values: list[float]) -> str:
    """'mean ± half-width'; rates in percent; days_to_full over the episodes that got there, with that share."""
    mean, lo, hi = mean_ci(values)
    if math.isnan(mean):
        return "never"
    scale, digits = (100.0, 3) if name in PERCENT else (1.0, DIGITS.get(name, 3 if abs(mean) < 10 else 1))
    text = f"{mean * scale:.{digits}f} ± {(hi - lo) / 2 * scale:.{digits}f}"
    if name == "days_to_full":
        reached = sum(math.isfinite(v) for v in values) / len(values)
        text += f" ({reached:.0%})"
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50, help="seeds per scenario")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--env", nargs="+", default=list(ENV_IDS), help="env ids")
    parser.add_argument("--policy", nargs="+", default=list(BASELINES), help="baseline names")
    args = parser.parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.episodes))
    print(f"{args.episodes} episodes per scenario, seeds {seeds[0]}..{seeds[-1]}; mean ± 95% CI half-width "
          "(normal approximation); rates in %; days_to_full over the episodes that reached full volume (share).")
    for env_id in args.env:
        started = time.perf_counter()
        print(f"\n### {env_id}\n")
        print("| policy | " + " | ".join(KPI_NAMES) + " |")
        print("|---" * (len(KPI_NAMES) + 1) + "|")
        for name in args.policy:
            kpis = run_episodes(name, env_id, seeds)
            print(f"| {name} | " + " | ".join(cell(k, [e[k] for e in kpis]) for k in KPI_NAMES) + " |", flush=True)
        print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
