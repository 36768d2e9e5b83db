"""Consistent, durable saves: a checkpoint is one verified unit, files and folders are fsynced, metrics.csv
survives torn lines and resumes without duplicates, SIGTERM saves like Ctrl-C, and training killed with
SIGKILL at random moments resumes to the end, losing at most one save interval each time."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import envs
from agents.ppo import (
    Checkpoint,
    checkpoint_bytes,
    load_run,
    model_from_config,
    read_checkpoint,
    read_config,
    read_metrics,
    restore_model,
    write_checkpoint,
)
from core.features import OBS_SIZE
from training.run import add_metrics_row, train

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "train_driver.py"
NEWIP = next(i for i in envs.ENV_IDS if "/NewIP-" in i)
N_ENVS, SAVE_FREQ = 4, 64
TINY = {"n_envs": N_ENVS, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "eval_freq": 0, "save_freq": SAVE_FREQ,
        "policy_kwargs": {"net_arch": [8], "activation_fn": "tanh", "log_std_init": -1.0}}


def _params(config: dict[str, Any]) -> list[str]:
    return ["-params", *[f"{k}:{yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in config.items()]]


def _driver(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(DRIVER), *args, "--eval-episodes", "0", "--no-tensorboard"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _steps(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("step ")]


# --------------------------------------------------------------------------------------------- one unit


def test_a_checkpoint_round_trips_weights_optimizer_and_statistics_exactly(tmp_path: Path) -> None:
    """Everything resume needs is in the one file: restoring it and saving again gives the same bytes."""
    from training.run import make_training_env
    from training.vec_env import vecnormalize_of

    run = train(NEWIP, 0, tmp_path / "run", 128, overrides=TINY, tensorboard=False)
    config = read_config(run)
    ckpt = read_checkpoint(run / "checkpoints" / "model.zip")
    assert {n.split("/")[0] for n in ckpt.tensors} == {"policy", "optimizer"} and ckpt.normalization is not None
    venv = make_training_env(config, 0)
    model = model_from_config(config, OBS_SIZE, run)
    restore_model(model, ckpt, config)
    from agents.ppo import restore_normalization

    restore_normalization(vecnormalize_of(venv), ckpt)
    again = tmp_path / "again.zip"
    write_checkpoint(again, model, vecnormalize_of(venv), config)
    assert again.read_bytes() == (run / "checkpoints" / "model.zip").read_bytes()
    assert checkpoint_bytes(model, vecnormalize_of(venv), config) == again.read_bytes()


def test_checkpoint_files_and_folders_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: no fsync anywhere in training; metrics.csv appended in place."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name fsynced descriptors")
    run = train(NEWIP, 0, tmp_path / "run", 64, overrides=TINY, tensorboard=False)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    model = load_run(run, best=False).model
    write_checkpoint(run / "checkpoints" / "model.zip", model, None, read_config(run))
    add_metrics_row(run / "metrics.csv", {"timesteps": 64, "time": 1.0, "return": 1.0})
    folder = str((run / "checkpoints").resolve())
    assert any(p.startswith(folder + "/.model.") for p in synced), synced  # the temporary file, before its rename
    assert folder in synced and str(run.resolve()) in synced  # the folders, after the renames
    assert any(p.startswith(str(run.resolve()) + "/.metrics.") for p in synced), synced


def test_metrics_survive_a_torn_line_and_resume_without_duplicates(tmp_path: Path) -> None:
    """Issue 11: a torn metrics line crashed export; rows repeated after --resume."""
    evals = {**TINY, "eval_freq": 64, "eval_episodes": 2, "env_kwargs": {"horizon": 8}}
    run = train(NEWIP, 0, tmp_path / "run", 128, overrides=evals, tensorboard=False)
    early = tmp_path / "early.zip"
    shutil.copy(run / "checkpoints" / "model.zip", early)
    train(None, 0, None, 256, resume=run, tensorboard=False)
    assert [r["timesteps"] for r in read_metrics(run / "metrics.csv")] == [64, 128, 192, 256]
    # A kill lost everything after step 128, mid-way through writing a row:
    shutil.copy(early, run / "checkpoints" / "model.zip")
    with (run / "metrics.csv").open("a") as handle:
        handle.write("320,17")
    train(None, 0, None, 256, resume=run, tensorboard=False)
    rows = read_metrics(run / "metrics.csv")
    assert [r["timesteps"] for r in rows] == [64, 128, 192, 256]
    assert (run / "metrics.csv").read_text().endswith("\n")
    from training.export import export_run

    assert export_run(run, tmp_path / "out", days=2).card["kpis"]["training_evaluation"]["timesteps"] == 256


def test_sigterm_saves_a_checkpoint_like_ctrl_c(tmp_path: Path) -> None:
    """Issue 11: SIGTERM was not handled (up to 100,000 steps lost)."""
    run = tmp_path / "run"
    proc = _driver("--env", NEWIP, "--out", str(run), "-n", "200000", *_params({**TINY, "save_freq": 0}))
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("step ") and int(line.split()[1]) >= 200:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM; checkpoint saved" in lines[0] and "--resume" in lines[0], err
    last = max(_steps(out), default=200)
    assert read_checkpoint(run / "checkpoints" / "model.zip").num_timesteps >= last  # nothing reported was lost


# --------------------------------------------------------------------------------------------- the kill test


def _verify_folder(run: Path) -> None:
    """Whatever state a kill left: every checkpoint verifies and metrics.csv reads."""
    for path in (run / "checkpoints" / "model.zip", run / "model.zip", run / "best_model.zip"):
        if path.exists():
            assert isinstance(read_checkpoint(path), Checkpoint)
    read_metrics(run / "metrics.csv")


def test_sigkill_at_random_moments_then_resume_finishes_losing_at_most_one_save_interval(tmp_path: Path) -> None:
    run, total = tmp_path / "run", 1536
    config = {**TINY, "n_epochs": 2, "eval_freq": 128, "eval_episodes": 2, "env_kwargs": {"horizon": 10}}
    rng = np.random.default_rng(2026)
    kills = 0
    for attempt in range(4):
        if (run / "config.yaml").exists():
            proc = _driver("--resume", str(run), "-n", str(total))
        else:
            proc = _driver("--env", NEWIP, "--out", str(run), "-n", str(total), *_params(config))
        assert proc.stdout is not None
        saved = read_checkpoint(run / "checkpoints" / "model.zip").num_timesteps \
            if (run / "checkpoints" / "model.zip").exists() else 0
        stop_after = int(rng.integers(1, max(2, (total - saved) // N_ENVS // 2)))
        seen, reported = 0, 0
        for line in proc.stdout:
            if line.startswith("step "):
                seen, reported = seen + 1, int(line.split()[1])
                if seen >= stop_after:
                    break
        if rng.random() < 0.5:  # sometimes let it run on a little: the kill lands mid-update, mid-save, mid-eval
            for _ in range(int(rng.integers(1, 40))):
                line = proc.stdout.readline()
                if not line:
                    break
                reported = max([reported, *_steps(line)])
        proc.kill()
        rest, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        kills += 1
        reported = max([reported, *_steps(rest)])  # the last step the process reported before it died
        checkpoint = run / "checkpoints" / "model.zip"
        kept = read_checkpoint(checkpoint).num_timesteps if checkpoint.exists() else 0
        print(f"kill {attempt}: reported step {reported}, checkpoint at {kept}")  # shown with pytest -s
        assert reported - kept <= SAVE_FREQ + N_ENVS, (attempt, reported, kept)
        _verify_folder(run)
    finish = _driver("--resume", str(run), "-n", str(total))
    out, err = finish.communicate(timeout=300)
    assert finish.returncode == 0, err
    assert kills == 4
    artifacts = load_run(run, best=False)
    assert artifacts.model.num_timesteps == total
    action, _ = load_run(run).model.predict(np.zeros((1, OBS_SIZE), np.float32), deterministic=True)
    assert np.isfinite(action).all()
    steps = [r["timesteps"] for r in read_metrics(run / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == total, steps
    _verify_folder(run)
    assert not [p.name for p in run.rglob(".*.tmp*")], "temporary files of killed saves left behind"
