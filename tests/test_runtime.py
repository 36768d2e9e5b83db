"""The PyTorch-free runtime: its imports, its features against the simulator's, and its refusals."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from export_helpers import ALL_COLUMNS, START, audience, exported, replayed_recommendations, simulate, stats_rows

from agents.ppo import load_run_policy
from core.features import LAYOUT
from core.providers import FEEDBACK_LOOP, PROVIDERS, TIERS
from core.util import sha256_file
from deploy import runtime as rt

REPO = Path(__file__).resolve().parent.parent


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


def test_runtime_and_recommend_through_the_package_import_neither_torch_nor_sb3_nor_gymnasium() -> None:
    result = _run_isolated("import sys\nimport deploy.runtime as rt, deploy.recommend, deploy.ses_events\n",
                           exported()[1])
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize(("scenario", "columns"), [
    ("ipwarmup/NewIP-v1", ALL_COLUMNS),
    # queued and first attempts derived, backlog defaulted: exact when mail overflows to other IPs.
    ("ipwarmup/NewIP-v1", ("sent", "delivered", "deferred", "bounced", "blocked", "complaints", "opens", "expired",
                           "demand", "warmup_percentage", "overflow", "overflow_delivered", "overflow_bounced",
                           "overflow_complaints", "postmaster_band", "snds_colour")),
    ("ipwarmup/AddIP-v1", ALL_COLUMNS),
    ("ipwarmup/Randomized-v1", ALL_COLUMNS),
    ("ipwarmup/SelfHosted-v1", ALL_COLUMNS),  # no overflow: a backlog builds up and expires
])
def test_features_from_statistics_equal_the_simulator_observation(scenario: str, columns: tuple[str, ...]) -> None:
    """Recomputing the observation from a sender's statistics gives build_observation's numbers, every day."""
    run, _ = exported()
    observations, infos, shares = simulate(load_run_policy(run), scenario, seed=3, horizon=25)
    rows = stats_rows(infos, shares, columns)
    for day in range(len(infos) + 1):
        history = rt.History.from_rows([r for r in rows if (r["date"] - START).days < day], PROVIDERS, START)
        got = rt.observations(history, FEEDBACK_LOOP, 3, demand_hint=infos[0]["demand_by_provider"],
                              audience=audience(infos[0]))
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
        for rec, want, demand in replayed_recommendations(runtime, reference, seed, horizon=20):
            np.testing.assert_allclose(rec.action, want, atol=1e-5)
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


def test_missing_audience_is_imputed_with_the_training_mean_and_reported() -> None:
    """Without the list's composition the four audience features are NaN in every real frame, i.e. the mean."""
    _, folder = exported()
    runtime = rt.load(folder)
    card = json.loads((folder / rt.CARD_FILE).read_text())
    mean = {f["name"]: f["mean"] for f in card["observation"]["features"]}
    names = [f"audience_{t}" for t in TIERS]
    rows = [dict(date=f"2025-03-0{d}", provider=p, sent=100 * d, delivered=90 * d, deferred=5, bounced=3, blocked=2,
                 complaints=0, opens=20, expired=0, queued=5, demand=1000, warmup_percentage=10.0 * d)
            for d in (1, 2) for p in PROVIDERS]
    without = runtime.recommend(rows)
    dashboards = ["gmail_postmaster_band", "gmail_postmaster_shown", "microsoft_snds_colour", "microsoft_snds_shown"]
    assert without.imputed == sorted(names + dashboards) and without.audience is None  # no dashboard columns either
    assert without.as_dict()["imputed"] == sorted(names + dashboards)
    obs = runtime.observations(rt.History.from_rows(rows, PROVIDERS))
    assert np.isnan(obs[:, [LAYOUT.index(None, n) for n in names]]).all()

    at_mean = runtime.recommend(rows, audience={t: mean[n] for t, n in zip(TIERS, names, strict=True)})
    np.testing.assert_allclose(at_mean.action, without.action, atol=1e-4)  # the means sum to 1 only roughly
    given = {"opened_30d": 0.45, "opened_60d": 0.25, "opened_90d": 0.15, "older": 0.15}
    rec = runtime.recommend(rows, audience=given)
    assert rec.imputed == sorted(dashboards) and rec.audience == pytest.approx(given)
    obs = runtime.observations(rt.History.from_rows(rows, PROVIDERS), audience=given)
    np.testing.assert_allclose(obs[:, [LAYOUT.index(None, n) for n in names]], [list(given.values())] * 2, rtol=1e-6)


@pytest.mark.parametrize(("audience", "message"), [
    ({"opened_30d": 0.5, "opened_60d": 0.2, "opened_90d": 0.1, "never": 0.2},
     "unknown audience tier 'never'; the tiers are opened_30d, opened_60d, opened_90d, older"),
    ({"opened_30d": 0.5, "opened_60d": 0.3, "opened_90d": 0.2}, "audience is missing older"),
    ({"opened_30d": 45, "opened_60d": 25, "opened_90d": 15, "older": 15}, "a percentage?"),
    ({"opened_30d": -0.1, "opened_60d": 0.5, "opened_90d": 0.3, "older": 0.3}, "between 0 and 1"),
    ({"opened_30d": float("nan"), "opened_60d": 0.5, "opened_90d": 0.3, "older": 0.2}, "between 0 and 1"),
    ({"opened_30d": "lots", "opened_60d": 0.5, "opened_90d": 0.3, "older": 0.2}, "'lots' is not a number"),
    ({"opened_30d": 0.5, "opened_60d": 0.5, "opened_90d": 0.5, "older": 0.5}, "sum to 2, not 1"),
    ([0.45, 0.25, 0.15, 0.15], "must be a mapping"),
])
def test_bad_audience_is_refused(audience: object, message: str) -> None:
    runtime = rt.load(exported()[1])
    rows = [dict(date="2025-03-01", provider=p, sent=100, delivered=90, deferred=5, bounced=3, blocked=2,
                 complaints=0) for p in PROVIDERS]
    with pytest.raises(rt.AudienceError, match=re.escape(message)):
        runtime.recommend(rows, audience=audience)  # type: ignore[arg-type]


def test_audience_rounded_to_whole_percentages_is_accepted_and_rescaled() -> None:
    tiers = rt.audience_vector({"opened_30d": 0.33, "opened_60d": 0.33, "opened_90d": 0.17, "older": 0.16})
    assert tiers.sum() == pytest.approx(1.0) and tiers[0] == pytest.approx(0.33 / 0.99)
    assert np.isnan(rt.audience_vector(None)).all()


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
    for version in (rt.SCHEMA_VERSION - 1, 99, "4", True):
        _edit_card(folder, lambda c, v=version: c.update(schema_version=v))  # type: ignore[misc]
        with pytest.raises(rt.CardError, match="this runtime reads schema_version"):
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
    _edit_card(folder, lambda c: c["onnx"].update(sha256=sha256_file(folder / rt.ONNX_FILE)))
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


def test_a_fixed_list_policy_ignores_the_audience_and_says_so(tmp_path: Path) -> None:
    """A policy trained on one fixed list never saw the audience vary: a given audience is imputed, not clipped."""
    from training.export import export_run
    from training.run import train

    run = train("ipwarmup/NewIP-v1", 0, tmp_path / "run", n_timesteps=256, tensorboard=False,
                overrides={"n_envs": 4, "n_steps": 64, "batch_size": 64, "n_epochs": 1, "eval_freq": 0, "save_freq": 0})
    runtime = rt.load(export_run(run, tmp_path / "export", days=3).out)
    assert not runtime.learned_audience and rt.load(exported()[1]).learned_audience
    _, infos, shares = simulate(load_run_policy(run), seed=0, horizon=5)
    rows = stats_rows(infos, shares, ALL_COLUMNS)
    odd_list = {"opened_30d": 0.2, "opened_60d": 0.2, "opened_90d": 0.2, "older": 0.4}
    given, none = runtime.recommend(rows, start=START, audience=odd_list), runtime.recommend(rows, start=START)
    assert given.ignored == [f"audience_{t}" for t in rt.AUDIENCE_TIERS] and none.ignored == []
    assert given.action == none.action and given.audience is None


# --- The jump guard in the runtime ---------------------------------------------------------------------------


def _one_day(sent: int, demand: int) -> list[dict]:
    return [dict(date=START.isoformat(), provider=p, sent=sent, first_attempts=sent, delivered=sent, deferred=0,
                 bounced=0, blocked=0, complaints=0, demand=demand) for p in PROVIDERS]


def test_the_card_carries_the_runs_jump_guard() -> None:
    from agents.ppo import read_config
    from agents.run_config import jump_guard_of

    run, folder = exported()
    guard = rt.load(folder).guard
    want = jump_guard_of(read_config(run))
    assert guard is not None and want is not None
    assert guard.allowance == want.allowance
    np.testing.assert_array_equal(guard.base, want.base)


def _unguarded(tmp_path: Path) -> rt.Runtime:
    folder = _copy(exported()[1], tmp_path)
    _edit_card(folder, lambda c: c.update(jump_guard=None))
    return rt.load(folder)


@pytest.mark.parametrize("sent", [0, 40, 120])
def test_recommended_caps_never_exceed_the_guards(tmp_path: Path, sent: int) -> None:
    """Where the graph asks for more than 1.6 x max(the last day's first attempts, base), the caps are lowered to
    the guard's, and the warm-up percentages with them."""
    runtime = rt.load(exported()[1])
    assert runtime.guard is not None
    demand = {p: 400_000 for p in PROVIDERS}
    rec = runtime.recommend(_one_day(sent, 400_000), demand=demand)
    free = _unguarded(tmp_path).recommend(_one_day(sent, 400_000), demand=demand)
    want = runtime.guard.caps(np.full((1, len(PROVIDERS)), float(sent)))[0]
    assert rec.guard_caps == {p: int(c) for p, c in zip(PROVIDERS, want, strict=True)}
    assert any(free.caps[p] > rec.guard_caps[p] for p in PROVIDERS)  # the guard has work to do here
    for p in PROVIDERS:
        assert rec.caps[p] == min(free.caps[p], rec.guard_caps[p]) or rec.caps[p] == rec.guard_caps[p] - 1
    share = rt.action_to_share(np.array(rec.action))
    assert rec.caps == {p: int(np.floor(share[i] * 400_000)) for i, p in enumerate(PROVIDERS)}
    assert rec.as_dict()["guard_caps"] == rec.guard_caps


def test_the_smallest_share_is_the_one_jump_the_guard_cannot_prevent() -> None:
    """A provider with 20M emails a day gets at least 10^-4 of them (2,000), above a cold IP's guard cap."""
    runtime = rt.load(exported()[1])
    rec = runtime.recommend(_one_day(0, 20_000_000), demand={p: 20_000_000 for p in PROVIDERS})
    assert all(rec.caps[p] == 2_000 > rec.guard_caps[p] for p in PROVIDERS)


def test_without_a_demand_figure_the_guard_caps_still_bind() -> None:
    runtime = rt.load(exported()[1])
    rows = [{k: v for k, v in r.items() if k != "demand"} for r in _one_day(100, 0)]
    rec = runtime.recommend(rows)
    assert all(c is None for c in rec.caps.values())
    assert rec.guard_caps == {p: int(c) for p, c in zip(PROVIDERS, runtime.guard.caps(np.full((1, 5), 100.0))[0],
                                                        strict=True)}


def test_without_first_attempts_the_guard_reads_a_lower_bound_of_them() -> None:
    """Retries inflate 'sent': with no first_attempts, expired or queued column, yesterday's first attempts are taken
    as sent less the day before's deferrals, never as all of sent."""
    day1 = [dict(r, first_attempts=None) for r in _one_day(1_000, 400_000)]
    for r in day1:
        r.update(delivered=400, deferred=600)
    day2 = [dict(r, date=(START + dt.timedelta(days=1)).isoformat(), sent=2_200, delivered=2_200, deferred=0)
            for r in day1]
    rows = [{k: v for k, v in r.items() if v is not None} for r in day1 + day2]
    history = rt.History.from_rows(rows, PROVIDERS, None)
    np.testing.assert_array_equal(rt.last_first_attempts(history, FEEDBACK_LOOP), np.full(5, 1_600.0))
    with_column = [dict(r, first_attempts=1_700) for r in rows]
    history = rt.History.from_rows(with_column, PROVIDERS, None)
    np.testing.assert_array_equal(rt.last_first_attempts(history, FEEDBACK_LOOP), np.full(5, 1_700.0))


def test_a_card_without_a_guard_recommends_the_graphs_share(tmp_path: Path) -> None:
    folder = _copy(exported()[1], tmp_path)
    _edit_card(folder, lambda c: c.update(jump_guard=None))
    runtime = rt.load(folder)
    guarded = rt.load(exported()[1]).recommend(_one_day(0, 400_000))
    unguarded = runtime.recommend(_one_day(0, 400_000))
    assert runtime.guard is None and unguarded.guard_caps is None
    action, _ = runtime.act(runtime.observations(rt.History.from_rows(_one_day(0, 400_000), PROVIDERS, None))[None])
    np.testing.assert_allclose(unguarded.action, action[0])
    assert unguarded.total_cap > guarded.total_cap


@pytest.mark.parametrize("entry", [
    "lots", {"allowance": 1.6}, {"allowance": 0.9, "base": {p: 100 for p in PROVIDERS}},
    {"allowance": 1.6, "base": {"gmail": 100}}, {"allowance": 1.6, "base": {p: 0 for p in PROVIDERS}},
    {"allowance": "1.6", "base": {p: 100 for p in PROVIDERS}},
    {"allowance": 1e300, "base": {p: 100 for p in PROVIDERS}},
    {"allowance": 1.6, "base": {p: 1.7e308 for p in PROVIDERS}},
    {"allowance": 10**400, "base": {p: 100 for p in PROVIDERS}},
])
def test_a_malformed_jump_guard_is_refused(tmp_path: Path, entry: object) -> None:
    folder = _copy(exported()[1], tmp_path)
    _edit_card(folder, lambda c: c.update(jump_guard=entry))
    with pytest.raises(rt.CardError, match="jump_guard|allowance"):
        rt.load(folder)


def test_a_card_with_no_jump_guard_entry_is_refused(tmp_path: Path) -> None:
    folder = _copy(exported()[1], tmp_path)
    _edit_card(folder, lambda c: c.pop("jump_guard"))
    with pytest.raises(rt.CardError, match="no 'jump_guard' entry"):
        rt.load(folder)


def test_ses_sums_are_the_weighted_window_over_every_day_so_far() -> None:
    """The recursion equals the definition, sum over days j <= t of SES_DECAY ** (t - j) x_j, for every t."""
    from core.features import SES_DECAY

    daily = np.random.default_rng(0).integers(0, 10**6, (40, 4)).astype(float)
    ages = np.arange(41)[:, None] - np.arange(1, 41)[None, :]
    window = np.where(ages >= 0, SES_DECAY ** np.maximum(ages, 0), 0.0) @ daily
    np.testing.assert_allclose(rt.ses_sums(daily), window, rtol=1e-12)


def test_every_day_of_the_longest_history_costs_memory_linear_in_its_length() -> None:
    """A recurrent card reads every day since the warm-up start; a statistics file may span MAX_SPAN_DAYS. A window
    of weights per frame and day took [days, days] arrays, about 0.4 GB at peak for ten years."""
    import tracemalloc

    last = START + dt.timedelta(days=rt.MAX_SPAN_DAYS - 1)
    rows = [{**row, "date": last.isoformat()} for row in _one_day(1_000, 2_000)]
    history = rt.History.from_rows(rows, PROVIDERS, START)
    tracemalloc.start()
    try:
        obs = rt.observations(history, FEEDBACK_LOOP, history.days + 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert obs.shape[0] == rt.MAX_SPAN_DAYS + 1 and np.isfinite(obs[-1]).any()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"
