"""The recurrent policy (``policy: MlpLstmPolicy``, sb3-contrib's RecurrentPPO): configured, trained, cloned, saved,
loaded and played with its memory carried from day to day, and exported to an ONNX graph the runtime plays."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.ppo import OBS_SIZE, RunPolicy, _mlp_parameters, load_run, model_from_config
from evaluation.episodes import run_episodes
from training.config import ConfigError, resolve_config
from training.export import export_run
from training.imitation import episode_sequences
from training.run import train

NETWORK = {"net_arch": [32], "activation_fn": "tanh", "log_std_init": -1.0, "lstm_hidden_size": 16}
SMALL = {"policy": "MlpLstmPolicy", "policy_kwargs": NETWORK, "n_envs": 4, "n_steps": 16, "batch_size": 32,
         "n_epochs": 1, "eval_freq": 64, "eval_episodes": 2, "save_freq": 64, "env_kwargs": {"horizon": 12}}


@pytest.mark.parametrize("overrides, problem", [
    ({"policy": "CnnPolicy"}, "must be one of MlpPolicy, MlpLstmPolicy"),
    ({"policy_kwargs": {"lstm_hidden_size": 16}}, "is for policy MlpLstmPolicy"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"lstm_hidden_size": 0}}, "whole number in"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"n_lstm_layers": True}}, "whole number in"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"enable_critic_lstm": "no"}}, "true or false"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"shared_lstm": True}}, "needs enable_critic_lstm: false"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"lstm_kwargs": {"dropout": 0.5}}}, "not supported"),
    ({"policy": "MlpLstmPolicy", "rollout_buffer_kwargs": {}}, "is PPO's"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"n_lstm_layers": 9}}, "whole number in"),
    ({"policy": "MlpLstmPolicy", "frame_stack": 2}, "frame_stack must be 1"),
    ({"policy": None}, "must be one of"),
    ({"policy_kwargs": {"lstm_hidden_size:64": None}}, "policy_kwargs has no argument 'lstm_hidden_size:64'"),
    ({"policy": "MlpLstmPolicy", "policy_kwargs": {"net_arc": [8]}}, "no argument 'net_arc'.*did you mean"),
])
def test_a_bad_recurrent_config_is_refused_by_name(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        resolve_config("ipwarmup/NewIP-v1", None, overrides)


def test_without_sb3_contrib_the_recurrent_policy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sb3_contrib", None)  # import sb3_contrib now raises ImportError
    with pytest.raises(ConfigError, match=r"not installed: pip install -e \"\.\[recurrent\]\""):
        resolve_config("ipwarmup/NewIP-v1", None, {"policy": "MlpLstmPolicy"})
    resolve_config("ipwarmup/NewIP-v1", None, {})  # the feed-forward policy does not need it


@pytest.mark.parametrize("lstm", [{}, {"n_lstm_layers": 2}, {"shared_lstm": True, "enable_critic_lstm": False},
                                  {"enable_critic_lstm": False}], ids=["default", "two-layers", "shared", "no-critic"])
def test_the_network_size_a_config_describes_is_the_one_sb3_contrib_builds(lstm: dict[str, Any]) -> None:
    """Loading a run checks the checkpoint against this count before building anything (a crafted config.yaml
    could otherwise ask for billions of weights); a wrong count would refuse every honest recurrent run."""
    config = resolve_config("ipwarmup/NewIP-v1", None, {"policy": "MlpLstmPolicy",
                                                       "policy_kwargs": {**NETWORK, **lstm}})
    model = model_from_config(config, OBS_SIZE, Path("config.yaml"))
    assert _mlp_parameters(config, OBS_SIZE) == sum(p.numel() for p in model.policy.parameters())


@pytest.mark.parametrize("arch", [[32], [], {"pi": [8], "vf": [16, 16]}, {"vf": [4]}],
                         ids=["one-layer", "no-layer", "actor-and-critic-apart", "critic-only"])
def test_the_feed_forward_network_size_a_config_describes_is_the_one_sb3_builds(arch: Any) -> None:
    """The same count for the feed-forward policy, whose actor and critic may have their own widths."""
    config = resolve_config("ipwarmup/NewIP-v1", None, {"policy_kwargs": {"net_arch": arch}})
    model = model_from_config(config, OBS_SIZE, Path("config.yaml"))
    assert _mlp_parameters(config, OBS_SIZE) == sum(p.numel() for p in model.policy.parameters())


def test_episode_sequences_cut_each_env_s_record_into_its_complete_episodes() -> None:
    days, n = 6, 2
    record = np.arange(days * n).reshape(days, n)  # value = day * n + env
    dones = np.zeros((days, n), bool)
    dones[[2, 5], 0] = True  # env 0: two episodes of 3 days
    dones[1, 1] = True  # env 1: SES paused it on day 2, then an unfinished episode (left out)
    mask, (sequences,) = episode_sequences(dones, record)
    assert sequences.tolist() == [[0, 2, 4], [6, 8, 10], [1, 3, 0]]
    assert mask.tolist() == [[True] * 3, [True] * 3, [True, True, False]]


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny recurrent run, cloned from AIMD first, trained then resumed to twice its steps."""
    out = tmp_path_factory.mktemp("recurrent") / "run"
    train("ipwarmup/NewIP-v1", 0, out, 64, overrides={**SMALL, "imitate": "aimd", "imitate_episodes": 1},
          tensorboard=False)
    return train(None, 0, None, 128, resume=out, tensorboard=False)


def _actions(policy: RunPolicy, forget: bool, reset: bool = True) -> np.ndarray:
    """The run's actions over one NewIP episode, with its memory carried (or reset every day when ``forget``).
    Day 0 is not marked an episode start, so only ``policy.reset()`` (skipped if not ``reset``) clears the memory
    before it."""
    import gymnasium

    env = gymnasium.make("ipwarmup/NewIP-v1", horizon=12)
    obs, _ = env.reset(seed=5)
    if reset:
        policy.reset()
    actions = []
    for day in range(12):
        action, _ = policy.predict(obs[None], episode_start=np.array([forget and day > 0]))
        actions.append(action[0])
        obs, *_ = env.step(action[0])
    return np.array(actions)


def test_a_recurrent_run_trains_resumes_and_plays_with_its_memory(recurrent_run: Path) -> None:
    artifacts = load_run(recurrent_run, best=False)
    assert artifacts.model.num_timesteps == 128 and (recurrent_run / "imitation.json").exists()
    policy = RunPolicy(artifacts)
    policy.guard = None  # the guard remembers the last sends too: the network's memory alone is under test
    remembered = _actions(policy, forget=False)
    assert not np.allclose(remembered, _actions(policy, forget=False, reset=False))  # the last episode's memory
    np.testing.assert_array_equal(remembered, _actions(policy, forget=False))  # reset() forgets everything
    assert not np.allclose(remembered[1:], _actions(policy, forget=True)[1:])  # the memory changes what it does
    first = [k["return"] for k in run_episodes(policy, "ipwarmup/NewIP-v1", range(3), {"horizon": 12})]
    again = [k["return"] for k in run_episodes(policy, "ipwarmup/NewIP-v1", range(3), {"horizon": 12})]
    assert first == again and all(np.isfinite(first))


def test_a_recurrent_policy_takes_a_new_batch_of_envs_with_fresh_memory(recurrent_run: Path) -> None:
    policy, fresh = RunPolicy(load_run(recurrent_run)), RunPolicy(load_run(recurrent_run))
    policy.guard = fresh.guard = None  # the network's actions, not the guard's caps on them
    rng = np.random.default_rng(0)
    for _ in range(3):  # two envs' memory, three days deep
        policy.predict(rng.normal(size=(2, OBS_SIZE)).astype(np.float32), episode_start=np.zeros(2, bool))
    batch = rng.normal(size=(3, OBS_SIZE)).astype(np.float32)
    action, _ = policy.predict(batch, episode_start=np.zeros(3, bool))
    assert policy.memory[0].shape[1] == 3
    np.testing.assert_array_equal(action, fresh.predict(batch, episode_start=np.zeros(3, bool))[0])
    carried, _ = policy.predict(batch, episode_start=np.zeros(3, bool))
    assert not np.allclose(carried, action)  # the same days again, now with memory: the test could fail


def test_the_exported_recurrent_graph_acts_like_the_run_through_the_runtime(recurrent_run: Path,
                                                                            tmp_path: Path) -> None:
    """The ONNX graph reads the whole warm-up so far through the same LSTM: the runtime (no torch) plays episodes
    as the torch policy does, to float32 rounding, and a scheduler's recommend() gets the same first day."""
    from deploy import runtime as rt

    result = export_run(recurrent_run, tmp_path / "card", days=12)
    assert result.card["schema_version"] == rt.RECURRENT_SCHEMA_VERSION and result.card["memory"] == "lstm"
    torch_policy, onnx_policy = RunPolicy(load_run(recurrent_run)), rt.load_card_policy(tmp_path / "card")
    for seed in (1, 2):
        played = _actions_on_the_same_days((torch_policy, onnx_policy), seed)
        np.testing.assert_allclose(played[1], played[0], atol=2e-5)


@pytest.mark.parametrize("lstm", [{"n_lstm_layers": 2}, {"shared_lstm": True, "enable_critic_lstm": False},
                                  {"enable_critic_lstm": False}], ids=["two-layers", "shared", "no-critic"])
def test_every_lstm_layout_exports_a_graph_that_acts_like_the_run(lstm: dict[str, Any], tmp_path: Path) -> None:
    """Stacked layers feed each other in the graph as in torch, and only the actor's LSTM is exported whatever the
    critic has; the guard is off on both sides, so the network's own actions are compared."""
    from deploy import runtime as rt

    run = train("ipwarmup/NewIP-v1", 0, tmp_path / "run", 64, overrides={**SMALL, "policy_kwargs": {**NETWORK, **lstm}},
                tensorboard=False)
    export_run(run, tmp_path / "card", days=12)
    torch_policy, onnx_policy = RunPolicy(load_run(run)), rt.load_card_policy(tmp_path / "card")
    torch_policy.guard = onnx_policy.guard = None
    played = _actions_on_the_same_days((torch_policy, onnx_policy), 1)
    assert np.ptp(played[0]) > 0.01  # the actions vary: agreement is not two constants
    np.testing.assert_allclose(played[1], played[0], atol=2e-5)


def _actions_on_the_same_days(policies: tuple[Any, ...], seed: int) -> list[np.ndarray]:
    """Each policy's actions over 12 days of two NewIP envs batched, all reading the same days (the envs follow the
    first policy's actions: played apart, a difference at float32 rounding can move an integer count and the
    episodes drift apart). The second env starts a new episode on day 6, so the two episodes then differ in
    length (the runtime groups them by length, the torch policy resets one memory)."""
    import gymnasium

    envs = [gymnasium.make("ipwarmup/NewIP-v1", horizon=12) for _ in range(2)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    for policy in policies:
        policy.reset()
    actions: list[list[np.ndarray]] = [[] for _ in policies]
    for day in range(12):
        if day == 6:
            obs[1] = envs[1].reset(seed=seed + 10)[0]
        start = np.array([day == 0, day in (0, 6)])
        for played, policy in zip(actions, policies, strict=True):
            played.append(policy.predict(obs, episode_start=start)[0])
        obs = np.stack([env.step(a)[0] for env, a in zip(envs, actions[0][-1], strict=True)])
    return [np.array(played) for played in actions]


def test_a_recurrent_card_is_refused_by_name_when_its_memory_entry_is_wrong(recurrent_run: Path,
                                                                            tmp_path: Path) -> None:
    import json

    from deploy import runtime as rt

    export_run(recurrent_run, tmp_path / "card", days=3)
    card_path = tmp_path / "card" / rt.CARD_FILE
    card = json.loads(card_path.read_text())
    for key, value, problem in (("memory", None, "goes with memory 'lstm'"), ("frame_stack", 2, "one frame a day"),
                                ("schema_version", 4, "goes with memory None")):
        card_path.write_text(json.dumps({**card, key: value}))
        with pytest.raises(rt.CardError, match=problem):
            rt.load(card_path)


def test_a_scheduler_s_recommendations_equal_the_recurrent_run_over_whole_episodes(recurrent_run: Path,
                                                                                  tmp_path: Path) -> None:
    """Statistics -> runtime -> ONNX (the whole warm-up so far through the LSTM) gives, day after day, the action
    the torch policy takes with its memory carried over the simulator's observations."""
    from export_helpers import replayed_recommendations

    from deploy import runtime as rt

    export_run(recurrent_run, tmp_path / "card", days=3)
    replayed = replayed_recommendations(rt.load(tmp_path / "card"), RunPolicy(load_run(recurrent_run)), 3, horizon=12)
    assert len(replayed) == 12
    for rec, want, _ in replayed:
        np.testing.assert_allclose(rec.action, want, atol=2e-5)


def test_recurrent_cloning_leaves_the_padding_after_an_episode_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter episodes are padded to the longest; whatever the padded days hold, the fit is the same."""
    import torch

    from core.providers import PROVIDERS
    from training import imitation

    monkeypatch.setattr(imitation, "CLONE_STEPS", 5)
    config = resolve_config("ipwarmup/NewIP-v1", None, {"policy": "MlpLstmPolicy", "policy_kwargs": NETWORK})
    rng = np.random.default_rng(0)
    mask = np.arange(6)[None, :] < np.array([[6], [4], [2]])  # three episodes of 6, 4 and 2 days
    obs = rng.normal(size=(3, 6, OBS_SIZE)).astype(np.float32)
    actions = rng.uniform(-1, 1, (3, 6, len(PROVIDERS))).astype(np.float32)
    returns = rng.normal(size=(3, 6)).astype(np.float32)
    fits = []
    for padding in (0.0, 1e3):
        records = [r.copy() for r in (obs, actions, returns)]
        for record in records:
            record[~mask] = padding
        torch.manual_seed(0)
        policy = model_from_config(config, OBS_SIZE, Path("config.yaml")).policy
        losses = imitation._fit_recurrent(policy, *records, mask, seed=0)
        fits.append((losses, torch.cat([p.detach().flatten() for p in policy.parameters()])))
    assert fits[0][0] == fits[1][0]
    torch.testing.assert_close(fits[0][1], fits[1][1], rtol=0, atol=0)
