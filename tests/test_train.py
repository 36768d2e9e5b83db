"""train.py and training.run: tiny runs that load, resume after interruption, and refuse bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
import yaml

from agents.ppo import RunError, load_run, load_run_policy
from core.features import OBS_SIZE
from training.config import ConfigError, parse_params, resolve_config
from training.run import Interrupted, stop_signals, train

ROOT = Path(__file__).resolve().parent.parent
TINY = {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "eval_freq": 0, "save_freq": 64,
        "policy_kwargs": {"net_arch": [8], "activation_fn": "tanh", "log_std_init": -1.0}}


def _tiny_train(out: Path, steps: int = 128, seed: int = 0, **extra: object) -> Path:
    return train("ipwarmup/NewIP-v1", seed, out, steps, overrides={**TINY, **extra}, tensorboard=False)


def _run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_short_run_produces_a_loadable_model(tmp_path: Path) -> None:
    run = _tiny_train(tmp_path / "run")
    artifacts = load_run(run)
    assert artifacts.model.num_timesteps >= 128
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "model.zip", "checkpoints"} <= names
    assert not [n for n in names if n.endswith(".pkl")]  # normalization lives inside the checkpoint, as JSON
    policy = load_run_policy(run)
    obs = np.zeros((3, OBS_SIZE), np.float32)
    action, _ = policy.predict(obs, episode_start=np.ones(3, bool))
    assert action.shape == (3, 5) and np.all(np.abs(action) <= 1.0)


def test_same_seed_trains_the_same_policy(tmp_path: Path) -> None:
    a = load_run(_tiny_train(tmp_path / "a", seed=3)).model.policy.state_dict()
    b = load_run(_tiny_train(tmp_path / "b", seed=3)).model.policy.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_resume_continues_the_step_count(tmp_path: Path) -> None:
    run = _tiny_train(tmp_path / "run", steps=128)
    train(None, 0, None, 256, resume=run, tensorboard=False)
    assert load_run(run, best=False).model.num_timesteps == 256


def test_frame_stack_policy_sees_history(tmp_path: Path) -> None:
    run = _tiny_train(tmp_path / "run", frame_stack=3)
    policy = load_run_policy(run)
    assert policy.artifacts.model.observation_space.shape == (3 * OBS_SIZE,)
    action, _ = policy.predict(np.ones(OBS_SIZE, np.float32))
    assert action.shape == (5,)


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    params = [f"{k}:{yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in TINY.items()]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "--out", str(run), "-n", "200000", "--no-tensorboard",
         "--eval-episodes", "0", "-params", *params],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "model.zip").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    interrupted_at = load_run(run).model.num_timesteps if (run / "model.zip").exists() else None
    checkpoint_steps = _checkpoint_steps(run)
    assert checkpoint_steps > 0 and interrupted_at is None
    train(None, 0, None, checkpoint_steps + 128, resume=run, tensorboard=False)
    assert load_run(run, best=False).model.num_timesteps == checkpoint_steps + 128


def test_a_stop_signal_is_recorded_and_a_second_one_interrupts() -> None:
    """The handler must not raise into running code (a CI run crashed with SIGSEGV when it did)."""
    before = signal.getsignal(signal.SIGINT)
    with stop_signals() as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(Interrupted) as raised:
            signal.raise_signal(signal.SIGINT)
        assert raised.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def test_a_stop_signal_ends_training_at_the_next_step_with_a_checkpoint(tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    class SignalAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == 96:
                signal.raise_signal(signal.SIGTERM)
            return True

    with pytest.raises(Interrupted):
        train("ipwarmup/NewIP-v1", 0, tmp_path / "run", 10_000, overrides={**TINY, "save_freq": 0},
              tensorboard=False, callback=SignalAt())
    assert _checkpoint_steps(tmp_path / "run") == 96 + TINY["n_envs"]  # stopped at the next vector step
    assert not (tmp_path / "run" / "model.zip").exists()


def test_a_stop_signal_during_setup_stops_before_learning_with_a_step_0_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.run as run_module

    clone = run_module.clone_teacher

    def clone_then_signal(*args: object, **kwargs: object) -> dict[str, float]:
        result = clone(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # arrives while setup is still running
        return result

    monkeypatch.setattr(run_module, "clone_teacher", clone_then_signal)
    run = tmp_path / "run"
    with pytest.raises(Interrupted):
        train("ipwarmup/NewIP-v1", 0, run, 10_000, overrides={**TINY, "imitate": "aimd"}, tensorboard=False)
    assert _checkpoint_steps(run) == 0 and not (run / "model.zip").exists()
    monkeypatch.undo()
    train(None, 0, None, 128, resume=run, tensorboard=False)
    assert load_run(run, best=False).model.num_timesteps == 128


def _checkpoint_steps(run: Path) -> int:
    from agents.ppo import read_checkpoint

    return read_checkpoint(run / "checkpoints" / "model.zip").num_timesteps


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "ipwarmup/NewIP-v9"], "unknown env id 'ipwarmup/NewIP-v9'; did you mean"),
        (["-params", "n_env:4"], "unknown hyperparameter 'n_env'; did you mean 'n_envs'?"),
        (["-params", "n_envs:many"], "'n_envs' must be int"),
        (["-params", "learning_rate:fast"], "'learning_rate' must be a number"),
        (["--resume", "does/not/exist"], "does not exist"),
        (["-params", "policy_kwargs:{optimizer_kwargs: {eps: -1}}"], "cannot be built: Invalid epsilon value: -1"),
        (["-n", str(10**400)], "'n_timesteps' must be at most 9,007,199,254,740,992"),  # SB3 raised OverflowError
        (["--num-threads", "0"], "--num-threads must be a whole number in [1, 1024]"),  # torch raised RuntimeError
        (["--eval-episodes", "500001"], "--eval-episodes must be in [0, 500,000]"),  # before training, not after
        (["-params", "eval_episodes:0"], "'eval_episodes' must be at least 1 while eval_freq is on"),
    ],
)
def test_bad_input_exits_with_one_readable_line(tmp_path: Path, args: list[str], message: str) -> None:
    """Refused before the run folder is written, so the same --out works once the input is mended."""
    result = _run_cli("--out", str(tmp_path / "run"), "-n", "64", "--eval-episodes", "0", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"batch_size": 1}, "'batch_size' must be at least 2"),
    ({"n_epochs": 0}, "'n_epochs' must be at least 1"),
    ({"n_envs": 1, "n_steps": 1}, "n_steps x n_envs = 1 step cannot be split"),
    ({"policy": "MlpLstmPolicy", "n_envs": 1, "n_steps": 65, "batch_size": 64}, "leaves a minibatch of one step"),
    ({"learning_rate": float("nan")}, "'learning_rate' must be a finite number"),
    ({"learning_rate": 10**400}, "'learning_rate' must be a finite number"),  # YAML reads any number of digits
    ({"n_epochs": 10**400}, "'n_epochs' must be a whole number of at most"),
    ({"target_kl": 10**400}, "'target_kl' must be a finite number"),  # None by default: crashed after a rollout
    ({"spike_cost": 10**400}, "'spike_cost' must be a finite number"),
    ({"learning_rate": 0.0}, r"'learning_rate' must be in \(0, inf\)"),
    ({"gamma": 1.5}, r"'gamma' must be in \(0, 1\]"),
    ({"gae_lambda": -0.1}, r"'gae_lambda' must be in \[0, 1\]"),
    ({"ent_coef": -0.01}, "'ent_coef' must be in"),
    ({"target_kl": "small"}, "'target_kl' must be a number"),
    ({"normalize_advantage": "no"}, "'normalize_advantage' must be true or false"),  # PPO read it as true
    ({"n_epochs": 2.5}, "'n_epochs' must be an integer"),
    ({"policy_kwargs": {"net_arch": "64"}}, "net_arch must be a list of layer widths"),
    ({"policy_kwargs": {"net_arch": [64, 100_000]}}, "net_arch must be a list of layer widths in"),
    ({"policy_kwargs": {"net_arch": {"pi": [8], "qf": [8]}}}, "net_arch must be a list"),
    ({"policy_kwargs": {"optimizer_class": "Adam"}}, "names a Python class"),
    ({"policy_kwargs": {"features_extractor_kwargs": {"features_dim": 8}}}, "names a Python class"),
    ({"policy_kwargs": {"squash_output": True}}, "squash_output: true needs use_sde: true"),
    ({"policy_kwargs": {"ortho_init": "maybe"}}, "ortho_init must be true or false"),  # SB3 read it as true
    ({"policy_kwargs": {"log_std_init": "low"}}, "log_std_init must be a number"),
    ({"policy_kwargs": {"log_std_init": float("-inf")}}, "log_std_init must be a finite number"),
    ({"policy_kwargs": {"optimizer_kwargs": [1e-5]}}, "optimizer_kwargs must be a mapping"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"shared_lstm": True, "enable_critic_lstm": False,
                                                  "share_features_extractor": False}},
     "needs share_features_extractor"),
])
def test_a_hyperparameter_outside_its_range_is_refused_by_name(overrides: dict[str, Any], message: str) -> None:
    """Each of these trained (into NaN weights or a meaningless policy) or crashed inside SB3 before it was checked."""
    with pytest.raises(ConfigError, match=message):
        resolve_config("ipwarmup/NewIP-v1", None, overrides)


@pytest.mark.parametrize("overrides", [{"gamma": 1.0}, {"gae_lambda": 0.0}, {"ent_coef": 0.0},
                                       {"policy_kwargs": {"net_arch": {"pi": [8], "vf": [16, 16]}}},
                                       {"n_envs": 1, "n_steps": 65, "batch_size": 64}])
def test_the_ends_of_each_range_are_accepted(overrides: dict[str, Any]) -> None:
    assert resolve_config("ipwarmup/NewIP-v1", None, overrides).items() >= overrides.items()


def test_malformed_config_file_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "bad.yml"
    conf.write_text("default: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yml is not valid YAML"):
        resolve_config("ipwarmup/NewIP-v1", conf)


def test_unreadable_model_file_is_named(tmp_path: Path) -> None:
    run = _tiny_train(tmp_path / "run")
    (run / "model.zip").write_bytes(b"truncated")
    result = _run_cli("--resume", str(run), "-n", "64", "--eval-episodes", "0")
    # Resume prefers the checkpoint, which is intact; the final model file is what evaluation loads.
    assert result.returncode == 0, result.stderr
    (run / "checkpoints" / "model.zip").write_bytes(b"truncated")
    result = _run_cli("--resume", str(run), "-n", "256", "--eval-episodes", "0")
    assert result.returncode == 2 and "not a readable checkpoint (truncated" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    run = _tiny_train(tmp_path / "run")
    before = (run / "model.zip").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        _tiny_train(run)
    assert (run / "model.zip").read_bytes() == before
    assert os.path.exists(run / "config.yaml")


def test_tensorboard_logs_and_final_report(tmp_path: Path) -> None:
    """A run with TensorBoard on writes event files; the final comparison writes strict JSON (no NaN)."""
    import json

    from training.report import compare_with_baseline

    run = train("ipwarmup/NewIP-v1", 0, tmp_path / "run", 128, overrides=TINY, tensorboard=True)
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    table = compare_with_baseline(run, n_episodes=3)
    report = json.loads((run / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert set(report["mean_ci95"]) == {"ppo", "ses-standard"}
    assert report["episodes_reaching_full_volume"]["ses-standard"] == 3
    assert "ses-standard" in table.splitlines()[1] and table.splitlines()[-1].startswith("PPO ")
    # the paired difference on the same seeds, as evaluate.py computes it
    from evaluation.stats import paired_stats

    inboxed = report["paired"]["inboxed_share_all"]
    assert inboxed["n"] == 3 and inboxed["wins"] + inboxed["losses"] + inboxed["ties"] == 3
    assert f"inboxed_share_all: PPO - ses-standard {inboxed['mean_diff']:+.4g}" in table
    assert paired_stats(np.array([1.0, 2.0, 4.0]), np.array([0.0, 2.0, 3.0]))["wins"] == 2


def test_verdict_needs_more_inboxed_apart_and_rates_not_worse() -> None:
    from training.report import verdict

    base = {"inboxed_share_all": (0.53, 0.52, 0.54), "complaint_rate": (5e-4, 4.9e-4, 5.1e-4),
            "bounce_rate": (0.010, 0.0099, 0.0101)}
    same_rates = {"inboxed_share_all": (0.70, 0.69, 0.71), "complaint_rate": (5.05e-4, 4.95e-4, 5.15e-4),
                  "bounce_rate": (0.010, 0.0099, 0.0101)}
    assert verdict(same_rates, base, "ses-standard").startswith("PPO beats ses-standard")
    overlapping_inbox = {**same_rates, "inboxed_share_all": (0.545, 0.535, 0.555)}
    assert "not more inboxed" in verdict(overlapping_inbox, base, "ses-standard")
    more_complaints = {**same_rates, "complaint_rate": (6e-4, 5.2e-4, 6.8e-4)}
    assert "more complaints" in verdict(more_complaints, base, "ses-standard")
    more_bounces = {**same_rates, "bounce_rate": (0.02, 0.019, 0.021)}
    assert "more bounces" in verdict(more_bounces, base, "ses-standard")


def test_a_params_number_past_pythons_digit_limit_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"-params value for 'n_envs' is not valid YAML .*\(5002 chars\)"):
        parse_params(["n_envs:" + "9" * 5000])  # PyYAML raised ValueError, not YAMLError
    with pytest.raises(ConfigError, match="'n_envs' must be at most 65,536, got int too long to print"):
        resolve_config("ipwarmup/NewIP-v1", None, parse_params(["n_envs:0x" + "f" * 4000]))  # YAML 1.1 hex


def test_exponent_floats_read_as_numbers(tmp_path: Path) -> None:
    """PyYAML reads ``1e-3`` as a string (YAML 1.1); configs and -params read it as 0.001, as RL Zoo users write it."""
    assert parse_params(["learning_rate:1e-3", "clip_range:2E-1", "n_envs:8"]) == {
        "learning_rate": 0.001, "clip_range": 0.2, "n_envs": 8}
    conf = tmp_path / "ppo.yml"
    conf.write_text("default:\n  learning_rate: 5e-4\n  n_envs: 4\n")
    config = resolve_config("ipwarmup/NewIP-v1", conf, {})
    assert config["learning_rate"] == 5e-4 and config["n_envs"] == 4


class _OldLayoutEnv(gymnasium.Env):
    """An env with the 59-feature observation of an earlier version, to build an outdated model."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (59,), np.float32)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (5,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        return np.zeros(59, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(59, np.float32), 0.0, True, False, {}


def test_a_run_from_another_feature_layout_is_refused_in_one_line(tmp_path: Path) -> None:
    """A model trained on another feature layout (an older version) is named as such on load and on --resume."""
    from stable_baselines3 import PPO

    from agents.ppo import read_config, write_checkpoint

    run = _tiny_train(tmp_path / "run")
    outdated = PPO("MlpPolicy", _OldLayoutEnv(), n_steps=16, batch_size=16, device="cpu",
                   policy_kwargs={"net_arch": [8]})
    for folder in (run, run / "checkpoints"):
        if (folder / "model.zip").exists():
            write_checkpoint(folder / "model.zip", outdated, None, read_config(run))
    (run / "best_model.zip").unlink(missing_ok=True)
    with pytest.raises(RunError, match="trained on observations of shape"):
        load_run(run)
    result = _run_cli("--resume", str(run))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "trained on observations of shape" in result.stderr.strip().splitlines()[-1]


def test_initial_share_sets_where_the_untrained_policy_starts() -> None:
    from core.actions import action_to_share
    from training.config import ConfigError, build_model, resolve_config
    from training.run import make_training_env

    config = resolve_config("ipwarmup/NewIP-v1", None, {**TINY, "initial_share": 0.01})
    model = build_model(config, make_training_env(config, seed=0), seed=0)
    obs = make_training_env(config, seed=1).reset()
    action, _ = model.predict(obs, deterministic=True)
    assert np.allclose(action_to_share(action), 0.01, rtol=0.5)  # SB3 starts the head's weights near 0
    default = build_model(resolve_config("ipwarmup/NewIP-v1", None, TINY), make_training_env(config, 0), seed=0)
    assert np.allclose(action_to_share(default.predict(obs, deterministic=True)[0]), 0.1, rtol=0.5)
    for bad in (2.0, True, float("nan")):
        with pytest.raises(ConfigError, match="initial_share"):
            resolve_config("ipwarmup/NewIP-v1", None, {"initial_share": bad})
    for bad in (-0.1, True, float("inf"), "high"):
        with pytest.raises(ConfigError, match="spike_cost"):
            resolve_config("ipwarmup/NewIP-v1", None, {"spike_cost": bad})
