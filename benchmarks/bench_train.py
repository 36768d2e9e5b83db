"""Training throughput: PPO env-steps per second on the default config beside SB3 PPO on CartPole-v1.

Run ``python benchmarks/bench_train.py`` (``--quick`` for a smoke run). Both runs use the default
config's PPO hyperparameters, network, VecNormalize and number of envs, one torch thread, in the
same process; only the environment differs: ipwarmup's batched :class:`~training.vec_env.SimulatorVecEnv`
(one numpy call steps every env) against CartPole-v1 in SB3's ``DummyVecEnv`` (one Python env per
slot). Target from issue 4: at least CartPole's rate. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

from training.config import build_model, resolve_config  # noqa: E402
from training.run import make_training_env  # noqa: E402


def steps_per_second(venv: Any, config: dict[str, Any], n_timesteps: int, seed: int) -> float:
    """Wall-clock env-steps per second of ``PPO.learn`` (rollouts and gradient updates together)."""
    model = build_model(config, venv, seed)
    start = time.perf_counter()
    model.learn(n_timesteps)
    return model.num_timesteps / (time.perf_counter() - start)


def vec_step_us(venv: Any, actions: np.ndarray, steps: int = 500) -> float:
    """Microseconds per ``VecEnv.step`` of all envs at once (the env side of a rollout, no network)."""
    venv.reset()
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(actions)
    return (time.perf_counter() - start) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ipwarmup/NewIP-v1")
    parser.add_argument("-n", "--n-timesteps", type=int, default=400_000)
    parser.add_argument("--quick", action="store_true", help="a few rollouts only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = resolve_config(args.env, None, {})
    n_timesteps = config["n_envs"] * config["n_steps"] * 2 if args.quick else args.n_timesteps
    print(f"PPO, default config of {args.env}: n_envs={config['n_envs']}, n_steps={config['n_steps']}, "
          f"batch_size={config['batch_size']}, n_epochs={config['n_epochs']}, {n_timesteps:,} env-steps, 1 thread")

    ipwarmup = steps_per_second(make_training_env(config, seed=0), config, n_timesteps, seed=0)
    cartpole_env = VecNormalize(make_vec_env("CartPole-v1", n_envs=config["n_envs"], seed=0), gamma=config["gamma"])
    cartpole = steps_per_second(cartpole_env, config, n_timesteps, seed=0)
    print(f"{'env':<24}{'env-steps/s':>14}")
    print(f"{args.env:<24}{ipwarmup:>14,.0f}")
    print(f"{'CartPole-v1 (Dummy)':<24}{cartpole:>14,.0f}")
    print(f"ratio ipwarmup / CartPole: {ipwarmup / cartpole:.2f} (target >= 1)")
    n = config["n_envs"]
    ours = vec_step_us(make_training_env(config, seed=1), np.zeros((n, 5), np.float32))
    theirs = vec_step_us(VecNormalize(make_vec_env("CartPole-v1", n_envs=n, seed=1), gamma=config["gamma"]),
                         np.zeros(n, np.int64))
    print(f"env side only (VecNormalize included), one step of all {n} envs: ipwarmup {ours:,.0f} us, "
          f"CartPole {theirs:,.0f} us ({theirs / ours:.2f}x)")


if __name__ == "__main__":
    main()
