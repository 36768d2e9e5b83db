"""Behaviour cloning before PPO (``imitate``): the student acts like its teacher on days it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents import load_policy
from training.config import ConfigError, build_model, resolve_config
from training.imitation import clone_teacher, discounted_returns
from training.run import IMITATION_FILE, make_training_env, train
from training.vec_env import vecnormalize_of

SMALL = {"n_envs": 8, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "eval_freq": 0, "save_freq": 64,
         "policy_kwargs": {"net_arch": [32], "activation_fn": "tanh", "log_std_init": -1.0}}


def test_discounted_returns_stop_at_each_episode_end() -> None:
    rewards = np.array([[1.0], [2.0], [4.0], [8.0]])
    dones = np.array([[False], [True], [False], [False]])
    assert discounted_returns(rewards, dones, 0.5)[:, 0].tolist() == [2.0, 2.0, 8.0, 8.0]


def _gap_to_teacher(model: object, venv: object, teacher_name: str, seed: int) -> float:
    """Mean absolute difference between the student's and the teacher's actions over one fresh episode per env,
    on the teacher's own days."""
    teacher = load_policy(teacher_name)
    teacher.reset(seed)
    venv.seed(seed)  # type: ignore[attr-defined]
    obs = venv.reset()  # type: ignore[attr-defined]
    starts, gaps, memory = np.ones(venv.num_envs, bool), [], None  # type: ignore[attr-defined]
    for _ in range(60):
        wanted, _ = teacher.predict(vecnormalize_of(venv).get_original_obs(), episode_start=starts)
        # A recurrent student carries its memory from day to day (PPO ignores both arguments).
        acted, memory = model.predict(obs, state=memory, episode_start=starts,  # type: ignore[attr-defined]
                                      deterministic=True)
        gaps.append(np.abs(wanted - acted).mean())
        obs, _, starts, _ = venv.step(wanted)  # type: ignore[attr-defined]
    return float(np.mean(gaps))


RECURRENT = {"policy": "MlpLstmPolicy", "policy_kwargs": {**SMALL["policy_kwargs"], "lstm_hidden_size": 16}}


@pytest.mark.parametrize("teacher, network", [("aimd", {}), ("ses-standard", {}), ("aimd", RECURRENT)],
                         ids=["aimd", "ses-standard", "aimd-recurrent"])
def test_cloned_student_acts_like_its_teacher_on_unseen_episodes(teacher: str, network: dict[str, object]) -> None:
    """Also through an LSTM: the recurrent student is fitted on whole episodes and acts with its memory carried."""
    config = resolve_config("ipwarmup/NewIP-v1", None, {**SMALL, "imitate": teacher, **network})
    venv = make_training_env(config, seed=0)
    model = build_model(config, venv, seed=0)
    before = _gap_to_teacher(model, venv, teacher, seed=7)
    fit = clone_teacher(model, venv, teacher, episodes=3, seed=0)
    after = _gap_to_teacher(model, venv, teacher, seed=7)
    assert fit["action_mse"] < 0.005 and fit["value_mse"] < 0.1
    assert before > 0.3 and after < 0.1, (before, after)


def test_a_privileged_teacher_is_cloned_from_the_observations_alone() -> None:
    """The oracle plans on the training env's hidden state (bound to the training env, which plain baselines are
    not); the student fits its actions from the observations alone."""
    config = resolve_config("ipwarmup/NewIP-v1", None, {**SMALL, "imitate": "oracle-nojump",
                                                        "env_kwargs": {"horizon": 10}})
    venv = make_training_env(config, seed=0)
    model = build_model(config, venv, seed=0)
    fit = clone_teacher(model, venv, "oracle-nojump", episodes=2, seed=0)
    assert 0 <= fit["action_mse"] < 0.05 and np.isfinite(fit["value_mse"])


@pytest.mark.parametrize("teacher, reference_set", [("oracle-nojump", True), ("oracle-reward", False)])
def test_a_no_jump_teacher_plans_day_one_from_the_student_s_guard_base(teacher: str, reference_set: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The student will act under the jump guard, whose day 1 is the prior's low cold acceptance; a no-jump teacher
    is given that reference (not the true cold acceptance it could read), a teacher that may jump is left alone."""
    import agents

    made = []

    def recording_loader(name: str, env: object = None) -> object:
        made.append(load_policy(name, env))
        return made[-1]

    monkeypatch.setattr(agents, "load_policy", recording_loader)
    config = resolve_config("ipwarmup/NewIP-v1", None, {**SMALL, "imitate": teacher, "env_kwargs": {"horizon": 4}})
    venv = make_training_env(config, seed=0)
    clone_teacher(build_model(config, venv, seed=0), venv, teacher, episodes=1, seed=0)
    guard = venv.get_attr("jump_guard")[0]
    assert (made[0].day1_reference is not None) == reference_set
    if reference_set:
        np.testing.assert_array_equal(made[0].day1_reference, guard.base)


def test_imitate_is_validated() -> None:
    for bad in ("random", "ses-standrd", 3):
        with pytest.raises(ConfigError, match="imitate"):
            resolve_config("ipwarmup/NewIP-v1", None, {"imitate": bad})
    with pytest.raises(ConfigError, match="imitate_episodes"):
        resolve_config("ipwarmup/NewIP-v1", None, {"imitate": "aimd", "imitate_episodes": 0})


def test_a_run_that_imitates_records_its_fit(tmp_path: Path) -> None:
    run = train("ipwarmup/NewIP-v1", 0, tmp_path / "run", 128, overrides={**SMALL, "imitate": "aimd",
                                                                            "imitate_episodes": 1},
                tensorboard=False)
    record = json.loads((run / IMITATION_FILE).read_text())
    assert record["teacher"] == "aimd" and 0 <= record["action_mse"] < 0.05
