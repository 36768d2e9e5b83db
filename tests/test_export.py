"""Export of a trained run: the ONNX graph acts like the SB3 policy, the card documents it, no pickle leaves."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from export_helpers import exported, simulate

from agents.ppo import load_run, load_run_policy
from core.actions import action_to_share
from core.features import GLOBAL_FEATURES, LAYOUT, PROVIDER_FEATURES
from core.providers import PROVIDERS
from deploy import runtime as rt
from training.export import export_run
from training.vec_env import SimulatorVecEnv

REPO = Path(__file__).resolve().parent.parent
PICKLE_MARKERS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


def sample_histories(run: Path, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` raw observation histories [n, k, OBS_SIZE] from real episodes, with the SB3 policy's actions on them.

    The SB3 policy acts with exploration noise on a vector env (so episodes differ and reach late days);
    each step records the frame-stacked raw observations it saw, zero-padded frames as NaN. The actions are the
    network's own, without the jump guard: the graph is the network, the runtime applies the guard after it.
    """
    policy = load_run_policy(run)
    assert policy.guard is not None  # the tiny run trains with the default config's guard
    policy.guard = None
    k = policy.artifacts.frame_stack
    envs_ = SimulatorVecEnv("ipwarmup/NewIP-v1", 16, seed=seed)
    rng = np.random.default_rng(seed)
    obs = envs_.reset()
    history = np.full((16, k, obs.shape[1]), np.nan, np.float32)
    start = np.ones(16, bool)
    histories, actions = [], []
    while len(histories) * 16 < n:
        history[start] = np.nan
        history[:, :-1] = history[:, 1:]
        history[:, -1] = obs
        action, _ = policy.predict(obs, episode_start=start)
        histories.append(history.copy())
        actions.append(action)
        noisy = np.clip(action + rng.normal(0, 0.4, action.shape), -1, 1)
        obs, _, start, _ = envs_.step(noisy)
    return np.concatenate(histories)[:n], np.concatenate(actions)[:n]


def test_export_writes_graph_card_and_schedule() -> None:
    run, folder = exported()
    assert {p.name for p in folder.iterdir()} == {"policy.onnx", "policy.json", "schedule.csv", "schedule.json",
                                                  ".ipwarmup-output.json"}
    card = json.loads((folder / "policy.json").read_text())
    assert card["schema_version"] == rt.SCHEMA_VERSION
    assert card["providers"] == list(PROVIDERS)
    assert card["frame_stack"] == 2
    assert card["onnx"]["sha256"] == hashlib.sha256((folder / "policy.onnx").read_bytes()).hexdigest()
    features = card["observation"]["features"]
    assert [f["name"] for f in features] == LAYOUT.names
    units = [f.unit for _ in PROVIDERS for f in PROVIDER_FEATURES] + [f.unit for f in GLOBAL_FEATURES]
    assert [f["unit"] for f in features] == units
    assert all(f["description"] and f["computed_as"] for f in features)
    assert card["observation"]["size"] == len(LAYOUT.names) == len(features)
    assert card["observation"]["audience"]["tiers"] == list(rt.AUDIENCE_TIERS)
    assert card["observation"]["audience"]["features"] == [n for n in LAYOUT.names if n.startswith("audience_")]
    norm = load_run(run).normalization
    np.testing.assert_allclose([f["mean"] for f in features], norm.mean)
    np.testing.assert_allclose([f["var"] for f in features], norm.var)
    assert card["normalization"]["clip"] == norm.clip
    assert card["training"]["env_id"] == "ipwarmup/Randomized-v1"
    assert len(card["training"]["config_hash"]) == 64
    assert card["kpis"]["schedule_rollout"]["length"] == 12
    assert "10 ** (-4 * ((1 - action) / 2) ** 2)" in card["action"]["decoding"]


def test_exported_artifacts_contain_no_pickle() -> None:
    _, folder = exported()
    for path in folder.iterdir():
        data = path.read_bytes()
        assert path.suffix in (".onnx", ".json", ".csv"), path
        assert not any(data.startswith(m) for m in PICKLE_MARKERS), path
        assert b"PK\x03\x04" not in data, path  # no zip archive (SB3's model.zip holds pickles)
        if path.suffix == ".json":  # strict JSON (no NaN), which every language's parser reads
            json.loads(data, parse_constant=lambda c, name=path.name: pytest.fail(f"{c} in {name}"))
        elif path.suffix == ".csv":
            data.decode("ascii")
    model = onnx.load(folder / "policy.onnx")
    onnx.checker.check_model(model)
    assert {n.op_type for n in model.graph.node} <= {"IsNaN", "Sub", "Div", "Clip", "Where", "Flatten", "Gemm",
                                                       "Tanh", "Mul", "Pow"}


def test_onnx_actions_equal_the_sb3_policy_on_observations_from_real_episodes() -> None:
    run, folder = exported()
    histories, actions = sample_histories(run, 2_000)
    assert np.isnan(histories[:, 0]).all(axis=1).any()  # episode starts are in the sample
    assert (histories[:, -1, LAYOUT.index(None, "day")] > 20).any()  # and late days
    runtime = rt.load(folder)
    got, share = runtime.act(histories)
    assert np.abs(got - actions).max() < 1e-5
    np.testing.assert_allclose(share, action_to_share(got), rtol=1e-5)


def test_exported_policy_acts_like_the_run_over_whole_episodes() -> None:
    """RuntimePolicy (what agents.load_policy returns for a card) against RunPolicy, step by step."""
    run, folder = exported()
    reference, exported_policy = load_run_policy(run), rt.load_card_policy(folder)
    envs_ = SimulatorVecEnv("ipwarmup/NewIP-v1", 4, seed=7, horizon=15)
    obs = envs_.reset()
    start = np.ones(4, bool)
    episodes = 0
    rng = np.random.default_rng(1)
    while episodes < 8:
        want, _ = reference.predict(obs, episode_start=start)
        got, _ = exported_policy.predict(obs, episode_start=start)
        np.testing.assert_allclose(got, want, atol=1e-5)
        obs, _, start, _ = envs_.step(np.clip(want + rng.normal(0, 0.3, want.shape), -1, 1))
        episodes += int(start.sum())


def test_exported_policy_scores_like_the_original() -> None:
    """Same seeds, same episodes: the exported policy's scores match the SB3 run's.

    Not email for email: torch and onnxruntime round float32 differently (actions agree to ~3e-7, checked
    above to 1e-5), and a cap that lands within ~1e-3 of a whole number floors one email apart (measured:
    1692.9992 emails, one day in 90). The episodes must still have the same length and nearly the same totals.
    """
    run, folder = exported()
    for seed in (0, 1, 2):
        _, infos_ref, _ = simulate(load_run_policy(run), seed=seed, noise=0.0, horizon=30)
        _, infos_exp, _ = simulate(rt.load_card_policy(folder), seed=seed, noise=0.0, horizon=30)
        assert len(infos_exp) == len(infos_ref)
        for key, rtol, atol in (("inbox", 1e-2, 0), ("complaints", 0.2, 3)):
            want, got = (sum(int(i[key].sum()) for i in infos) for infos in (infos_ref, infos_exp))
            assert abs(got - want) <= atol + rtol * want, (seed, key, got, want)


def test_schedule_is_the_exported_policy_rollout() -> None:
    _, folder = exported()
    rows = list(csv.DictReader((folder / "schedule.csv").open()))
    data = json.loads((folder / "schedule.json").read_text())
    assert [int(r["day"]) for r in rows] == list(range(1, 13))
    assert len(data["days"]) == 12
    for row, day in zip(rows, data["days"], strict=True):
        caps = [int(row[f"{p}_cap"]) for p in PROVIDERS]
        assert caps == [day["caps"][p] for p in PROVIDERS]
        assert int(row["total_cap"]) == sum(caps)
        for p in PROVIDERS:
            pct = float(row[f"{p}_warmup_percentage"])
            assert 0.01 - 1e-9 <= pct <= 100.0
            # the cap is the share of the provider's available mail, rounded down
            assert day["caps"][p] == pytest.approx(pct / 100 * day["available"][p], abs=1 + 1e-4 * day["available"][p])


def test_export_is_reproducible_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    run, folder = exported()
    export_run(run, tmp_path, days=12)
    for name in ("policy.onnx", "schedule.csv", "schedule.json"):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ipwarmup-output.json", "policy.json", "policy.onnx",
                                                          "schedule.csv", "schedule.json"]


def test_export_cli_with_scenario_and_days(tmp_path: Path) -> None:
    run, _ = exported()
    result = subprocess.run([sys.executable, "-m", "ipwarmup_cli", "export", str(run), "--out", str(tmp_path / "o"),
                             "--scenario", "ipwarmup/SelfHosted-v1", "--days", "5"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    schedule = json.loads((tmp_path / "o" / "schedule.json").read_text())
    assert schedule["scenario"] == "ipwarmup/SelfHosted-v1" and len(schedule["days"]) == 5
    assert rt.load(tmp_path / "o").card["schedule"]["scenario"] == "ipwarmup/SelfHosted-v1"
    # It prints day 1's volume beside the model's jump-free day 1, and the days with a jump the model punishes.
    day1 = sum(schedule["days"][0]["caps"].values())
    allowance = {p: min(v, schedule["days"][0]["available"][p]) for p, v in schedule["first_day_allowance"].items()}
    assert f"day 1 {day1:,} emails on the new IP (no jump at median cold acceptance up to " \
           f"{sum(allowance.values()):,})" in result.stdout
    assert f"days with a jump the model punishes: {int(schedule['kpis']['spike_days'])};" in result.stdout
    assert schedule["first_day_allowance"]["gmail"] == 1_120  # 1.6 x Gmail's median cold acceptance, 700
    # and the guard the card carries: trained on Randomized, whose low cold acceptance is 50 a provider
    guard_cap = int(np.floor(1.6 * 0.999 * 50 - 2)) * len(PROVIDERS)
    assert f"jump guard: no provider's first attempts above 1.6 x max(its last day, its low cold acceptance); " \
           f"day 1 at most {guard_cap:,} emails" in result.stdout
    assert day1 <= guard_cap


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}/missing-run"], "does not exist"),
    (["{run}", "--scenario", "ipwarmup/NewIp-v1"], "did you mean"),
])
def test_export_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    run, _ = exported()
    argv = [a.format(tmp=tmp_path, run=run) for a in args] + ["--out", str(tmp_path / "o")]
    result = subprocess.run([sys.executable, "-m", "ipwarmup_cli", "export", *argv], cwd=REPO, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
