"""Sweep speed-up: four training runs one after another (``train.py``) against the same four as one ``ipwarmup sweep``.

Run ``python benchmarks/bench_sweep.py`` (``--quick`` for a smoke run). The four runs are 2 learning rates x
2 seeds of the env's configuration at ``-n`` steps, each with train.py's end-of-training report over
``--eval-episodes`` unseen episodes, exactly what the sweep's trials do. Both sides are the commands a user
types, so process start, imports and (for the sweep) Ray's start-up are in the figures. It prints the wall
times, the speed-up, the cost of one run, and from that the runs per hour of N machines (the plan in
docs/scaling.md). Figures are printed, never asserted; the load average shows whether the machine was shared.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEARNING_RATES = ("3e-4", "1e-4")
SEEDS = (0, 1)


def timed(cmd: list[str]) -> float:
    """Wall seconds of one command (its output discarded; a failure stops the benchmark with its stderr)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_sweep: {' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ipwarmup/NewIP-v1")
    parser.add_argument("-n", "--n-timesteps", type=int, default=500_000, help="env steps per run")
    parser.add_argument("--eval-episodes", type=int, default=100, help="episodes of each run's final report")
    parser.add_argument("--quick", action="store_true", help="tiny runs (a smoke test of the benchmark)")
    parser.add_argument("--nodes", type=int, default=10, help="machines in the planned cluster")
    parser.add_argument("--cores", type=int, default=16, help="cores per planned machine")
    args = parser.parse_args()
    extra: list[str] = []
    if args.quick:
        args.n_timesteps, args.eval_episodes = 4096, 5
        extra = ["-params", "n_envs:8", "n_steps:64", "batch_size:256", "n_epochs:1", "eval_freq:0"]
    scratch = Path(tempfile.mkdtemp(prefix="bench_sweep-"))
    python = sys.executable
    try:
        load_before = os.getloadavg()[0]
        sequential = 0.0
        for lr in LEARNING_RATES:
            for seed in SEEDS:
                sequential += timed([python, "train.py", "--env", args.env, "--seed", str(seed), "-n",
                                     str(args.n_timesteps), "--out", str(scratch / "seq" / f"lr{lr}-s{seed}"),
                                     "--eval-episodes", str(args.eval_episodes), "--no-tensorboard",
                                     "-params", f"learning_rate:{lr}", *extra[1:]])
        sweep = timed([python, "-m", "ipwarmup_cli", "sweep", "--env", args.env, "--seeds", *map(str, SEEDS), "-n",
                       str(args.n_timesteps), "--out", str(scratch / "sweep"), "--grid",
                       f"learning_rate={','.join(LEARNING_RATES)}", "--eval-episodes", str(args.eval_episodes),
                       "--no-tensorboard", "-q", *extra])
        load_after = os.getloadavg()[0]
        with (scratch / "sweep" / "runs.csv").open() as handle:
            trial_seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = len(LEARNING_RATES) * len(SEEDS)
    cores = os.cpu_count() or 1
    per_run = sequential / runs
    per_trial = sum(trial_seconds) / len(trial_seconds)
    print(f"{runs} runs of {args.n_timesteps:,} steps on {args.env} (+ report over {args.eval_episodes} episodes), "
          f"{cores} cores, load average {load_before:.1f} before / {load_after:.1f} after")
    print(f"one after another (train.py x {runs}): {sequential:7.1f} s  ({per_run:.1f} s per run)")
    print(f"ipwarmup sweep (local Ray, {cores} slots): {sweep:7.1f} s  (trials {per_trial:.1f} s each inside Ray)")
    speedup = sequential / sweep
    print(f"speed-up: {speedup:.2f}x on {cores} cores (parallel efficiency {speedup / cores:.0%})")
    print(f"cost of one run in the sweep: {sweep * cores / runs:.1f} core-seconds "
          f"({sweep * cores / runs / args.n_timesteps * 1e6:.1f} core-microseconds per env step, report included)")
    slots = args.nodes * args.cores
    per_hour = slots * 3600 / per_trial
    print(f"plan: {args.nodes} machines x {args.cores} cores = {slots} trials at once -> about {per_hour:,.0f} runs "
          f"of this size per hour (from {per_trial:.1f} s per trial; 1 machine: {per_hour / args.nodes:,.0f}/h)")


if __name__ == "__main__":
    main()
