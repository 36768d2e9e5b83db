"""Exported policy: ONNX-vs-SB3 agreement on 10,000 observations from real episodes, and latency per recommendation.

    python benchmarks/bench_runtime.py [--run RUN_DIR | --recurrent] [--n 10000] [--repeats 2000]

Without ``--run`` it trains a tiny run first (a few seconds; the network has the production shape, 2 x 64
tanh, so latency is representative; with ``--recurrent`` a 64-unit LSTM before it, ``policy: MlpLstmPolicy``).
It prints, measured in the same process:

* the maximum absolute action difference between the ONNX graph and ``agents.ppo.RunPolicy`` on ``--n``
  frame-stacked observation histories from episodes of the SB3 policy (with exploration noise); for a recurrent
  run, on every day of 16 such episodes, the graph reading the whole episode so far and the policy its memory;
* median and 90th-percentile latency of one decision for one sender: SB3 ``RunPolicy.predict`` on one
  observation, the ONNX graph on one history (``Runtime.act``), and the full ``Runtime.recommend`` from
  30 days of per-provider statistics (features + graph + caps), from a prepared ``History`` and from rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def timed(fn, repeats: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Per-call seconds over ``repeats`` calls after 50 warm-up calls."""
    for _ in range(50):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out


def recurrent_agreement(run: Path, runtime: object, envs: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A recurrent run on one NewIP-v1 episode per env (noisy actions): each day's observation history so far
    ``[days, envs, day, n_features]`` and |graph on that history - the policy's action, memory carried|. An env
    whose episode ends early (SES paused it) leaves the comparison: the graph would read on into the next."""
    from agents.ppo import load_run_policy
    from training.vec_env import SimulatorVecEnv

    policy = load_run_policy(run)
    policy.guard = None  # the graph is the network; the runtime applies the guard after it
    venv = SimulatorVecEnv("ipwarmup/NewIP-v1", envs, seed=0)
    rng = np.random.default_rng(0)
    obs, start, seen, histories, diffs = venv.reset(), np.ones(envs, bool), [], [], []
    playing = np.ones(envs, bool)
    for day in range(int(venv.get_attr("sim")[0].horizon)):
        playing &= ~start | (day == 0)
        seen.append(obs)
        action, _ = policy.predict(obs, episode_start=start)
        histories.append(np.stack(seen, axis=1)[playing])
        diffs.append(np.abs(runtime.act(histories[-1])[0] - action[playing]))  # type: ignore[attr-defined]
        obs, _, start, _ = venv.step(np.clip(action + rng.normal(0, 0.4, action.shape), -1, 1))
    return np.concatenate([h[:, -1] for h in histories]), np.concatenate(diffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="training run folder (default: train a tiny one)")
    parser.add_argument("--recurrent", action="store_true", help="train the tiny run with the recurrent policy")
    parser.add_argument("--n", type=int, default=10_000, help="observations for the agreement check")
    parser.add_argument("--repeats", type=int, default=2_000, help="timed calls per measurement")
    args = parser.parse_args()

    import torch
    from export_helpers import simulate, stats_rows, train_tiny_run
    from test_export import sample_histories

    from agents.ppo import load_run_policy
    from core.providers import PROVIDERS
    from deploy import runtime as rt
    from training.export import export_run

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    recurrent = {"policy": "MlpLstmPolicy", "frame_stack": 1, "policy_kwargs": {
        "net_arch": [64, 64], "activation_fn": "tanh", "lstm_hidden_size": 64}} if args.recurrent else None
    run = args.run or train_tiny_run(root / "run", extra=recurrent)
    export_run(run, root / "export", days=10)
    runtime = rt.load(root / "export")

    if runtime.recurrent:
        histories, diff = recurrent_agreement(run, runtime)
    else:
        histories, actions = sample_histories(run, args.n)
        diff = np.abs(runtime.act(histories)[0] - actions)
    print(f"agreement on {len(histories):,} observation histories from real episodes: max |ONNX - SB3| = "
          f"{diff.max():.2e}, mean {diff.mean():.2e} (target < 1e-5)")

    policy = load_run_policy(run)
    _, infos, shares = simulate(policy, seed=0, horizon=30)
    columns = ("sent", "delivered", "deferred", "bounced", "blocked", "complaints", "opens", "expired", "demand",
               "warmup_percentage")
    rows = stats_rows(infos, shares, columns)
    history = rt.History.from_rows(rows, PROVIDERS)
    obs = histories[100, -1][None] if histories.ndim == 3 else histories[100][None]
    one = runtime.observations(history)[None]  # the graph's input for the 30-day history below

    def sb3() -> None:
        policy.predict(obs, episode_start=np.zeros(1, bool))

    results = {
        "SB3 RunPolicy.predict (1 observation)": timed(sb3, args.repeats),
        "ONNX Runtime.act (1 history)": timed(lambda: runtime.act(one), args.repeats),
        "Runtime.recommend (30-day History)": timed(lambda: runtime.recommend(history), args.repeats),
        "Runtime.recommend (30 days of rows)": timed(lambda: runtime.recommend(rows), max(args.repeats // 10, 50)),
    }
    base = np.median(results["SB3 RunPolicy.predict (1 observation)"])
    print(f"\nlatency per decision, single thread ({args.repeats:,} calls each; python {sys.version.split()[0]}, "
          f"torch {torch.__version__}, onnxruntime {rt.ort.__version__})")
    print(f"{'':42}{'median':>12}{'p90':>12}{'SB3 / this':>12}")
    for name, seconds in results.items():
        median = np.median(seconds)
        print(f"{name:42}{median * 1e6:>10.1f}us{np.percentile(seconds, 90) * 1e6:>10.1f}us{base / median:>11.1f}x")


if __name__ == "__main__":
    main()
