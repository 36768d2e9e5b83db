"""What never jumping costs a planner that knows everything, and what starting from the prior's floor costs it.

Run ``python benchmarks/guard_ceiling.py [--prior ipwarmup/Randomized-v1] [--episodes 50] [--workers 2]``.
On each env of the standard suite and its seeds, five policies play: ``oracle-nojump`` (the ceiling for a policy
that never jumps, day 1 judged against the true cold acceptance), the same planner whose day 1 starts from the
jump guard's base of a policy trained on ``--prior`` (what such a policy may assume before any answer: the
ceiling for it, as far as day 1 is concerned), ``ses-standard``, ``ses-standard`` through the same guard (SES's
plan as a sender who never jumps would send it) and ``oracle-reward`` (the reference of issue 13's 95% bar).

Prints per env the mean return of each with paired differences from ``ses-standard`` (mean [95% t CI], seeds
won). Where the floor-limited planner's is near zero or below, even a planner that knows everything but day 1's
cold acceptance does not beat SES's plan there without a jump (approximately: the planner is a heuristic search,
not an exact optimum). A second table gives each policy's IQM, the benchmark's statistic, and the floor-limited
planner's IQM as a share of ``oracle-reward``'s: where that share is under a bar, a guarded policy is unlikely to
reach the bar either (the same approximation).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
from rliable.metrics import aggregate_iqm  # noqa: E402

import envs  # noqa: E402,F401  (registers the ipwarmup ids)
from agents import load_policy  # noqa: E402
from core.guard import GuardedSends  # noqa: E402
from envs.dynamics import jump_guard  # noqa: E402
from envs.scenario import get_scenario  # noqa: E402
from evaluation.episodes import play_episode  # noqa: E402
from evaluation.specs import parse_env_spec  # noqa: E402
from evaluation.stats import paired_stats  # noqa: E402
from evaluation.suite import BENCHMARK_SEED_BASE, get_suite  # noqa: E402

FLOOR = "oracle-nojump (prior's day 1)"
GUARDED_SES = "ses-standard (guarded)"
POLICIES = ("oracle-nojump", FLOOR, "ses-standard", GUARDED_SES, "oracle-reward")


class Guarded:
    """A baseline whose actions pass through a jump guard, as a trained run's do (``RunPolicy``)."""

    def __init__(self, policy: Any, guarded_sends: GuardedSends) -> None:
        self.policy, self.guarded_sends = policy, guarded_sends

    def reset(self, seed: int | None = None) -> None:
        self.policy.reset(seed)
        self.guarded_sends.reset()

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """The policy's actions [n, P] (or [P] for one observation), lowered where the guard caps them."""
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        action, state = self.policy.predict(batch, state, episode_start, deterministic)
        guarded = self.guarded_sends.observed(action, batch, episode_start)
        return (guarded[0] if single else guarded), state


def returns(env_text: str, prior: str, seeds: list[int]) -> dict[str, np.ndarray]:
    """Each policy's return per seed on one env."""
    spec = parse_env_spec(env_text)
    env = gymnasium.make(spec.env_id, **spec.kwargs)
    out = {}
    try:
        guard = jump_guard(get_scenario(prior))
        for name in POLICIES:
            policy = load_policy({FLOOR: "oracle-nojump", GUARDED_SES: "ses-standard"}.get(name, name), env)
            if name == FLOOR:
                policy.day1_reference = guard.base
            if name == GUARDED_SES:
                policy = Guarded(policy, GuardedSends(guard))
            out[name] = np.array([play_episode(policy, env, seed).kpis()["return"] for seed in seeds])
    finally:
        env.close()
    return out


def paired(a: np.ndarray, b: np.ndarray) -> str:
    """Mean of a - b [95% paired-t CI], seeds a wins of n: the benchmark's paired comparison."""
    s = paired_stats(a, b)
    return f"{s['mean_diff']:+.2f} [{s['ci_low']:+.2f}, {s['ci_high']:+.2f}] {s['wins']}/{s['n']}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default="ipwarmup/Randomized-v1", help="the training env whose guard base day 1 "
                        "starts from (default ipwarmup/Randomized-v1)")
    parser.add_argument("--episodes", "-n", type=int, default=50)
    parser.add_argument("--workers", "-w", type=int, default=2)
    parser.add_argument("--env", nargs="+", help="env specs (default: the standard suite's)")
    args = parser.parse_args(argv)
    if args.episodes < 2 or args.workers < 1:
        parser.error("--episodes must be at least 2 and --workers at least 1")
    try:
        jump_guard(get_scenario(args.prior))
        env_texts = args.env or list(get_suite("standard").envs)
        for text in env_texts:
            parse_env_spec(text)
    except ValueError as err:
        parser.error(str(err))
    seeds = list(range(BENCHMARK_SEED_BASE, BENCHMARK_SEED_BASE + args.episodes))
    workers = min(args.workers, len(env_texts), os.cpu_count() or 1)
    if workers == 1:
        results = [returns(text, args.prior, seeds) for text in env_texts]
    else:  # spawn: forking after torch has started threads can deadlock
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                results = list(pool.map(returns, env_texts, [args.prior] * len(env_texts), [seeds] * len(env_texts)))
            except BrokenProcessPool as exc:
                parser.exit(1, f"guard_ceiling.py: error: a worker process died ({exc}); rerun with --workers 1\n")
    print(f"mean return over {args.episodes} seeds from {BENCHMARK_SEED_BASE}; day 1 from {args.prior}'s guard base")
    print("| env | oracle-nojump | " + FLOOR + " | ses-standard | floor-limited - ses-standard | "
          + GUARDED_SES + " - ses-standard |")
    print("|---|---|---|---|---|---|")
    for text, r in zip(env_texts, results, strict=True):
        print(f"| {text} | {r['oracle-nojump'].mean():.2f} | {r[FLOOR].mean():.2f} | {r['ses-standard'].mean():.2f} | "
              f"{paired(r[FLOOR], r['ses-standard'])} | {paired(r[GUARDED_SES], r['ses-standard'])} |")
    print()
    print(f"IQM return over the same seeds; share = {FLOOR}'s IQM / oracle-reward's")
    print("| env | " + " | ".join(POLICIES) + " | share |")
    print("|---|" + "---|" * (len(POLICIES) + 1))
    for text, r in zip(env_texts, results, strict=True):
        iqm = {name: float(aggregate_iqm(r[name])) for name in POLICIES}
        cells = " | ".join(f"{iqm[name]:.2f}" for name in POLICIES)
        print(f"| {text} | {cells} | {iqm[FLOOR] / iqm['oracle-reward']:.1%} |")


if __name__ == "__main__":
    main()
