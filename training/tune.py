"""Hyperparameter search with Optuna on Ray: ``ipwarmup tune``.

``ipwarmup tune --env ID -n STEPS --trials N --out DIR [--space configs/tune.yml] [-params k:v ...] [--address A]``

Hand tuning one run at a time does not scale and RL Baselines3 Zoo users expect Optuna. Optuna's TPE sampler
proposes configurations from the YAML search space; Ray runs the trials (one CPU each, as many at once as
the cluster has CPUs); the periodic evaluation of each trial (``--n-evaluations`` evenly spaced, on the
fixed evaluation seeds) feeds Optuna's median pruner, as RL Zoo prunes. A trial's value is its last
evaluation's mean return. The study lives in an actor on the driver's machine that owns ``DIR/study.db``
(SQLite), so trials anywhere in the cluster report to it. The tune folder::

    DIR/tune.json        the marker: what is searched; a rerun must match it (--trials may grow)
    DIR/study.db         the Optuna study: rerunning the command continues it without redoing finished trials
    DIR/trials/NNNN/     each trial's run folder (evaluate.py and export take it)
    DIR/trials.csv       one row per trial: state, value, parameters
    DIR/best.yml         the best configuration as a configs/ppo.yml entry: ``python train.py -conf DIR/best.yml``
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.sweep_folder import MAX_MARKER_BYTES, SweepError
from core.util import OneLineParser, atomic_write_text, fail, is_finite_number, shorten
from training.sweep import (
    check_reachable,
    error_line,
    pack_folder,
    sees_folder,
    start_ray,
    train_config,
    unpack_folder,
)

TUNE_FILE = "tune.json"
TUNE_TOOL = "ipwarmup tune"
STUDY_FILE = "study.db"
BEST_FILE = "best.yml"
TRIALS_FILE = "trials.csv"
STUDY_NAME = "ipwarmup"
DEFAULT_SPACE = Path(__file__).resolve().parent.parent / "configs" / "tune.yml"
STARTUP_TRIALS = 5
"""Random trials before TPE models the space, and trials the median pruner waits for (RL Zoo uses 5 and 10)."""


class TuneError(SweepError):
    """Bad tuning input (search space, --out); one line for the user."""


# --------------------------------------------------------------------------------------------- the search space


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: a range (``low``/``high``, maybe ``log``) or categorical ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Optuna's suggestion; categorical choices that are not scalars travel through Optuna as JSON text."""
        if self.choices:
            if all(c is None or isinstance(c, (bool, int, float, str)) for c in self.choices):
                return trial.suggest_categorical(self.name, list(self.choices))
            return json.loads(trial.suggest_categorical(self.name, [json.dumps(c) for c in self.choices]))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0.0), float(self.high or 0.0), log=self.log)

    def example(self) -> Any:
        return self.choices[0] if self.choices else self.low


def parse_space(data: Any, where: str) -> list[Param]:
    """A search space from its YAML data (``configs/tune.yml``'s format), every entry checked."""
    if not isinstance(data, dict) or not data:
        raise TuneError(f"search space {where} must map hyperparameters to ranges or lists of choices")
    params = []
    for name, spec in data.items():
        if not isinstance(name, str) or not name:
            raise TuneError(f"search space {where}: key {shorten(name)} is not a hyperparameter name")
        if isinstance(spec, list):
            if not spec:
                raise TuneError(f"search space {where}: {name} has no choices")
            params.append(Param(name, choices=tuple(spec)))
            continue
        if not isinstance(spec, dict) or set(spec) - {"low", "high", "log"} or not {"low", "high"} <= set(spec):
            raise TuneError(f"search space {where}: {name} must be {{low: A, high: B[, log: true]}} or a list "
                            f"of choices, got {shorten(spec)}")
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        numbers = is_finite_number(low) and is_finite_number(high) and low < high
        if not numbers or not isinstance(log, bool) or (log and low <= 0):
            raise TuneError(f"search space {where}: {name} needs numbers low < high (and low > 0 with log), "
                            f"got {shorten(spec)}")
        params.append(Param(name, low, high, log))
    return params


def load_space(path: Path) -> list[Param]:
    from training.config import load_config_yaml

    try:
        data = load_config_yaml(Path(path).read_text())
    except OSError as exc:
        raise TuneError(f"search space {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001  (a YAML error of any kind is the same bad input)
        raise TuneError(f"search space {path} is not valid YAML ({type(exc).__name__})") from None
    return parse_space(data, str(path))


def apply_params(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``values`` set; ``policy_kwargs.net_arch`` sets one key of a nested mapping."""
    out = json.loads(json.dumps(dict(config), default=str))
    for name, value in values.items():
        head, _, rest = name.partition(".")
        if rest:
            nested = out.get(head) or {}
            if not isinstance(nested, dict):
                raise TuneError(f"search space: {head} is not a mapping, so {name} cannot be set")
            out[head] = {**nested, rest: value}
        else:
            out[name] = value
    return out


def check_space(space: Sequence[Param], base: Mapping[str, Any]) -> None:
    """Validate every key and an example value of each (unknown keys get "did you mean")."""
    from training.config import ConfigError, validate_config

    try:
        validate_config(apply_params(base, {p.name: p.example() for p in space}))
    except ConfigError as exc:
        raise TuneError(f"search space: {exc}") from None


# --------------------------------------------------------------------------------------------- the study (an actor)


class StudyKeeper:
    """Owns the Optuna study (SQLite in the tune folder): the driver asks and tells, trials report evaluations.

    Run as one Ray actor on the driver's machine, so the study file needs no shared filesystem and every
    access is serialized.
    """

    def __init__(self, storage: str, sampler_seed: int, n_evaluations: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=n_evaluations // 3)
        self.study = optuna.create_study(study_name=STUDY_NAME, storage=storage, pruner=pruner, direction="maximize",
                                         load_if_exists=True)
        # Seeded by the study's length: a continued study does not replay the first run's random proposals.
        seed = sampler_seed + len(self.study.get_trials(deepcopy=False))
        self.study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS, constant_liar=True)
        self.live: dict[int, Any] = {}

    def recover(self) -> int:
        """Trials left running by a killed driver: failed, and their parameters queued to run again."""
        from optuna.trial import TrialState

        stale = [t for t in self.study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
        for t in stale:
            self.study.tell(t.number, state=TrialState.FAIL)
            self.study.enqueue_trial(t.params)
        return len(stale)

    def running(self) -> int:
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    def finished(self) -> int:
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def ask(self, space: list[Param]) -> tuple[int, dict[str, Any]]:
        trial = self.study.ask()
        self.live[trial.number] = trial
        values = {p.name: p.suggest(trial) for p in space}
        trial.set_user_attr("values", values)  # decoded (JSON choices as lists): what best.yml is built from
        return trial.number, values

    def report(self, number: int, step: int, value: float) -> bool:
        """Record an intermediate evaluation; True if the trial should stop (pruned)."""
        trial = self.live[number]
        trial.report(value, step)
        return bool(trial.should_prune())

    def tell(self, number: int, state: str, value: float | None = None) -> None:
        from optuna.trial import TrialState

        self.live.pop(number, None)
        kind = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}[state]
        self.study.tell(number, value if kind == TrialState.COMPLETE else None, state=kind)

    def table(self) -> list[dict[str, Any]]:
        return [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
                 "evaluations": len(t.intermediate_values), **{f"param:{k}": v for k, v in t.params.items()}}
                for t in self.study.get_trials(deepcopy=False)]

    def best(self) -> tuple[int, float, dict[str, Any]] | None:
        from optuna.trial import TrialState

        done = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
        if not done:
            return None
        t = max(done, key=lambda t: float(t.value or 0.0))
        return t.number, float(t.value or 0.0), dict(t.user_attrs.get("values") or {})


# --------------------------------------------------------------------------------------------- one trial (on a worker)


@dataclass(frozen=True)
class TuneTask:
    number: int
    out: str
    token: str
    config: dict[str, Any]
    seed: int
    keeper: Any
    command: str = ""
    tensorboard: bool = False


def pruning_callback(task: TuneTask, run_dir: Path) -> Any:
    """An SB3 callback that reports each periodic evaluation's mean return to the study and stops a pruned trial.

    It runs after the run's own callback (``train(callback=...)``) with the same schedule, so at each
    evaluation step the new row is already in ``metrics.csv``. Stopping (``_on_step`` returning False)
    ends training normally: the pruned trial's folder still holds its final model.
    """
    import ray
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.ppo import METRICS_FILE, read_metrics

    class Pruning(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.last_eval = 0
            self.values: list[float] = []
            self.pruned = False

        def _on_training_start(self) -> None:
            self.last_eval = self.num_timesteps

        def _on_step(self) -> bool:
            every = task.config["eval_freq"]
            if every <= 0 or self.num_timesteps - self.last_eval < every:
                return True
            self.last_eval = self.num_timesteps
            rows = read_metrics(run_dir / METRICS_FILE)
            if not rows:
                return True
            self.values.append(float(rows[-1]["return"]))
            self.pruned = bool(ray.get(task.keeper.report.remote(task.number, len(self.values), self.values[-1])))
            return not self.pruned

    return Pruning()


def tune_trial(task: TuneTask) -> dict[str, Any]:
    """Train one trial, its periodic evaluations reported to the study; stopped early if pruned."""
    import shutil
    import tempfile

    import numpy as np

    start = time.perf_counter()
    run_dir = Path(task.out) / "trials" / f"{task.number:04d}"
    shared = sees_folder(Path(task.out) / TUNE_FILE, task.token)
    scratch = None if shared else Path(tempfile.mkdtemp(prefix="ipwarmup-tune-"))
    work = run_dir if scratch is None else scratch / run_dir.name
    try:
        pruning = pruning_callback(task, work)
        train_config(task.config, task.seed, work, task.command, task.tensorboard, callback=pruning)
        values = list(pruning.values)
        if not values:  # the run ended before its first periodic evaluation: evaluate the final policy
            from agents.ppo import load_run_policy
            from training.run import evaluate_episodes

            episodes = evaluate_episodes(load_run_policy(work), task.config, task.config["eval_episodes"])
            values.append(float(np.mean([e["return"] for e in episodes])))
        record: dict[str, Any] = {"state": "pruned" if pruning.pruned else "complete", "value": values[-1],
                                  "evaluations": values, "seconds": round(time.perf_counter() - start, 2)}
        if scratch is not None:
            record["archive"] = pack_folder(work)
        return record
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------- the driver


@dataclass
class TunePlan:
    """A tuning job resolved and validated before Ray starts."""

    env_id: str
    base: dict[str, Any]
    space: list[Param]
    n_trials: int
    seed: int = 0
    sampler_seed: int = 0
    n_evaluations: int = 4
    train_eval: dict[str, Any] = field(default_factory=dict)
    """eval_freq and eval_episodes of the base configuration: best.yml keeps them (tuning overrides them)."""

    def spec(self) -> dict[str, Any]:
        """What a rerun must match (the number of trials may change)."""
        return json.loads(json.dumps({"env_id": self.env_id, "base": self.base, "seed": self.seed,
                                      "sampler_seed": self.sampler_seed, "n_evaluations": self.n_evaluations,
                                      "space": [p.__dict__ | {"choices": list(p.choices)} for p in self.space]},
                                     default=str))


def plan_tune(env_id: str, n_timesteps: int | None, n_trials: int, space_file: Path | None = None,
              conf_file: Path | None = None, params: Mapping[str, Any] | None = None, seed: int = 0,
              sampler_seed: int = 0, n_evaluations: int = 4, eval_episodes: int = 20) -> TunePlan:
    """Resolve the base configuration and the search space; every key checked."""
    from training.config import ConfigError, validate_config
    from training.sweep import plan_sweep

    if n_trials < 1 or n_evaluations < 1 or eval_episodes < 1:
        raise TuneError("--trials, --n-evaluations and --eval-episodes must each be at least 1")
    base = next(iter(plan_sweep(env_id, [seed], n_timesteps, conf_file, params).configs.values()))
    kept: dict[str, Any] = {k: base[k] for k in ("eval_freq", "eval_episodes") if k in base}
    base.update(eval_freq=max(1, base["n_timesteps"] // n_evaluations), eval_episodes=eval_episodes)
    try:
        validate_config(base)
    except ConfigError as exc:
        raise TuneError(str(exc)) from None
    space = load_space(space_file or DEFAULT_SPACE)
    check_space(space, base)
    return TunePlan(env_id, base, space, n_trials, seed, sampler_seed, n_evaluations, kept)


def prepare_tune_out(out: Path, plan: TunePlan, command: str) -> str:
    """Create ``out`` with the marker or check it holds this same search; returns its token."""
    path = out / TUNE_FILE
    if out.exists() and not out.is_dir():
        raise TuneError(f"--out {str(out)!r} exists and is a file; choose a folder")
    if path.is_file():
        try:
            marker = json.loads(path.read_text()) if path.stat().st_size <= MAX_MARKER_BYTES else None
        except (OSError, ValueError):
            marker = None
        if not isinstance(marker, dict) or marker.get("tool") != TUNE_TOOL:
            raise TuneError(f"{path} was not written by {TUNE_TOOL}")
        if {k: marker.get(k) for k in plan.spec()} != plan.spec():
            raise TuneError(f"--out {str(out)!r} holds a different search; rerun its own command (in {path}) "
                            "or choose another --out")
        return str(marker["token"])
    if out.is_dir() and any(out.iterdir()):
        raise TuneError(f"--out {str(out)!r} exists and is not a tune folder (no {TUNE_FILE}); choose another")
    out.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    atomic_write_text(path, json.dumps({"tool": TUNE_TOOL, "token": token, "command": command, **plan.spec()},
                                       indent=2) + "\n")
    return token


def run_tune(plan: TunePlan, out: Path, *, address: str | None = None, num_cpus: int | None = None,
             cpus_per_trial: float = 1, parallel: int | None = None, progress: bool | None = None,
             command: str = "", tensorboard: bool = False) -> dict[str, Any] | None:
    """Run trials until ``plan.n_trials`` have finished (complete or pruned); write trials.csv and best.yml.

    Returns the best trial (number, value, config) or None. Failed trials are reported and do not stop
    the search; it gives up after as many failures as trials asked for.
    """
    out = Path(out).resolve()
    if address:
        check_reachable(address)  # before anything is written
    token = prepare_tune_out(out, plan, command)
    storage = f"sqlite:///{out / STUDY_FILE}"
    local = StudyKeeper(storage, plan.sampler_seed, plan.n_evaluations)
    if local.finished() >= plan.n_trials and not local.running():
        print(f"all {plan.n_trials} trials already finished", flush=True)
        return write_tune_results(out, plan, local.table(), local.best())
    del local
    started = start_ray(address, num_cpus)
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from tqdm import tqdm

    try:
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        keeper: Any = ray.remote(StudyKeeper).options(num_cpus=0, scheduling_strategy=here).remote(
            storage, plan.sampler_seed, plan.n_evaluations)
        stale: int = ray.get(keeper.recover.remote())
        done: int = ray.get(keeper.finished.remote())
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_trial))
        slots = min(slots, parallel or slots)  # TPE learns only from finished trials: fewer at once search better
        remote = ray.remote(tune_trial).options(num_cpus=cpus_per_trial, max_retries=0)
        print(f"{done} of {plan.n_trials} trials already finished" + (f" ({stale} interrupted, queued again)"
                                                                     if stale else "") + f"; {slots} parallel slot(s)",
              flush=True)
        pending: dict[Any, int] = {}
        failures = pruned = 0
        with tqdm(total=plan.n_trials, initial=min(done, plan.n_trials), desc="trials", unit="trial",
                  file=sys.stderr, dynamic_ncols=True, disable=None if progress is None else not progress) as bar:
            while True:
                while len(pending) < slots and done + len(pending) < plan.n_trials and failures < plan.n_trials:
                    number, values = ray.get(keeper.ask.remote(plan.space))
                    config = apply_params(plan.base, values)
                    task = TuneTask(number, str(out), token, config, plan.seed, keeper, command, tensorboard)
                    pending[remote.remote(task)] = number
                if not pending:
                    break
                bar.set_postfix_str(f"running {len(pending)}, pruned {pruned}, failed {failures}")
                ready, _ = ray.wait(list(pending), num_returns=1)
                number = pending.pop(ready[0])
                try:
                    record = ray.get(ready[0])
                    if "archive" in record:
                        unpack_folder(record.pop("archive"), out / "trials" / f"{number:04d}")
                    ray.get(keeper.tell.remote(number, record["state"], record["value"]))
                    done += 1
                    pruned += record["state"] == "pruned"
                    bar.write(f"trial {number:4d} {record['state']:<8} mean return {record['value']:.4g} after "
                              f"{len(record['evaluations'])} evaluation(s), {record['seconds']:.0f} s", file=sys.stdout)
                    bar.update(1)
                except Exception as exc:  # noqa: BLE001  (a failed trial is reported, the search goes on)
                    ray.get(keeper.tell.remote(number, "failed"))
                    failures += 1
                    bar.write(f"trial {number:4d} FAILED {error_line(exc)}", file=sys.stderr)
        best = write_tune_results(out, plan, ray.get(keeper.table.remote()), ray.get(keeper.best.remote()))
        if failures >= plan.n_trials:
            print(f"ipwarmup tune: stopped: {failures} trials of this run failed (errors above; states in "
                  f"{out / TRIALS_FILE})", file=sys.stderr)
        return best
    finally:
        if started:
            ray.shutdown()


def write_tune_results(out: Path, plan: TunePlan, table: list[dict[str, Any]],
                       best: tuple[int, float, dict[str, Any]] | None) -> dict[str, Any] | None:
    """``trials.csv``, and ``best.yml``: the best trial's full configuration as a configs/ppo.yml entry."""
    import pandas as pd
    import yaml

    atomic_write_text(out / TRIALS_FILE, pd.DataFrame(table).to_csv(index=False, float_format="%.10g",
                                                                    lineterminator="\n"))
    if best is None:
        return None
    number, value, values = best
    config = apply_params(plan.base, values)
    entry = {k: v for k, v in config.items() if k not in ("env_id", "seed")} | plan.train_eval
    header = (f"# Best of {len(table)} `ipwarmup tune` trials: trial {number} (run folder trials/{number:04d}), mean "
              f"return {value:.4g} at its last periodic evaluation.\n# Train it: python train.py --env {plan.env_id} "
              f"-conf {out / BEST_FILE}\n# n_timesteps is the trials' budget (-n); eval_freq and eval_episodes are the "
              "base configuration's, not the tuning evaluations'.\n")
    atomic_write_text(out / BEST_FILE, header + yaml.safe_dump({plan.env_id: entry}, sort_keys=False))
    return {"number": number, "value": value, "config": config}


# --------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ipwarmup tune", description="Search PPO hyperparameters with Optuna (TPE, median "
                      "pruning) on Ray; writes DIR/best.yml for train.py -conf. Rerun the same command to continue.")
    p.add_argument("--env", required=True, help="env id, e.g. ipwarmup/Randomized-v1")
    p.add_argument("-n", "--n-timesteps", type=int, default=None, help="env steps per trial (overrides the config)")
    p.add_argument("--trials", type=int, required=True, help="finished (complete or pruned) trials to reach")
    p.add_argument("--out", type=Path, required=True, help="tune folder (created, or one this command made)")
    p.add_argument("--space", type=Path, default=None, help="search space YAML (default configs/tune.yml)")
    p.add_argument("-conf", "--conf-file", type=Path, default=None,
                   help="base hyperparameters (default configs/ppo.yml)")
    p.add_argument("-params", "--hyperparams", nargs="+", default=[], metavar="KEY:VALUE",
                   help="fixed overrides of the base configuration, values parsed as YAML")
    p.add_argument("--seed", type=int, default=0, help="training seed of every trial (default 0)")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    p.add_argument("--n-evaluations", type=int, default=4, help="periodic evaluations per trial, for pruning")
    p.add_argument("--eval-episodes", type=int, default=20, help="episodes per periodic evaluation (default 20)")
    p.add_argument("--address", default=None, help="Ray cluster to run on (HOST:PORT or auto); default: a local Ray")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all of this machine)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs reserved per trial (default 1)")
    p.add_argument("--parallel", type=int, default=None, help="trials at once at most (default: every free slot)")
    p.add_argument("-tb", "--tensorboard", action=argparse.BooleanOptionalAction, default=False,
                   help="TensorBoard logs in each trial's folder (default off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """``ipwarmup tune``: exit 0 with a best configuration, 1 if no trial completed, 2 on bad input."""
    from training.config import ConfigError, parse_params

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    prog = "ipwarmup tune"
    if args.cpus_per_trial <= 0 or any(v is not None and v < 1 for v in (args.num_cpus, args.parallel)):
        fail(prog, "--cpus-per-trial must be positive, --num-cpus and --parallel at least 1")
    try:
        plan = plan_tune(args.env, args.n_timesteps, args.trials, args.space, args.conf_file,
                         parse_params(args.hyperparams), args.seed, args.sampler_seed, args.n_evaluations,
                         args.eval_episodes)
        best = run_tune(plan, args.out, address=args.address, num_cpus=args.num_cpus,
                        cpus_per_trial=args.cpus_per_trial, parallel=args.parallel,
                        progress=False if args.quiet else None,
                        command=shlex.join(["ipwarmup", "tune", *argv]), tensorboard=args.tensorboard)
    except (ConfigError, SweepError) as exc:
        fail(prog, exc)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again to continue", file=sys.stderr)
        raise SystemExit(130) from None
    if best is None:
        fail(prog, f"no trial completed (all pruned or failed); see {args.out / TRIALS_FILE}", status=1)
    print(f"best: trial {best['number']}, mean return {best['value']:.4g}; wrote {args.out / BEST_FILE} "
          f"(python train.py --env {plan.env_id} -conf {args.out / BEST_FILE})")
