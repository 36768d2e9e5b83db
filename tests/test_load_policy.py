"""load_policy: every baseline through SB3's evaluate_policy on every scenario; names and paths dispatch."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy

import envs
from agents import BASELINES, load_policy


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("name", list(BASELINES))
def test_every_agent_runs_through_evaluate_policy(name: str, env_id: str) -> None:
    env = gymnasium.make(env_id, horizon=4)
    env.reset(seed=0)
    policy = load_policy(name, env)
    rewards, lengths = evaluate_policy(policy, env, n_eval_episodes=2, return_episode_rewards=True, warn=False)
    assert len(rewards) == 2 and all(np.isfinite(rewards)) and all(1 <= n <= 4 for n in lengths)


@pytest.mark.parametrize("name", ["ses-standard", "aimd", "braze-automated", "random"])
def test_predict_shapes(name: str) -> None:
    env = envs.WarmupVectorEnv(3, "NewIP-v1")
    obs, _ = env.reset(seed=0)
    policy = load_policy(name, env)
    batch, state = policy.predict(obs, episode_start=np.ones(3, bool))
    single, _ = load_policy(name, env).predict(obs[0])
    assert batch.shape == (3, 5) and batch.dtype == np.float32 and state is None
    assert single.shape == (5,) and np.all(np.abs(batch) <= 1)
    with pytest.raises(ValueError, match="expected"):
        policy.predict(obs[:, :10])


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as err:
        load_policy("ses-standrd", None)
    message = str(err.value)
    assert "did you mean 'ses-standard'" in message
    assert all(name in message for name in BASELINES)


def test_paths_dispatch_to_the_ppo_and_card_loaders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Path]] = []
    ppo = types.ModuleType("agents.ppo")
    ppo.load_run_policy = lambda path, env: calls.append(("run", Path(path))) or "run-policy"  # type: ignore[attr-defined]
    runtime = types.ModuleType("deploy.runtime")
    runtime.load_card_policy = lambda path, env: calls.append(("card", Path(path))) or "card-policy"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "agents.ppo", ppo)
    monkeypatch.setitem(sys.modules, "deploy.runtime", runtime)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.zip").write_bytes(b"")
    card = tmp_path / "card"
    card.mkdir()
    (card / "policy.json").write_text("{}")
    assert load_policy(str(run)) == "run-policy"
    assert load_policy(card) == "card-policy" and load_policy(card / "policy.json") == "card-policy"
    assert calls == [("run", run), ("card", card), ("card", card / "policy.json")]
    with pytest.raises(ValueError, match="neither a training run folder"):
        load_policy(tmp_path)
