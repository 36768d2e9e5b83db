"""Train (or resume) a PPO run on the batched simulator: run folders, checkpoints, periodic evaluation.

The configuration keys are documented in :mod:`training.config`; the run folder and the checkpoint format
in :mod:`agents.ppo`. Saves are durable and consistent: a checkpoint (weights, optimizer, normalization
statistics, step count) is one file written under a unique temporary name, fsynced and renamed; ``metrics.csv``
is rewritten the same way. Ctrl-C (SIGINT) and ``kill`` (SIGTERM) save a checkpoint before the process
ends; after SIGKILL or a power cut, ``--resume`` loses at most the steps since the last ``save_freq``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.ppo import (
    BEST_MODEL_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LEGACY_BEST_VECNORM_FILE,
    LEGACY_VECNORM_FILE,
    METRICS_FILE,
    MODEL_FILE,
    Checkpoint,
    ObsNormalization,
    RunArtifacts,
    RunError,
    RunPolicy,
    check_checkpoint_shape,
    check_network,
    check_observation_shape,
    checkpoint_bytes,
    is_legacy_model,
    read_checkpoint,
    read_config,
    read_metrics,
    restore_model,
    restore_normalization,
    validate_run_config,
    write_checkpoint,
)
from agents.run_config import check_trainable, jump_guard_of
from core.util import (
    EVAL_SEED_BASE,
    TRAINING_SEED_LIMIT,
    atomic_write_bytes,
    atomic_write_text,
    did_you_mean,
    is_whole_number,
    seed_range,
    shorten,
)
from evaluation.episodes import run_episodes
from training.config import ConfigError, build_model, resolve_config
from training.imitation import clone_teacher
from training.vec_env import vecnormalize_of

IMITATION_FILE = "imitation.json"
"""How closely the policy cloned its teacher before PPO (``imitate``), written once at the start of a run."""
MAX_TORCH_THREADS = 1024
"""The most torch threads a run may ask for: more than any machine's cores. Torch itself refuses 0 in a
RuntimeError and overflows on a number its C int cannot hold; both are one line here instead."""
LEGACY_DIR = "legacy-sb3"
"""Where ``--convert-run`` keeps an old run folder's original pickled files."""
METRICS_COLUMNS = ("timesteps", "time", "return", "inboxed_share", "complaint_rate", "bounce_rate", "paused")


class Interrupted(KeyboardInterrupt):
    """Training was stopped by a signal (SIGINT from Ctrl-C, or SIGTERM from ``kill`` or a job scheduler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """The signal that asked training to stop, if one has arrived (``None`` until then)."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """The first SIGINT or SIGTERM asks training to stop at its next env step; a second one stops it at once.

    The first signal only records itself: training polls the request between steps, so it ends at a point where
    the model, its optimizer and the normalization statistics agree. Raising from the handler instead throws an
    exception into whatever code is running, numba-compiled kernels included, and that crashed a CI run with
    SIGSEGV (numba/numba#2324 reports the same crash on Ctrl-C).
    A second signal raises :class:`Interrupted` at once, for a process that does not stop soon enough.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: Any) -> None:
        if request.signum is not None:
            raise Interrupted(signum)
        request.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def make_training_env(config: dict[str, Any], seed: int) -> Any:
    """SimulatorVecEnv -> VecNormalize -> VecFrameStack, as RL Zoo stacks them."""
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    from envs.scenario import ScenarioError
    from training.vec_env import SimulatorVecEnv

    try:
        shaping = config.get("gamma", 0.99) if config.get("readiness_shaping", False) else None
        venv: Any = SimulatorVecEnv(config["env_id"], config["n_envs"], seed=seed,
                                    horizon_is_terminal=config.get("horizon_is_terminal", False),
                                    shaping_gamma=shaping, spike_cost=config.get("spike_cost", 0.0),
                                    jump_guard=jump_guard_of(config), **config.get("env_kwargs", {}))
    except ScenarioError as exc:
        raise ConfigError(str(exc)) from None
    if config.get("normalize", True):
        venv = VecNormalize(venv, gamma=config.get("gamma", 0.99))
    if config.get("frame_stack", 1) > 1:
        venv = VecFrameStack(venv, n_stack=config["frame_stack"])
    return venv


def save_checkpoint(model: Any, venv: Any, path: Path, config: dict[str, Any],
                    metadata: dict[str, Any] | None = None) -> None:
    """Model, optimizer and normalization statistics as one durable file (:func:`agents.ppo.write_checkpoint`)."""
    write_checkpoint(path, model, vecnormalize_of(venv), config, metadata)


def live_policy(model: Any, venv: Any, config: dict[str, Any], run_dir: Path) -> RunPolicy:
    """The policy being trained, frozen as evaluation sees it (current normalization statistics)."""
    vecnorm = vecnormalize_of(venv)
    if vecnorm is not None and vecnorm.norm_obs:
        rms = vecnorm.obs_rms
        norm = ObsNormalization(rms.mean.copy(), rms.var.copy(), float(vecnorm.clip_obs), float(vecnorm.epsilon))
    else:
        norm = ObsNormalization.identity(model.observation_space.shape[0] // config.get("frame_stack", 1))
    return RunPolicy(RunArtifacts(model, norm, config.get("frame_stack", 1), config, run_dir))


def evaluate_episodes(policy: Any, config: dict[str, Any], n_episodes: int) -> list[dict[str, float]]:
    """KPIs of ``policy`` over the fixed evaluation seeds (disjoint from training seeds)."""
    seeds = seed_range(EVAL_SEED_BASE, n_episodes)
    return run_episodes(policy, config["env_id"], seeds, env_kwargs=config.get("env_kwargs") or None)


# --------------------------------------------------------------------------------------------- metrics.csv


def write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    """Rewrite ``metrics.csv`` atomically (never appended in place, so never torn)."""
    columns = list(METRICS_COLUMNS) + sorted({k for r in rows for k in r} - set(METRICS_COLUMNS))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([(int(row[c]) if c == "timesteps" else repr(float(row[c]))) if c in row else ""
                         for c in columns])
    atomic_write_text(path, buffer.getvalue())


def add_metrics_row(path: Path, row: dict[str, float]) -> None:
    """Append one evaluation; rows at or after its step count (from a run segment a kill lost) are dropped."""
    rows = [r for r in read_metrics(path) if r.get("timesteps", -1) < row["timesteps"]]
    write_metrics(path, rows + [row])


def truncate_metrics(path: Path, timesteps: int) -> None:
    """On resume: forget evaluations after the checkpoint's step count (they will be made again)."""
    rows = read_metrics(path)
    kept = [r for r in rows if r.get("timesteps", -1) <= timesteps]
    if path.exists() and (len(kept) != len(rows) or not path.read_bytes().endswith(b"\n")):
        write_metrics(path, kept)


# --------------------------------------------------------------------------------------------- callbacks


def _best_return(run_dir: Path) -> float:
    """The evaluation return ``best_model.zip`` was saved for (stored inside it), else -inf."""
    path = run_dir / BEST_MODEL_FILE
    if not path.exists():
        return -np.inf
    value = read_checkpoint(path).metadata.get("mean_return")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else -np.inf


def _callbacks(config: dict[str, Any], run_dir: Path, venv: Any, stop: StopRequest) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class RunCallback(BaseCallback):
        """Progress bar with warm-up metrics, periodic checkpoints, evaluation (best model kept), stop requests."""

        def __init__(self) -> None:
            super().__init__()
            self.last_save = 0
            self.last_eval = 0
            self.best_return = -np.inf
            self.recent: list[dict[str, float]] = []
            self.bar: Any = None

        def _on_training_start(self) -> None:
            from tqdm import tqdm

            self.last_save = self.last_eval = self.num_timesteps
            self.best_return = _best_return(run_dir)
            self.bar = tqdm(total=config["n_timesteps"], initial=self.num_timesteps, unit="step",
                            dynamic_ncols=True, disable=None, file=sys.stderr)

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "kpis" in info:
                    self.recent.append({k: info["kpis"][k] for k in ("return", "inboxed_share", "complaint_rate")})
            self.recent = self.recent[-200:]
            if self.bar is not None:
                self.bar.update(self.num_timesteps - self.bar.n)
                if self.recent and self.n_calls % 20 == 0:
                    mean = {k: float(np.mean([r[k] for r in self.recent])) for k in self.recent[0]}
                    self.bar.set_postfix(ret=f"{mean['return']:.2f}", inboxed=f"{mean['inboxed_share']:.3f}",
                                         complaints=f"{mean['complaint_rate']:.4%}", refresh=False)
            if stop.signum is not None:
                return False  # train() saves the checkpoint; no periodic save or evaluation to wait for first
            if config["save_freq"] > 0 and self.num_timesteps - self.last_save >= config["save_freq"]:
                self.save_checkpoint()
            if config["eval_freq"] > 0 and self.num_timesteps - self.last_eval >= config["eval_freq"]:
                self.evaluate()
            return True

        def save_checkpoint(self) -> None:
            self.last_save = self.num_timesteps
            save_checkpoint(self.model, venv, run_dir / CHECKPOINT_DIR / MODEL_FILE, config)

        def evaluate(self) -> None:
            self.last_eval = self.num_timesteps
            episodes = evaluate_episodes(live_policy(self.model, venv, config, run_dir), config,
                                         config["eval_episodes"])
            row: dict[str, float] = {"timesteps": self.num_timesteps, "time": round(time.time(), 1)}
            for key in ("return", "inboxed_share", "complaint_rate", "bounce_rate", "paused"):
                row[key] = float(np.mean([e[key] for e in episodes]))
            add_metrics_row(run_dir / METRICS_FILE, row)
            if row["return"] > self.best_return:
                self.best_return = row["return"]
                best = {"mean_return": row["return"], "timesteps": self.num_timesteps}
                # The return lives inside the checkpoint: best_model.zip and the score it won with are one unit.
                save_checkpoint(self.model, venv, run_dir / BEST_MODEL_FILE, config, best)
                atomic_write_text(run_dir / "best.json", json.dumps(best))

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.close()

    return RunCallback()


# --------------------------------------------------------------------------------------------- train


def _check_new_out(out: Path) -> None:
    """A new run goes into a new or empty folder; an existing run is continued with --resume, never overwritten."""
    if (out / CONFIG_FILE).exists():
        raise ConfigError(f"{out} already holds a run; use --resume {out} or another --out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is a file; name a new folder for the run")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty (and holds no run); name a new folder for the run")


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete what a killed save left: this module's own temporary names (``.model.*.tmp.zip`` ...), nothing else."""
    for folder in (run_dir, run_dir / CHECKPOINT_DIR):
        for stem, suffix in (("model", ".zip"), ("best_model", ".zip"), ("metrics", ".csv"), ("best", ".json")):
            for path in folder.glob(f".{stem}.*.tmp{suffix}"):
                path.unlink(missing_ok=True)


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """What ``--resume`` continues from: the latest periodic/interrupt checkpoint, else the final model."""
    for path in (run_dir / CHECKPOINT_DIR / MODEL_FILE, run_dir / MODEL_FILE):
        if path.exists():
            return read_checkpoint(path)
    return None


def train(
    env_id: str | None,
    seed: int,
    out: Path | None,
    n_timesteps: int | None = None,
    conf_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    resume: Path | None = None,
    num_threads: int = 1,
    tensorboard: bool = True,
    callback: Any = None,
) -> Path:
    """Train (or resume) a run; returns its folder.

    Ctrl-C (SIGINT) or SIGTERM stops training at its next env step, saves a checkpoint and raises
    :class:`Interrupted` (a KeyboardInterrupt); a second signal stops it at once.
    ``callback`` is an extra stable-baselines3 callback (or list of them) run beside the run's own.
    Resuming a run that was stopped before its first checkpoint starts it again from step 0.
    """
    import torch

    if not is_whole_number(num_threads, 1, MAX_TORCH_THREADS):
        raise ConfigError(f"--num-threads must be a whole number in [1, {MAX_TORCH_THREADS}], "
                          f"got {shorten(num_threads)}")
    torch.set_num_threads(num_threads)
    if resume is not None:
        run_dir = Path(resume)
        config = read_config(run_dir)
        if n_timesteps is not None:
            config["n_timesteps"] = n_timesteps
        seed = config.get("seed", seed)
    else:
        if env_id is None or out is None:
            raise ConfigError("--env and --out are required unless --resume is given")
        run_dir = Path(out)
        _check_new_out(run_dir)
        extra = dict(overrides or {})
        if n_timesteps is not None:
            extra["n_timesteps"] = n_timesteps
        config = resolve_config(env_id, conf_file, extra)
        config["seed"] = seed
    if not is_whole_number(seed, 0, TRAINING_SEED_LIMIT - 1):
        raise ConfigError(f"training seed must be in [0, {TRAINING_SEED_LIMIT}) so evaluation seeds stay unseen, "
                          f"got {shorten(seed)}")
    _check_env_id(config["env_id"])
    validate_run_config(config, run_dir)
    check_trainable(config)
    frames = int(config.get("frame_stack", 1))
    checkpoint = latest_checkpoint(run_dir) if resume is not None else None
    if checkpoint is not None:
        check_checkpoint_shape(checkpoint, frames)
        check_network(checkpoint, config, run_dir / CONFIG_FILE)

    venv = make_training_env(config, seed)
    # From here on a stop signal is only recorded: setup (cloning, restoring a checkpoint) completes, so what
    # is saved is consistent, and the request is honoured before learning starts.
    with stop_signals() as stop:
        model = build_model(config, venv, seed, tensorboard_log=str(run_dir / "tb") if tensorboard else None)
        if resume is None:  # written once the model is built: a config SB3 refuses leaves no folder behind
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
            atomic_write_text(run_dir / "command.txt", " ".join(sys.argv) + "\n")
        if checkpoint is None and config.get("imitate"):
            cloned = clone_teacher(model, venv, config["imitate"], int(config.get("imitate_episodes", 10)), seed)
            atomic_write_text(run_dir / IMITATION_FILE, json.dumps({"teacher": config["imitate"], **cloned}) + "\n")
        if checkpoint is not None:
            restore_model(model, checkpoint, config)
            vecnorm = vecnormalize_of(venv)
            if vecnorm is not None:
                restore_normalization(vecnorm, checkpoint)
        if resume is not None:
            remove_stale_temporaries(run_dir)
            truncate_metrics(run_dir / METRICS_FILE, model.num_timesteps)

        remaining = config["n_timesteps"] - model.num_timesteps
        more = list(callback) if isinstance(callback, list) else [callback] if callback is not None else []
        callbacks = [_callbacks(config, run_dir, venv, stop), *more]
        try:
            if remaining > 0 and stop.signum is None:
                model.learn(remaining, callback=callbacks, reset_num_timesteps=model.num_timesteps == 0,
                            tb_log_name="ppo")
            if stop.signum is not None:
                raise Interrupted(stop.signum)
        except KeyboardInterrupt:  # the recorded request above, or a second signal raised mid-step
            save_checkpoint(model, venv, run_dir / CHECKPOINT_DIR / MODEL_FILE, config)
            raise
        save_checkpoint(model, venv, run_dir / MODEL_FILE, config)
        save_checkpoint(model, venv, run_dir / CHECKPOINT_DIR / MODEL_FILE, config)
    return run_dir


def _check_env_id(env_id: str) -> None:
    import envs

    if env_id not in envs.ENV_IDS:
        raise ConfigError(f"unknown env id {env_id!r}{did_you_mean(env_id, envs.ENV_IDS)}"
                          f" (known: {', '.join(envs.ENV_IDS)})")


# --------------------------------------------------------------------------------------------- old run folders


def convert_run(run_dir: Path) -> list[Path]:
    """Convert a run folder written by an older ipwarmup (stable-baselines3 pickles) to the checkpoint format.

    UNPICKLES the old ``model.zip`` and ``vecnormalize.pkl`` files, which can run any code they contain: call
    it only on a folder you trust (one you trained yourself). Each converted model is rewritten in place;
    the original files are kept in ``RUN_DIR/legacy-sb3/``. Returns the converted files (none if already
    converted).
    """
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    frames = int(config.get("frame_stack", 1))
    best_json = run_dir / "best.json"
    pairs = [(run_dir / MODEL_FILE, run_dir / LEGACY_VECNORM_FILE),
             (run_dir / BEST_MODEL_FILE, run_dir / LEGACY_BEST_VECNORM_FILE),
             (run_dir / CHECKPOINT_DIR / MODEL_FILE, run_dir / CHECKPOINT_DIR / LEGACY_VECNORM_FILE)]
    converted = []
    for model_path, vec_path in pairs:
        if not model_path.exists() or not is_legacy_model(model_path):
            continue
        try:
            model = PPO.load(model_path, device="cpu")
        except Exception as exc:  # noqa: BLE001 - whatever the old file holds, one line
            raise RunError(f"{model_path} is not a readable stable-baselines3 model ({type(exc).__name__})") from None
        check_observation_shape(model, model_path, frames)
        vecnorm = None
        if config.get("normalize", True):
            if not vec_path.exists():
                raise RunError(f"{vec_path} is missing: {model_path} has no normalization statistics to convert")
            try:
                with vec_path.open("rb") as handle:
                    vecnorm = pickle.load(handle)  # noqa: S301 - the user vouched for this folder (--trust)
            except Exception as exc:  # noqa: BLE001
                raise RunError(f"{vec_path} is not a readable pickle ({type(exc).__name__})") from None
            if not isinstance(vecnorm, VecNormalize):
                raise RunError(f"{vec_path} holds a {type(vecnorm).__name__}, not VecNormalize statistics")
        metadata: dict[str, Any] = {}
        if model_path.name == BEST_MODEL_FILE and best_json.exists():
            with contextlib.suppress(ValueError, OSError):
                best = json.loads(best_json.read_text())
                metadata = {k: best[k] for k in ("mean_return", "timesteps") if k in best}
        data = checkpoint_bytes(model, vecnorm, config, metadata)
        backup = run_dir / LEGACY_DIR / model_path.relative_to(run_dir)
        backup.parent.mkdir(parents=True, exist_ok=True)
        for original in (model_path, vec_path):
            if original.exists():
                atomic_write_bytes(backup.parent / original.name, original.read_bytes())
        atomic_write_bytes(model_path, data)
        if vec_path.exists():
            os.unlink(vec_path)
        converted.append(model_path)
    return converted
