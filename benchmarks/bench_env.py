"""Speed of the simulator: one env's ``step()`` beside CartPole-v1, and batched env-steps per second.

Run ``python benchmarks/bench_env.py`` (add ``--quick`` for a smoke run). Targets from issue 2: a
``WarmupEnv.step()`` costs at most 2x CartPole-v1's, measured in the same process; the batched
:class:`~envs.simulator.Simulator` runs over 1,000,000 env-steps/s at 1,024 envs on one core.
Figures are printed, never asserted: wall-clock speed depends on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from envs.simulator import Simulator  # noqa: E402


def _median_step_us(make: Callable[[], gymnasium.Env], steps: int, repeats: int, seed: int) -> float:
    """Median over ``repeats`` blocks of the mean microseconds per ``step()`` (resets excluded)."""
    env = make()
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(256)]
    env.reset(seed=seed)
    blocks: list[float] = []
    for _ in range(repeats):
        elapsed, done_steps = 0.0, 0
        while done_steps < steps:
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(actions[done_steps % len(actions)])
            elapsed += time.perf_counter() - t0
            done_steps += 1
            if terminated or truncated:
                env.reset()
        blocks.append(elapsed / steps * 1e6)
    return statistics.median(blocks)


def _batched_steps_per_s(env_id: str, n: int, days: int, repeats: int, seed: int) -> float:
    """Median env-steps/s of ``Simulator.step`` over ``n`` envs (episodes reset at the horizon, not timed)."""
    scenario = envs.get_scenario(env_id)
    sim = Simulator(scenario, n)
    rng = np.random.default_rng(seed)
    sim.reset(rng)
    actions = rng.uniform(-1.0, 1.0, size=(16, n, len(envs.PROVIDERS))).astype(np.float32)
    rates: list[float] = []
    for _ in range(repeats):
        elapsed = 0.0
        for d in range(days):
            t0 = time.perf_counter()
            result = sim.step(actions[d % len(actions)], rng)
            elapsed += time.perf_counter() - t0
            done = result.terminated | result.truncated
            if done.any():
                sim.reset(rng, done)
        rates.append(n * days / elapsed)
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ipwarmup/NewIP-v1")
    parser.add_argument("--steps", type=int, default=2_000, help="steps per timing block (single env)")
    parser.add_argument("--repeats", type=int, default=7, help="timing blocks; the median is reported")
    parser.add_argument("--n-envs", type=int, default=1_024)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, for a smoke test")
    args = parser.parse_args(argv)
    steps, repeats, days = (200, 3, 20) if args.quick else (args.steps, args.repeats, 120)

    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, gymnasium {gymnasium.__version__}; {threads}")
    cart = _median_step_us(lambda: gymnasium.make("CartPole-v1"), steps, repeats, seed=0)
    warm_raw = _median_step_us(lambda: envs.WarmupEnv(args.env), steps, repeats, seed=0)
    warm_made = _median_step_us(lambda: gymnasium.make(args.env), steps, repeats, seed=0)
    print(f"CartPole-v1 (gymnasium.make)          step: {cart:8.2f} us median")
    print(f"{args.env} (gymnasium.make)  step: {warm_made:8.2f} us median  ({warm_made / cart:.2f}x CartPole)")
    print(f"{args.env} (WarmupEnv direct) step: {warm_raw:8.2f} us median  ({warm_raw / cart:.2f}x CartPole)")
    rate = _batched_steps_per_s(args.env, args.n_envs, days, repeats, seed=0)
    print(f"Simulator.step at {args.n_envs} envs: {rate:,.0f} env-steps/s median (target > 1,000,000)")


if __name__ == "__main__":
    main()
