"""How a policy's return holds up as the sender's demand grows past the training family's (10^7 emails a day).

The held-out ``big-sender`` profile fixes demand at 2x10^7 and draws everything else as Randomized-v1 does. This
plays it with its demand replaced by each ``--demands`` value, so the only thing that changes is scale, and prints
per demand the mean return of each policy over ``--episodes`` seeds, and how fast each policy grew the new IP's
volume early on: its first attempts on day 16 over day 1, as growth per three days (the guard allows x4.1),
geometric mean over the episodes:

    python benchmarks/demand_scale.py --policies runs/sweep-rand-carried/base/s0 oracle-reward \\
        --demands 1e5 1e6 5e6 1e7 2e7 --episodes 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402,F401  (registers the ipwarmup ids)
from agents import load_policy  # noqa: E402
from envs.profiles import HELDOUT_PROFILES  # noqa: E402
from evaluation.episodes import play_episode  # noqa: E402

SEED_BASE = 3_000_000
"""Above the suite's 2,000,000 + 50, so the suite's own episodes stay unseen."""
GROWTH_FROM, GROWTH_TO = 0, 15
"""Days 1 and 16 (indices): the early ramp, where the jump guard binds a policy that grows as fast as it may."""


def play_at(demand: float, policy: str, seeds: range) -> tuple[float, float]:
    """Mean return over ``seeds`` on big-sender at ``demand`` emails a day, and the early growth per three days."""
    profile = HELDOUT_PROFILES["big-sender"]
    saved = profile["demand"]
    profile["demand"] = demand
    try:
        env = gymnasium.make("ipwarmup/Randomized-v1", profile="big-sender")
        actor = load_policy(policy, env)
        episodes = [play_episode(actor, env, s) for s in seeds]
    finally:
        profile["demand"] = saved
    ratios = [max(float(e.infos[GROWTH_TO]["first_attempts"].sum()), 1.0)
              / max(float(e.infos[GROWTH_FROM]["first_attempts"].sum()), 1.0) for e in episodes]
    growth = float(np.exp(np.mean(np.log(ratios)) * 3.0 / (GROWTH_TO - GROWTH_FROM)))
    return float(np.mean([sum(e.rewards) for e in episodes])), growth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", nargs="+", required=True, help="baseline names or training run folders")
    parser.add_argument("--demands", nargs="+", type=float, default=[1e5, 1e6, 5e6, 1e7, 2e7])
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args(argv)
    if any(not 0 < d < 1e12 for d in args.demands) or args.episodes < 1:
        parser.error("--demands must be in (0, 1e12) emails a day and --episodes at least 1")
    seeds = range(SEED_BASE, SEED_BASE + args.episodes)
    print("| demand | policy | mean return | growth per 3 days, days 1-16 |\n|---|---|---|---|")
    for demand in args.demands:
        for policy in args.policies:
            try:
                mean, growth = play_at(demand, policy, seeds)
            except (ValueError, OSError) as exc:  # an unknown policy name or an unreadable run folder
                parser.exit(2, f"demand_scale: {exc}\n")
            print(f"| {demand:.0e} | {policy} | {mean:.2f} | x{growth:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
