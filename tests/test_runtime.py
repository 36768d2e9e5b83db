"""The PyTorch-free runtime: its imports, its features against the simulator's, and its refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from export_helpers import START, exported, simulate, stats_rows

from agents import runtime as rt
from agents.ppo import load_run_policy
from envs.dynamics import FBL
from envs.observation import GLOBAL_FEATURES, LAYOUT, PROVIDER_FEATURES
from envs.scenario import PROVIDERS

REPO = Path(__file__).resolve().parent.parent
ALL_COLUMNS = ("sent", "delivered", "deferred", "bounced", "blocked", "complaints", "opens", "expired", "queued",
               "backlog", "demand", "warmup_percentage")


def test_feature_definitions_match_the_simulator_layout() -> None:
    assert rt.feature_names(PROVIDERS) == LAYOUT.names
    assert [(f.name, f.unit) for f in rt.PROVIDER_FEATURES] == [(f.name, f.unit) for f in PROVIDER_FEATURES]
    assert [(f.name, f.unit) for f in rt.GLOBAL_FEATURES] == [(f.name, f.unit) for f in GLOBAL_FEATURES]


HEAVY = ("torch", "stable_baselines3", "gymnasium", "envs", "onnx")


def _run_isolated(prelude: str, folder: Path) -> subprocess.CompletedProcess[str]:
    code = prelude + textwrap.dedent(f"""
        runtime = rt.load({str(folder)!r})
        rows = [dict(date="2025-03-01", provider=p, sent=100, delivered=90, deferred=5, bounced=3, blocked=2,
                     complaints=0, demand=1000) for p in runtime.providers]
        assert runtime.recommend(rows).caps["gmail"] is not None
        print("HEAVY", [m for m in {HEAVY!r} if m in sys.modules])
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)


def test_runtime_file_on_its_own_imports_neither_torch_nor_sb3_nor_gymnasium() -> None:
    """A scheduler can copy agents/runtime.py alone: loaded from its file, it needs only numpy and onnxruntime."""
    prelude = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("ipwarmup_runtime", {str(REPO / "agents" / "runtime.py")!r})
        rt = importlib.util.module_from_spec(spec)
        sys.modules["ipwarmup_runtime"] = rt
        spec.loader.exec_module(rt)
    """)
    result = _run_isolated(prelude, exported()[1])
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_runtime_and_recommend_through_the_package_import_neither_torch_nor_sb3_nor_gymnasium() -> None:
    result = _run_isolated("import sys\nimport agents.runtime as rt, agents.recommend, agents.ses_events\n",
                           exported()[1])
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize(("scenario", "columns"), [
    ("ipwarmup/NewIP-v0", ALL_COLUMNS),
    # queued and first attempts derived, backlog defaulted: exact when mail overflows to other IPs.
    ("ipwarmup/NewIP-v0", ("sent", "delivered", "deferred", "bounced", "blocked", "complaints", "opens", "expired",
                           "demand", "warmup_percentage")),
    ("ipwarmup/AddIP-v0", ALL_COLUMNS),
    ("ipwarmup/Randomized-v0", ALL_COLUMNS),
])
def test_features_from_statistics_equal_the_simulator_observation(scenario: str, columns: tuple[str, ...]) -> None:
    """Recomputing the observation from a sender's statistics gives build_observation's numbers, every day."""
    run, _ = exported()
    observations, infos, shares = simulate(load_run_policy(run), scenario, seed=3, horizon=25)
    rows = stats_rows(infos, shares, columns)
    for day in range(len(infos) + 1):
        history = rt.History.from_rows([r for r in rows if (r["date"] - START).days < day], PROVIDERS, START)
        got = rt.observations(history, FBL, 3, demand_hint=infos[0]["demand_by_provider"])
        want = np.stack(observations[max(day - 2, 0):day + 1])
        assert not np.isnan(got[-len(want):]).any()
        np.testing.assert_allclose(got[-len(want):], want, rtol=1e-5, atol=1e-5, err_msg=f"day {day}")
        assert np.isnan(got[:-len(want)]).all()  # before day 0: padding


def test_recommendations_equal_the_trained_policy_over_whole_episodes() -> None:
    """Statistics -> runtime -> ONNX gives the action the SB3 policy takes on the simulator's observation."""
    run, folder = exported()
    runtime = rt.load(folder)
    reference = load_run_policy(run)
    for seed in (0, 1):
        observations, infos, shares = simulate(reference, seed=seed, horizon=20)
        rows = stats_rows(infos, shares, ALL_COLUMNS)
        reference.stacker.buffer = None
        for day, obs in enumerate(observations[:-1]):
            want, _ = reference.predict(obs[None], episode_start=np.array([day == 0]))
            demand = dict(zip(PROVIDERS, infos[0]["demand_by_provider"].tolist(), strict=True))
            rec = runtime.recommend([r for r in rows if (r["date"] - START).days < day], start=START, demand=demand)
            np.testing.assert_allclose(rec.action, want[0], atol=1e-5)
            assert rec.imputed == []
            share = rt.action_to_share(np.array(rec.action))
            assert rec.caps == {p: int(np.floor(share[i] * demand[p])) for i, p in enumerate(PROVIDERS)}


def test_missing_values_are_imputed_with_the_training_mean() -> None:
    """NaN in the graph input acts like the training mean (a normalized 0), and the runtime says so."""
    _, folder = exported()
    runtime = rt.load(folder)
    card = json.loads((folder / rt.CARD_FILE).read_text())
    mean = np.array([f["mean"] for f in card["observation"]["features"]], np.float32)
    rng = np.random.default_rng(0)
    frames = np.tile(mean, (4, 2, 1)) + rng.normal(0, 0.1, (4, 2, mean.size)).astype(np.float32)
    j = LAYOUT.index("gmail", "open_rate")
    with_nan, with_mean = frames.copy(), frames.copy()
    with_nan[:, :, j], with_mean[:, :, j] = np.nan, mean[j]
    np.testing.assert_allclose(runtime.act(with_nan)[0], runtime.act(with_mean)[0], atol=1e-6)
    assert not np.allclose(runtime.act(frames)[0], runtime.act(with_mean)[0], atol=1e-7)

    rows = [dict(date="2025-03-01", provider=p, sent=100, delivered=90, deferred=5, bounced=3, blocked=2,
                 complaints=0, demand=1000) for p in PROVIDERS]
    rec = runtime.recommend(rows)
    assert {f"{p}.open_rate" for p in PROVIDERS} <= set(rec.imputed)
    assert {f"{p}.expired_log10" for p in PROVIDERS} <= set(rec.imputed)
    assert "gmail.sent_log10" not in rec.imputed
    assert rec.caps["gmail"] == int(np.floor(rec.warmup_percentage["gmail"] / 100 * 1000))
    assert runtime.recommend([{k: v for k, v in r.items() if k != "demand"} for r in rows]).total_cap is None


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(folder, target)
    return target


def _edit_card(folder: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = folder / rt.CARD_FILE
    card = json.loads(path.read_text())
    edit(card)
    path.write_text(json.dumps(card))


def test_card_with_another_schema_version_is_refused(tmp_path: Path) -> None:
    folder = _copy(exported()[1], tmp_path)
    _edit_card(folder, lambda c: c.update(schema_version=rt.SCHEMA_VERSION + 1))
    with pytest.raises(rt.CardError, match="schema_version"):
        rt.load(folder)


def test_card_with_another_provider_order_is_refused(tmp_path: Path) -> None:
    folder = _copy(exported()[1], tmp_path)
    order = ["microsoft", "gmail", "yahoo", "apple", "other"]

    def reorder(card: dict) -> None:
        card["providers"] = order
        for feature, name in zip(card["observation"]["features"], rt.feature_names(order), strict=True):
            feature["name"] = name

    _edit_card(folder, reorder)
    with pytest.raises(rt.CardError, match="providers"):
        rt.load(folder)


def test_onnx_file_that_does_not_match_the_card_is_refused(tmp_path: Path) -> None:
    folder = _copy(exported()[1], tmp_path)
    data = bytearray((folder / rt.ONNX_FILE).read_bytes())
    data[-10] ^= 0xFF
    (folder / rt.ONNX_FILE).write_bytes(bytes(data))
    with pytest.raises(rt.CardError, match="does not match"):
        rt.load(folder)


def test_card_pointing_at_a_graph_with_other_metadata_is_refused(tmp_path: Path) -> None:
    """Even with a matching hash, the graph's own metadata must agree with the card."""
    folder = _copy(exported()[1], tmp_path)
    _edit_card(folder, lambda c: c.update(frame_stack=3))
    with pytest.raises(rt.CardError, match="frame_stack"):
        rt.load(folder)


def test_garbage_onnx_with_a_matching_hash_is_refused(tmp_path: Path) -> None:
    folder = _copy(exported()[1], tmp_path)
    (folder / rt.ONNX_FILE).write_bytes(b"not an onnx model")
    _edit_card(folder, lambda c: c["onnx"].update(sha256=rt.file_sha256(folder / rt.ONNX_FILE)))
    with pytest.raises(rt.CardError, match="not a loadable ONNX model"):
        rt.load(folder)


@pytest.mark.parametrize(("rows", "message"), [
    ([{"date": "2025-03-01", "provider": "hotmail", "sent": 1, "delivered": 1, "deferred": 0, "bounced": 0,
       "blocked": 0, "complaints": 0}], "unknown provider"),
    ([{"date": "2025-03-01", "provider": "gmail", "sent": 1, "delivered": 1, "deferred": 0, "bounced": 0,
       "blocked": 0}], "complaints"),
    ([{"date": "2025-03-01", "provider": "gmail", "sent": -1, "delivered": 1, "deferred": 0, "bounced": 0,
       "blocked": 0, "complaints": 0}], "non-negative"),
    ([{"date": "03/01/2025", "provider": "gmail", "sent": 1, "delivered": 1, "deferred": 0, "bounced": 0,
       "blocked": 0, "complaints": 0}], "ISO date"),
])
def test_bad_history_rows_are_refused(rows: list[dict], message: str) -> None:
    with pytest.raises(rt.HistoryError, match=message):
        rt.History.from_rows(rows, PROVIDERS)
