"""Training sweeps on Ray: a grid of configurations x seeds, one ordinary run folder per trial.

``ipwarmup sweep --env ID --seeds 0 1 2 -n STEPS --out DIR [-params k:v ...] [--grid k=v1,v2 ...] [--address ADDR]``

One training run is not a result; a configuration is several seeds, and a team sweeping configurations
outgrows one machine. Ray runs the trials: an embedded local Ray by default (nothing to set up), or an
existing cluster with ``--address``. Each trial is :func:`training.run.train` plus the same end-of-training
report as ``train.py`` (:func:`training.report.compare_with_baseline`), so a trial's folder is a run folder
that ``evaluate.py --policy`` and ``ipwarmup export`` take as they are. The sweep folder::

    DIR/sweep.json          the marker: env, seeds, every configuration resolved; a rerun must match it (or add seeds)
    DIR/CONFIG/sSEED/       a run folder (config.yaml, model.zip, checkpoints/, report.json, ...)
    DIR/CONFIG/sSEED/trial.json   written last: the trial is finished (its score and wall time)
    DIR/runs.csv            one row per trial: status, seconds, the per-run score or the error
    DIR/summary.csv         per configuration and KPI: IQM and 95% bootstrap CI across runs (rliable)

A run's score is its report: the mean KPIs of the final policy over ``--eval-episodes`` unseen report
seeds (the numbers ``train.py`` prints). Rerunning the same command skips finished trials, resumes an
interrupted one from its last checkpoint (or restarts it if it has none) and retries failed ones. Rerunning it
with more ``--seeds`` adds those seeds' trials to the sweep.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.sweep_folder import (
    SWEEP_FILE,
    SWEEP_TOOL,
    TRIAL_FILE,
    SweepError,
    read_marker,
    read_trial,
)
from core.util import (
    TRAINING_SEED_LIMIT,
    OneLineParser,
    atomic_write_text,
    check_report_episodes,
    did_you_mean,
    fail,
    shorten,
)

RUNS_FILE = "runs.csv"
SUMMARY_FILE = "summary.csv"
SWEEP_FORMAT = 1
BASE_CONFIG = "base"
"""The configuration's folder name when there is no ``--grid``."""
SCORED = ("return", "inboxed_share", "complaint_rate", "bounce_rate", "deferral_share", "blocks", "paused")
"""KPIs of a run's report that the summary aggregates (days_to_full is left out: its report mean skips 'never')."""
REACH_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection to ``--address`` before calling it unreachable (ray.init would hang)."""


# --------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Trial:
    """One training run of the grid: a configuration (by folder name) and a seed."""

    config: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.config}/s{self.seed}"


@dataclass
class SweepPlan:
    """What a sweep trains, fully resolved and validated before any trial starts."""

    env_id: str
    seeds: list[int]
    configs: dict[str, dict[str, Any]]
    """Folder name -> the resolved configuration (what ``config.yaml`` of each of its runs holds, less the seed)."""
    grid_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Folder name -> the grid values that make it differ from the others."""
    eval_episodes: int = 100

    def trials(self) -> list[Trial]:
        return [Trial(c, s) for c in self.configs for s in self.seeds]

    def spec(self) -> dict[str, Any]:
        """The part of the marker a rerun must match (JSON-normalized)."""
        return json.loads(json.dumps({"env_id": self.env_id, "seeds": self.seeds, "eval_episodes": self.eval_episodes,
                                      "configs": self.configs, "grid_values": self.grid_values}, default=str))


def split_values(text: str) -> list[str]:
    """Split ``v1,v2`` on commas outside brackets and braces, so ``[64,64],[128]`` is two values."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        depth += ch in "[{("
        depth -= ch in "]})"
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return parts


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["learning_rate=1e-4,3e-4", "n_steps=64,128"]`` -> values per key, each parsed as YAML like -params."""
    from training.config import load_config_yaml

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SweepError(f"--grid entry {shorten(item)} must look like key=value1,value2")
        if key in grid:
            raise SweepError(f"--grid key {key!r} is given twice")
        texts = split_values(raw)
        if not raw.strip() or any(not t for t in texts):
            raise SweepError(f"--grid {key}: empty value in {shorten(raw)}; give one or more values, comma separated")
        try:
            values = [load_config_yaml(t) for t in texts]
        except Exception:  # noqa: BLE001  (any YAML error is the same bad input)
            raise SweepError(f"--grid {key}: a value is not valid YAML (or a number too long to read): "
                             f"{shorten(raw)}") from None
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise SweepError(f"--grid {key}: a value is repeated in {shorten(raw)}")
        grid[key] = values
    return grid


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "_"


def config_name(values: Mapping[str, Any]) -> str:
    """Folder name of a grid point: ``key=value`` pairs in grid order, comma separated; ``base`` without a grid."""
    if not values:
        return BASE_CONFIG
    return ",".join(f"{k}={_slug(v)}" for k, v in values.items())


def _check_env_id(env_id: str) -> None:
    import envs

    if env_id not in envs.ENV_IDS:
        raise SweepError(f"unknown env id {env_id!r}{did_you_mean(env_id, envs.ENV_IDS)}"
                         f" (known: {', '.join(envs.ENV_IDS)})")


def plan_sweep(env_id: str, seeds: Sequence[int], n_timesteps: int | None = None, conf_file: Path | None = None,
               params: Mapping[str, Any] | None = None, grid: Mapping[str, Sequence[Any]] | None = None,
               eval_episodes: int = 100) -> SweepPlan:
    """Resolve and validate every configuration of the grid (unknown keys, bad values, bad env) up front."""
    from training.config import ConfigError, resolve_config

    _check_env_id(env_id)
    seeds = list(seeds)
    if not seeds:
        raise SweepError("no seeds: pass --seeds S [S ...]")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds has a repeated seed: {seeds}")
    bad = [s for s in seeds if not 0 <= s < TRAINING_SEED_LIMIT]
    if bad:
        raise SweepError(f"training seeds must be in [0, {TRAINING_SEED_LIMIT}), got {bad[0]}")
    try:
        check_report_episodes(eval_episodes, low=1)
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    if n_timesteps is not None and n_timesteps < 1:
        raise SweepError(f"-n must be at least 1, got {n_timesteps}")
    params, grid = dict(params or {}), dict(grid or {})
    for key, choices in grid.items():
        if not choices:
            raise SweepError(f"--grid {key} has no values")
        if key in params:
            raise SweepError(f"{key!r} is in both -params and --grid; give it in one")
    configs: dict[str, dict[str, Any]] = {}
    grid_values: dict[str, dict[str, Any]] = {}
    for point in itertools.product(*grid.values()):
        values = dict(zip(grid, point, strict=True))
        overrides = {**params, **values}
        if n_timesteps is not None:
            overrides["n_timesteps"] = n_timesteps
        try:
            config = resolve_config(env_id, conf_file, overrides)
        except ConfigError as exc:
            raise SweepError(str(exc)) from None
        _check_scenario(env_id, config.get("env_kwargs") or {})
        name = config_name(values)
        if len(name) > 120 or name in configs:
            from core.util import config_hash

            name = f"{name[:100]}-{config_hash(values)[:8]}"
        configs[name] = config
        grid_values[name] = values
    return SweepPlan(env_id, seeds, configs, grid_values, eval_episodes)


def _check_scenario(env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """Build the env once so a bad ``env_kwargs`` fails now, not in every trial."""
    import gymnasium

    import envs  # noqa: F401  (registers the ids)

    try:
        gymnasium.make(env_id, **env_kwargs).close()
    except (ValueError, TypeError) as exc:
        raise SweepError(f"env_kwargs for {env_id}: {exc}") from None


# --------------------------------------------------------------------------------------------- the sweep folder


def prepare_out(out: Path, plan: SweepPlan, command: str = "") -> str:
    """Create ``out`` with the marker, or check that it holds this same sweep; returns the sweep's token.

    The token lets a Ray worker tell whether it sees the driver's folder (one machine or a shared
    filesystem) or a different one with the same path, in which case the trial ships its folder back.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {str(out)!r} exists and is a file; choose a folder")
    marker = read_marker(out) if out.is_dir() else None
    if marker is not None:
        old, new = {k: marker.get(k) for k in plan.spec()}, plan.spec()
        if old != new and _adds_seeds(old, new):
            kept = list(old["seeds"] or [])
            seeds = kept + [seed for seed in new["seeds"] if seed not in kept]
            atomic_write_text(out / SWEEP_FILE, json.dumps(
                {**marker, "seeds": seeds, "command": command or marker.get("command", "")}, indent=2) + "\n")
        elif old != new:
            what = next(k for k in new if old[k] != new[k] and not (k == "seeds" and _more_seeds(old, new)))
            raise SweepError(f"--out {str(out)!r} holds a different sweep ({what} differ); rerun its own command "
                             f"(in {out / SWEEP_FILE}), add seeds to it, or choose another --out")
        return str(marker["token"])
    if out.is_dir() and any(out.iterdir()):
        raise SweepError(f"--out {str(out)!r} exists and is not a sweep folder (no {SWEEP_FILE}); choose another")
    out.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    atomic_write_text(out / SWEEP_FILE, json.dumps({"tool": SWEEP_TOOL, "format": SWEEP_FORMAT, "token": token,
                                                    "command": command, **plan.spec()}, indent=2) + "\n")
    return token


def _more_seeds(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` asks for every seed of ``old`` (in any order), and maybe more."""
    return isinstance(old["seeds"], list) and set(old["seeds"]) <= set(new["seeds"])


def _adds_seeds(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` is the sweep ``old`` with more seeds: same env, configurations and report, a superset of seeds.

    More seeds is how a configuration's result firms up; the finished runs stay as they are, and the marker keeps
    its seeds' order with the new ones after them.
    """
    return _more_seeds(old, new) and all(old[k] == new[k] for k in new if k != "seeds")


# --------------------------------------------------------------------------------------------- one trial (on a worker)


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs: no path it reads has to exist on its machine."""

    trial: Trial
    sweep_dir: str
    token: str
    config: dict[str, Any]
    eval_episodes: int
    command: str = ""
    tensorboard: bool = True


def sees_folder(marker: Path, token: str) -> bool:
    """Whether this machine sees the driver's folder: its marker file holds the driver's token."""
    try:
        return json.loads(Path(marker).read_text()).get("token") == token
    except (OSError, ValueError, AttributeError):
        return False


def run_trial(task: TrialTask) -> dict[str, Any]:
    """Train (or finish) one trial and score it; returns its record. Runs as a Ray task, one torch thread.

    Where the worker does not see the driver's sweep folder, the trial runs in a scratch folder and its
    finished run folder comes back in the record as a tar archive for the driver to unpack.
    """
    start, cpu = time.perf_counter(), time.process_time()
    run_dir = Path(task.sweep_dir) / task.trial.config / f"s{task.trial.seed}"
    shared = sees_folder(Path(task.sweep_dir) / SWEEP_FILE, task.token)
    scratch = None if shared else Path(tempfile.mkdtemp(prefix="ipwarmup-trial-"))
    work = run_dir if scratch is None else scratch / run_dir.name
    try:
        record = read_trial(work)
        if record is None:
            restarted = _train(task, work)
            kpis = _score(work, task.eval_episodes)
            record = {"status": "done", "config": task.trial.config, "seed": task.trial.seed,
                      "seconds": round(time.perf_counter() - start, 2),
                      "cpu_seconds": round(time.process_time() - cpu, 2), "host": socket.gethostname(),
                      "restarted": restarted, "kpis": kpis}
            atomic_write_text(work / TRIAL_FILE, json.dumps(record, indent=2) + "\n")
        if scratch is not None:
            record = {**record, "archive": pack_folder(work)}
        return record
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _train(task: TrialTask, work: Path) -> str | None:
    """Resume ``work`` if a killed sweep left it with a checkpoint, else train it from the start.

    Returns why an unfinished folder was restarted instead of resumed (None if it was not).
    """
    from agents.ppo import CONFIG_FILE, MODEL_FILE, RunError

    if (work / MODEL_FILE).is_file() and (work / "report.json").is_file():
        return None  # trained and reported; only the trial record is missing
    restarted = None
    if (work / CONFIG_FILE).is_file():
        try:
            train_config(task.config, task.trial.seed, work, task.command, task.tensorboard, resume=True)
            return None
        except RunError as exc:  # an unreadable checkpoint: start again
            restarted = str(exc)
            shutil.rmtree(work)
    train_config(task.config, task.trial.seed, work, task.command, task.tensorboard)
    return restarted


def train_config(config: Mapping[str, Any], seed: int, run_dir: Path, command: str = "", tensorboard: bool = True,
                 resume: bool = False, callback: Any = None) -> None:
    """:func:`training.run.train` on a resolved configuration, on a machine that may not have the config file.

    The configuration goes in as its own env entry of a temporary ``-conf`` file, so the run's
    ``config.yaml`` is identical to it; ``command.txt`` records ``command`` (the sweep's), not Ray's worker.
    """
    import yaml

    from training.run import train

    argv = sys.argv
    sys.argv = shlex.split(command) or argv
    try:
        if resume:
            train(None, seed, None, resume=run_dir, tensorboard=tensorboard, callback=callback)
            return
        with tempfile.TemporaryDirectory(prefix="ipwarmup-conf-") as tmp:
            conf = Path(tmp) / "trial.yml"
            entry = {k: v for k, v in config.items() if k not in ("env_id", "seed")}
            conf.write_text(yaml.safe_dump({config["env_id"]: entry}, sort_keys=False))
            train(config["env_id"], seed, run_dir, conf_file=conf, tensorboard=tensorboard, callback=callback)
    finally:
        sys.argv = argv


def _score(run_dir: Path, eval_episodes: int) -> dict[str, float | None]:
    """train.py's end-of-training report (``report.json``); a run's score is its PPO means."""
    from training.report import compare_with_baseline

    if not (run_dir / "report.json").is_file():
        compare_with_baseline(run_dir, eval_episodes)
    report = json.loads((run_dir / "report.json").read_text())
    return {k: report["mean_ci95"]["ppo"][k][0] for k in SCORED}


def pack_folder(folder: Path) -> bytes:
    """A finished run folder as a gzipped tar, to travel back to the driver in a task's result."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def unpack_folder(archive: bytes, run_dir: Path) -> None:
    """Unpack a worker's run folder into place: into a sibling temporary folder, then one rename."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.tmp-", dir=run_dir.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        if run_dir.exists():
            shutil.rmtree(run_dir)  # an unfinished attempt of this same trial, written by this sweep
        tmp.rename(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------- Ray


def check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens on (``ray.init`` would wait for minutes)."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SweepError(f"--address {address!r} must look like HOST:PORT (e.g. 10.0.0.1:6379) or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        raise SweepError(f"cannot reach a Ray cluster at {address!r}: {exc.strerror or exc}") from None


def start_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to ``address`` or start an embedded local Ray; returns False if Ray was already running here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address:
        # Token authentication, as Ray enables it for a new local cluster, without its warning on every run.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if ray.is_initialized():
        return False
    if address:
        check_reachable(address)
        try:
            with _stderr_muted():  # Ray's C++ client logs a warning per connection retry, straight to fd 2
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # noqa: BLE001  (Ray raises several kinds here; each is one line for the user)
            hint = "" if os.environ.get("RAY_AUTH_MODE") else (
                " (a cluster with token authentication needs RAY_AUTH_MODE=token here and its token in "
                "~/.ray/auth_token or RAY_AUTH_TOKEN: docs/scaling.md)")
            raise SweepError(f"cannot connect to the Ray cluster at {address!r}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}{hint}") from None
    else:
        # Worker output goes to Ray's log files: the driver's terminal shows the sweep's progress only.
        try:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        except Exception as exc:  # noqa: BLE001
            raise SweepError(f"cannot start a local Ray: {error_line(exc)}") from None
    return True


@contextlib.contextmanager
def _stderr_muted() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block (native libraries' output included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def error_line(exc: BaseException) -> str:
    """``Type: message`` of a trial's exception (Ray wraps it; the cause is what the user needs)."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


@dataclass
class SweepOutcome:
    """Per trial: its record (finished) or its error (failed); nothing for trials never started."""

    done: dict[Trial, dict[str, Any]] = field(default_factory=dict)
    failed: dict[Trial, str] = field(default_factory=dict)
    summary: Any = None
    """The table written to ``summary.csv`` (a pandas DataFrame)."""


def run_sweep(plan: SweepPlan, out: Path, *, address: str | None = None, num_cpus: int | None = None,
              cpus_per_trial: float = 1, progress: bool | None = None, command: str = "",
              tensorboard: bool = True, reps: int = 2000) -> SweepOutcome:
    """Run every unfinished trial of ``plan`` on Ray and write ``runs.csv`` and ``summary.csv`` into ``out``.

    A failed trial is recorded with its error and does not stop the others. If Ray is already
    initialized in this process it is used as is (and left running); otherwise it is started and shut down.
    """
    out = Path(out).resolve()
    if address:
        check_reachable(address)  # before anything is written
    token = prepare_out(out, plan, command)
    outcome = SweepOutcome()
    todo = []
    for trial in plan.trials():
        record = read_trial(out / trial.config / f"s{trial.seed}")
        if record is None:
            todo.append(trial)
        else:
            outcome.done[trial] = record
    if todo:
        _run_on_ray(plan, out, token, todo, outcome, address, num_cpus, cpus_per_trial, progress, command,
                    tensorboard)
    else:
        _echo(f"all {len(outcome.done)} trials already finished")
    outcome.summary = write_results(out, plan, outcome, reps)
    return outcome


def _run_on_ray(plan: SweepPlan, out: Path, token: str, todo: list[Trial], outcome: SweepOutcome,
                address: str | None, num_cpus: int | None, cpus_per_trial: float, progress: bool | None,
                command: str, tensorboard: bool) -> None:
    started = start_ray(address, num_cpus)  # before this module imports ray: it reads its settings on import
    import ray
    from tqdm import tqdm

    try:
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_trial))
        remote = ray.remote(run_trial).options(num_cpus=cpus_per_trial, max_retries=0)
        pending = {remote.remote(TrialTask(t, str(out), token, plan.configs[t.config], plan.eval_episodes, command,
                                           tensorboard)): t for t in todo}
        before = len(outcome.done)
        _echo(f"{len(todo)} trials to run ({before} already finished) on {slots} parallel slot(s)")
        with tqdm(total=before + len(todo), initial=before, desc="trials", unit="run", file=sys.stderr,
                  dynamic_ncols=True, disable=None if progress is None else not progress) as bar:
            bar.set_postfix_str(f"running {min(slots, len(pending))}, failed 0")
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                trial = pending.pop(ready[0])
                try:
                    record = ray.get(ready[0])
                    if "archive" in record:
                        unpack_folder(record.pop("archive"), out / trial.config / f"s{trial.seed}")
                    outcome.done[trial] = record
                    bar.write(f"done   {trial.name} ({record['seconds']:.0f} s): "
                              f"return {record['kpis']['return']:.3g}, "
                              f"inboxed_share {record['kpis']['inboxed_share']:.3g}", file=sys.stdout)
                except Exception as exc:  # noqa: BLE001  (a failed trial is reported, the others go on)
                    outcome.failed[trial] = error_line(exc)
                    bar.write(f"FAILED {trial.name}: {outcome.failed[trial]}", file=sys.stderr)
                bar.update(1)
                bar.set_postfix_str(f"running {min(slots, len(pending))}, failed {len(outcome.failed)}")
                write_runs(out, plan, outcome)
    finally:
        if started:
            ray.shutdown()


def _echo(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------------------------- results


def _rows(out: Path, plan: SweepPlan, outcome: SweepOutcome) -> Iterator[dict[str, Any]]:
    for trial in plan.trials():
        record, error = outcome.done.get(trial), outcome.failed.get(trial)
        status = "done" if record else "failed" if error else "pending"
        row: dict[str, Any] = {"config": trial.config, "seed": trial.seed, "status": status,
                               "run_dir": f"{trial.config}/s{trial.seed}",
                               "seconds": record.get("seconds") if record else None,
                               "cpu_seconds": record.get("cpu_seconds") if record else None,
                               "host": record.get("host") if record else None}
        row.update({k: (record or {}).get("kpis", {}).get(k) for k in SCORED})
        row["error"] = error
        yield row


def write_runs(out: Path, plan: SweepPlan, outcome: SweepOutcome) -> None:
    """``runs.csv``: every trial's status, wall time and score (or error), rewritten after each trial."""
    import pandas as pd

    frame = pd.DataFrame(list(_rows(out, plan, outcome)))
    atomic_write_text(out / RUNS_FILE, frame.to_csv(index=False, float_format="%.10g", lineterminator="\n"))


def summarize_runs(plan: SweepPlan, outcome: SweepOutcome, reps: int = 2000) -> Any:
    """Per configuration and KPI over its finished runs: IQM and 95% stratified-bootstrap CI (rliable).

    The runs of a configuration are rliable's runs on one task; ``evaluation.stats.summarize`` makes the call.
    """
    import pandas as pd

    from evaluation import stats

    def score(record: dict[str, Any], kpi: str) -> float:
        value = record["kpis"].get(kpi)
        return float("nan") if value is None else float(value)

    rows = [{"policy": t.config, "env": plan.env_id, "seed": t.seed, **{k: score(outcome.done[t], k) for k in SCORED}}
            for t in plan.trials() if t in outcome.done]
    columns = ["config", "kpi", "statistic", "runs", "iqm", "ci_low", "ci_high"]
    if not rows:
        return pd.DataFrame(columns=[*columns, "grid"])
    summary = stats.summarize(pd.DataFrame(rows), list(SCORED), reps=reps, seed=0)
    summary = summary.rename(columns={"policy": "config", "episodes": "runs"})[columns]
    summary["grid"] = summary["config"].map(lambda c: json.dumps(plan.grid_values.get(c, {}), default=str))
    return summary


def write_results(out: Path, plan: SweepPlan, outcome: SweepOutcome, reps: int = 2000) -> Any:
    """``runs.csv`` and ``summary.csv`` (atomically); returns the summary."""
    write_runs(out, plan, outcome)
    summary = summarize_runs(plan, outcome, reps)
    atomic_write_text(out / SUMMARY_FILE, summary.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    return summary


def summary_table(summary: Any) -> str:
    """Return and inboxed share per configuration, IQM [95% CI] across runs, for the terminal."""
    lines = [f"{'configuration':<40}{'runs':>5}{'return':>28}{'inboxed_share':>30}"]
    for config, sub in summary.groupby("config", sort=False):
        cells = []
        for kpi in ("return", "inboxed_share"):
            r = sub[sub["kpi"] == kpi].iloc[0]
            cells.append(f"{r['iqm']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}]")
        lines.append(f"{config:<40}{int(sub['runs'].iloc[0]):>5}{cells[0]:>28}{cells[1]:>30}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ipwarmup sweep", description="Train a grid of configurations x seeds on Ray; one run "
                      "folder per trial under --out, summary.csv across seeds. Rerun the same command to continue.")
    p.add_argument("--env", required=True, help="env id, e.g. ipwarmup/Randomized-v1")
    p.add_argument("--seeds", type=int, nargs="+", required=True, metavar="S", help="training seeds, in [0, 1000000)")
    p.add_argument("-n", "--n-timesteps", type=int, default=None, help="env steps per run (overrides the config)")
    p.add_argument("--out", type=Path, required=True, help="sweep folder (created, or one this command made)")
    p.add_argument("-conf", "--conf-file", type=Path, default=None,
                   help="hyperparameter YAML (default configs/ppo.yml)")
    p.add_argument("-params", "--hyperparams", nargs="+", default=[], metavar="KEY:VALUE",
                   help="overrides for every configuration, values parsed as YAML")
    p.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2",
                   help="one configuration per combination of values, e.g. learning_rate=1e-4,3e-4")
    p.add_argument("--address", default=None,
                   help="Ray cluster to run on (HOST:PORT of `ray start --head`, or auto); default: a local Ray")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all of this machine)")
    p.add_argument("--cpus-per-trial", type=float, default=1, help="CPUs reserved per trial (default 1)")
    p.add_argument("--eval-episodes", type=int, default=100,
                   help="unseen episodes of each run's final report, its score (default 100)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples of the summary's CIs (default 2000)")
    p.add_argument("-tb", "--tensorboard", action=argparse.BooleanOptionalAction, default=True,
                   help="TensorBoard logs in each run folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """``ipwarmup sweep``: exit 0 when every trial finished, 1 if some failed, 2 on bad input, 130 on Ctrl-C."""
    from training.config import ConfigError, parse_params

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    prog = "ipwarmup sweep"
    if args.cpus_per_trial <= 0 or (args.num_cpus is not None and args.num_cpus < 1) or args.reps < 1:
        fail(prog, "--cpus-per-trial must be positive, --num-cpus and --reps at least 1")
    try:
        plan = plan_sweep(args.env, args.seeds, args.n_timesteps, args.conf_file, parse_params(args.hyperparams),
                          parse_grid(args.grid), args.eval_episodes)
        outcome = run_sweep(plan, args.out, address=args.address, num_cpus=args.num_cpus,
                            cpus_per_trial=args.cpus_per_trial, progress=False if args.quiet else None,
                            command=shlex.join(["ipwarmup", "sweep", *argv]), tensorboard=args.tensorboard,
                            reps=args.reps)
    except (ConfigError, SweepError) as exc:
        fail(prog, exc)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again to continue", file=sys.stderr)
        raise SystemExit(130) from None
    if outcome.done:
        print(summary_table(outcome.summary))
    print(f"wrote {args.out / SUMMARY_FILE} ({len(outcome.done)} of {len(plan.trials())} runs finished)")
    if outcome.failed:
        fail(prog, f"{len(outcome.failed)} of {len(plan.trials())} trials failed (errors in {args.out / RUNS_FILE}); "
                   "run the same command again to retry them", status=1)
