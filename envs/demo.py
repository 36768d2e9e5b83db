"""Run one episode with a linear 45-day ramp and print what happened each day (``python -m envs.demo``)."""

from __future__ import annotations

import argparse

import gymnasium
import numpy as np

import envs
from core.actions import share_to_action


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="ipwarmup/NewIP-v1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    env = gymnasium.make(args.env)
    env.reset(seed=args.seed)
    print(f"{'day':>3} {'sent':>8} {'delivered':>9} {'inbox':>8} {'deferred':>8} {'bounced':>7} {'blocked':>7} "
          f"{'complaints':>10} {'reward':>7}  hidden reputation {envs.PROVIDERS}")
    total, day, done = 0.0, 0, False
    while not done:
        day += 1
        action = np.full(len(envs.PROVIDERS), share_to_action(np.array(min(1.0, day / 45))))
        _, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        done = terminated or truncated
        print(f"{day:>3} {info['sent'].sum():>8} {info['delivered'].sum():>9} {info['inbox'].sum():>8} "
              f"{info['deferred'].sum():>8} {info['bounced'].sum():>7} {info['blocked'].sum():>7} "
              f"{info['complaints'].sum():>10} {reward:>7.3f}  {np.round(info['reputation'], 2)}")
    print(f"return {total:.2f}; paused: {info['paused']}")


if __name__ == "__main__":
    main()
