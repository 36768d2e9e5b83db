"""Train a PPO warm-up policy: ``python train.py --env ipwarmup/NewIP-v1 --seed 0 -n 1000000 --out runs/x``.

With no arguments it trains on the embedded default (NewIP-v1, ``configs/ppo.yml``), then prints the
trained policy's KPIs beside SES standard's on 100 evaluation seeds never used in training.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.util import REPORT_EPISODE_LIMIT, OneLineParser, check_report_episodes, fail
from envs.scenario import ScenarioError


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="train.py", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="env id (default ipwarmup/NewIP-v1)")
    parser.add_argument("--seed", type=int, default=0, help="training seed, in [0, 1000000)")
    parser.add_argument("-n", "--n-timesteps", type=int, default=None, help="total env steps (overrides the config)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/<env>-s<seed>-<time>)")
    parser.add_argument("-conf", "--conf-file", type=Path, default=None,
                        help="hyperparameter YAML (default configs/ppo.yml)")
    parser.add_argument("-params", "--hyperparams", nargs="+", default=[], metavar="KEY:VALUE",
                        help="override hyperparameters, values parsed as YAML, e.g. n_envs:32")
    parser.add_argument("-i", "--resume", type=Path, default=None, metavar="RUN_DIR",
                        help="continue an interrupted run")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads (1 is fastest on 2 cores)")
    parser.add_argument("-tb", "--tensorboard", action=argparse.BooleanOptionalAction, default=True,
                        help="write TensorBoard logs to RUN_DIR/tb")
    parser.add_argument("--eval-episodes", type=int, default=100,
                        help=f"episodes for the final comparison with SES standard (0 skips it; at most "
                             f"{REPORT_EPISODE_LIMIT:,})")
    parser.add_argument("--convert-run", type=Path, default=None, metavar="RUN_DIR",
                        help="convert a run folder written by ipwarmup before the checkpoint format "
                             "(model.zip + vecnormalize.pkl pickles) and exit; needs --trust")
    parser.add_argument("--trust", action="store_true",
                        help="confirm that the --convert-run folder is yours: converting unpickles its old files, "
                             "which can run any code they contain (docs/security.md)")
    return parser


def convert(run_dir: Path, trust: bool) -> None:
    """``--convert-run``: one explicit, trusted conversion of an old run folder."""
    from training.run import LEGACY_DIR, convert_run

    if not trust:
        fail("train.py", f"--convert-run unpickles the old files in {run_dir}, which can run any code they contain; "
                         "if you trained this run yourself, add --trust (docs/security.md)")
    converted = convert_run(run_dir)
    if not converted:
        print(f"{run_dir}: nothing to convert (no stable-baselines3 pickles)")
        return
    print(f"converted {', '.join(str(p) for p in converted)}; originals kept in {run_dir / LEGACY_DIR}")


def main(argv: list[str] | None = None) -> None:
    from agents.ppo import RunError
    from training.config import ConfigError, parse_params
    from training.run import train

    args = build_parser().parse_args(argv)
    try:
        check_report_episodes(args.eval_episodes, low=0)
    except ValueError as exc:
        fail("train.py", exc)
    if args.convert_run is not None:
        try:
            convert(args.convert_run, args.trust)
        except RunError as exc:
            fail("train.py", exc)
        return
    env_id = args.env or (None if args.resume else "ipwarmup/NewIP-v1")
    out = args.out
    if out is None and env_id is not None:
        out = Path("runs") / f"{env_id.split('/')[-1]}-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        run_dir = train(env_id, args.seed, out, args.n_timesteps, args.conf_file, parse_params(args.hyperparams),
                        args.resume, args.num_threads, args.tensorboard)
        print(f"saved run to {run_dir}")
        if args.eval_episodes > 0:
            from training.report import compare_with_baseline

            print(compare_with_baseline(run_dir, args.eval_episodes))
    except KeyboardInterrupt as exc:
        import signal

        folder = args.resume or out
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"train.py: stopped by {signal.Signals(signum).name}; checkpoint saved; continue with: "
              f"python train.py --resume {folder}", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    except (ConfigError, RunError, ScenarioError) as exc:
        fail("train.py", exc)


if __name__ == "__main__":
    main()
