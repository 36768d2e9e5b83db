"""Does memory help? RecurrentPPO (sb3-contrib, an LSTM policy) against PPO, both from scratch, same budget.

The sender sees its IP's reputation only through noisy, lagged signals (deferrals, opens, weekly dashboards), so a
policy with memory might read it better than one that sees a single day (issue 13). This measures that and nothing
else: both learners train on the same configuration (``--env``'s entry in ``configs/ppo.yml``, with ``imitate``
removed and the learning rate PPO uses from scratch; the recurrent one with ``policy: MlpLstmPolicy``), the same
seed and the same number of steps, and both act as a saved run does (``agents.ppo.RunPolicy``). Each is then
played on the standard suite's envs on seeds that neither training nor the suite uses, and the report gives per
env the mean return of each and of ``aimd``, with the paired difference (recurrent - feed-forward, mean [95% CI],
seeds won).

    pip install -e ".[recurrent]"
    python benchmarks/recurrent_pilot.py --seed 0 -n 3000000 --csv results/recurrent-pilot-s0.csv

It trains in this process on one thread (RecurrentPPO with its two LSTMs runs a few thousand steps/s on one core
here, PPO over 10,000): 3M steps take about half an hour. One training seed per run: the paired CIs cover the
evaluation episodes, not training's spread, so run several ``--seed``. Nothing is saved but the CSV of episode
returns and the report on stdout.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.util import atomic_write_text  # noqa: E402
from evaluation.kpis import mean_ci  # noqa: E402
from evaluation.suite import get_suite  # noqa: E402

PILOT_SEED_BASE = 3_000_000
"""Evaluation seeds: above the benchmark's 2,000,000 + 50 per env, so the suite's own episodes stay unseen."""
FROM_SCRATCH_LEARNING_RATE = 3e-4
"""The entry's 1e-4 is a small step after cloning; from scratch PPO uses the default's 3e-4 (configs/ppo.yml)."""
LSTM_HIDDEN = 64


def pilot_configs(env_id: str) -> dict[str, dict[str, Any]]:
    """The env's training configuration from scratch (no cloning, PPO's from-scratch learning rate), as PPO's
    and as the recurrent policy's (``policy: MlpLstmPolicy``, an LSTM of ``LSTM_HIDDEN`` units before each of the
    actor's and the critic's MLPs; sb3-contrib's default is 256, 64 matches the feed-forward layers)."""
    from training.config import ConfigError, resolve_config

    config = resolve_config(env_id, None, {"learning_rate": FROM_SCRATCH_LEARNING_RATE})
    config.pop("imitate", None)
    for key, neutral in (("frame_stack", 1), ("initial_share", None)):
        if config.get(key, neutral) != neutral:
            raise SystemExit(f"recurrent_pilot: {env_id}'s configuration sets {key}, which only PPO would get")
    network = {**(config.get("policy_kwargs") or {}), "lstm_hidden_size": LSTM_HIDDEN}
    try:
        recurrent = resolve_config(env_id, None, {**{k: v for k, v in config.items() if k != "env_id"},
                                                  "policy": "MlpLstmPolicy", "policy_kwargs": network})
    except ConfigError as exc:
        raise SystemExit(f"recurrent_pilot: {exc}; the comparison would be unequal") from None
    recurrent.pop("imitate", None)
    return {"ppo": config, "recurrent": recurrent}


def play(actor: Any, env_spec: str, seeds: range) -> list[float]:
    """Episode returns of ``actor`` on one suite env, one per seed, through the project's one episode loop."""
    from evaluation.episodes import run_episodes
    from evaluation.specs import parse_env_spec

    spec = parse_env_spec(env_spec)
    return [k["return"] for k in run_episodes(actor, spec.env_id, seeds, spec.kwargs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="ipwarmup/Randomized-v1", help="training env id")
    parser.add_argument("--seed", type=int, default=0, help="training seed (both learners)")
    parser.add_argument("-n", "--n-timesteps", type=int, default=3_000_000)
    parser.add_argument("--episodes", type=int, default=50, help="episodes per suite env")
    parser.add_argument("--csv", type=Path, help="write every episode's return here (atomically)")
    args = parser.parse_args(argv)
    if not 0 <= args.seed < 1_000_000 or args.n_timesteps < 1 or args.episodes < 1:
        parser.error("--seed must be in [0, 1000000) (training's seeds), -n and --episodes at least 1")
    try:
        import sb3_contrib  # noqa: F401
    except ImportError:
        parser.exit(2, "recurrent_pilot: sb3-contrib is not installed; pip install -e \".[recurrent]\"\n")
    import torch

    from agents import load_policy
    from training.config import build_model
    from training.run import live_policy, make_training_env

    torch.set_num_threads(1)
    configs = pilot_configs(args.env)
    seeds = range(PILOT_SEED_BASE, PILOT_SEED_BASE + args.episodes)
    envs = get_suite("standard").envs
    returns: dict[str, dict[str, list[float]]] = {}
    for name, config in configs.items():
        venv = make_training_env(config, seed=args.seed)
        model = build_model(config, venv, seed=args.seed)
        start = time.time()
        model.learn(args.n_timesteps)
        seconds = time.time() - start
        print(f"{name}: {args.n_timesteps:,} steps in {seconds:.0f} s ({args.n_timesteps / seconds:,.0f} steps/s)",
              file=sys.stderr, flush=True)
        venv.training = False
        # As a saved run plays: frozen normalization, the LSTM's memory carried day to day, then the jump guard.
        actor = live_policy(model, venv, config, Path(f"<{name}>"))
        returns[name] = {env: play(actor, env, seeds) for env in envs}
    returns["aimd"] = {env: play(load_policy("aimd"), env, seeds) for env in envs}
    print(report(returns, envs))
    if args.csv is not None:
        atomic_write_text(args.csv, returns_csv(returns))
    return 0


def report(returns: dict[str, dict[str, list[float]]], envs: tuple[str, ...]) -> str:
    lines = ["| env | ppo | recurrent | aimd | recurrent - ppo |", "|---|---|---|---|---|"]
    for env in (*envs, "all"):
        rows = envs if env == "all" else (env,)
        ppo, recurrent, aimd = (np.concatenate([returns[name][e] for e in rows])
                                for name in ("ppo", "recurrent", "aimd"))
        diff = recurrent - ppo
        mean, lo, hi = mean_ci(diff)
        lines.append(f"| {env} | {ppo.mean():.2f} | {recurrent.mean():.2f} | {aimd.mean():.2f}"
                     f" | {mean:+.2f} [{lo:+.2f}, {hi:+.2f}] {int((diff > 0).sum())}/{diff.size} |")
    return "\n".join(lines)


def returns_csv(returns: dict[str, dict[str, list[float]]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["policy", "env", "seed", "return"])
    for name, per_env in returns.items():
        for env, values in per_env.items():
            writer.writerows([name, env, PILOT_SEED_BASE + i, f"{v:.6f}"] for i, v in enumerate(values))
    return out.getvalue()


if __name__ == "__main__":
    sys.exit(main())
