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
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEARNING_RATES = ("3e-4", "1e-4")
SEEDS = (0, 1)


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the processes it waited for) of one command; a failure stops the run.

    Ray's worker processes are not waited for by the sweep's driver, so the sweep's CPU time comes from its
    trials' records instead (``cpu_seconds`` in runs.csv).
    """
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_sweep: {' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


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
        sequential = sequential_cpu = 0.0
        for lr in LEARNING_RATES:
            for seed in SEEDS:
                wall, cpu = timed([python, "train.py", "--env", args.env, "--seed", str(seed), "-n",
                                     str(args.n_timesteps), "--out", str(scratch / "seq" / f"lr{lr}-s{seed}"),
                                     "--eval-episodes", str(args.eval_episodes), "--no-tensorboard",
                                     "-params", f"learning_rate:{lr}", *extra[1:]])
                sequential += wall
                sequential_cpu += cpu
        sweep, _ = timed([python, "-m", "ipwarmup_cli", "sweep", "--env", args.env, "--seeds", *map(str, SEEDS), "-n",
                       str(args.n_timesteps), "--out", str(scratch / "sweep"), "--grid",
                       f"learning_rate={','.join(LEARNING_RATES)}", "--eval-episodes", str(args.eval_episodes),
                       "--no-tensorboard", "-q", *extra])
        load_after = os.getloadavg()[0]
        with (scratch / "sweep" / "runs.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        trial_seconds = [float(row["seconds"]) for row in rows]
        trial_cpu = [float(row["cpu_seconds"]) for row in rows]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runs = len(LEARNING_RATES) * len(SEEDS)
    cores = os.cpu_count() or 1
    per_trial, per_trial_cpu = sum(trial_seconds) / runs, sum(trial_cpu) / runs
    speedup = sequential / sweep
    print(f"{runs} runs of {args.n_timesteps:,} steps on {args.env} (+ report over {args.eval_episodes} episodes), "
          f"{cores} cores, load average {load_before:.1f} before / {load_after:.1f} after (1 minute)")
    print(f"one after another (train.py x {runs}): {sequential:7.1f} s wall, {sequential_cpu:7.1f} s CPU "
          f"({sequential / runs:.1f} s wall, {sequential_cpu / runs:.1f} s CPU per run)")
    print(f"ipwarmup sweep (local Ray, {cores} slots): {sweep:7.1f} s wall "
          f"(a trial inside Ray: {per_trial:.1f} s wall, {per_trial_cpu:.1f} s CPU)")
    print(f"speed-up: {speedup:.2f}x on {cores} cores (parallel efficiency {speedup / cores:.0%})")
    slots = args.nodes * args.cores
    per_hour = slots * 3600 / per_trial_cpu
    print(f"plan: {args.nodes} machines x {args.cores} cores = {slots} trials at once; a trial on a core of its own "
          f"takes about its CPU time, {per_trial_cpu:.1f} s -> about {per_hour:,.0f} runs of this size per hour "
          f"(one machine: {per_hour / args.nodes:,.0f}/h); {per_trial_cpu / args.n_timesteps * 1e6:.1f} "
          f"CPU-microseconds per env step, report included")


if __name__ == "__main__":
    main()
