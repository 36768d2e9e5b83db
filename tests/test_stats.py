"""evaluation.stats against rliable's own functions on known data, and PoI's behaviour on noise."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaluation import stats

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rliable import library as rly
    from rliable import metrics

REPS = 300


def _frame(scores: dict[str, np.ndarray], kpi: str = "return") -> pd.DataFrame:
    """Episodes table from {policy: [runs, tasks]} with envs named e0, e1, ... and seeds 0..runs-1."""
    rows = []
    for policy, m in scores.items():
        for t in range(m.shape[1]):
            for i in range(m.shape[0]):
                rows.append({"policy": policy, "env": f"e{t}", "seed": i, kpi: m[i, t]})
    return pd.DataFrame(rows)


def _rliable_iqm(scores: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """rliable called directly; it resamples from the global np.random, so that is what gets the seed."""
    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        point, interval = rly.get_interval_estimates({"x": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]),
                                                     reps=REPS, random_state=np.random.RandomState(seed))
    return float(point["x"][0]), interval["x"][:, 0]


def test_iqm_of_known_data_is_the_mean_of_the_middle_half() -> None:
    episodes = _frame({"a": np.arange(1.0, 9.0)[:, None]})  # 1..8: the middle half is 3, 4, 5, 6
    row = stats.summarize(episodes, ["return"], reps=REPS).iloc[0]
    assert row["iqm"] == pytest.approx(4.5)
    assert row["ci_low"] <= 4.5 <= row["ci_high"]


def test_single_env_interval_matches_rliable_exactly() -> None:
    data = np.random.RandomState(3).lognormal(size=(40, 1))
    row = stats.summarize(_frame({"a": data}), ["return"], reps=REPS, seed=11).iloc[0]
    point, interval = _rliable_iqm(data, seed=11)
    assert row["iqm"] == pytest.approx(point)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(list(interval))


def test_all_envs_row_matches_rliable_stratified_bootstrap_across_tasks() -> None:
    rng = np.random.RandomState(5)
    data = np.column_stack([rng.normal(0, 1, 30), rng.normal(5, 2, 30), rng.exponential(3, 30)])
    table = stats.summarize(_frame({"a": data}), ["return"], reps=REPS, seed=7)
    overall = table[table["env"] == stats.ALL_ENVS].iloc[0]
    point, interval = _rliable_iqm(data, seed=7)
    assert overall["iqm"] == pytest.approx(point)
    assert [overall["ci_low"], overall["ci_high"]] == pytest.approx(list(interval))
    per_env = table[table["env"] == "e1"].iloc[0]
    assert per_env["iqm"] == pytest.approx(metrics.aggregate_iqm(data[:, [1]]))
    assert per_env["episodes"] == 30 and overall["episodes"] == 90


def test_binary_kpi_is_summarized_by_its_mean() -> None:
    paused = np.array([1.0] * 3 + [0.0] * 17)[:, None]  # IQM would say 0; 15% of episodes paused
    row = stats.summarize(_frame({"a": paused}, kpi="paused"), ["paused"], reps=REPS).iloc[0]
    assert row["statistic"] == "mean"
    assert row["iqm"] == pytest.approx(0.15)


def test_a_policy_numbers_do_not_depend_on_the_other_policies() -> None:
    rng = np.random.RandomState(0)
    a, b = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    alone = stats.summarize(_frame({"a": a}), ["return"], reps=REPS)
    both = stats.summarize(_frame({"b": b, "a": a}), ["return"], reps=REPS)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), both[both["policy"] == "a"].reset_index(drop=True))


def test_poi_per_task_matches_rliable_including_ties() -> None:
    rng = np.random.RandomState(1)
    x = rng.randint(0, 5, size=(25, 4)).astype(float)  # many ties
    y = rng.randint(0, 5, size=(30, 4)).astype(float)
    ours = stats.poi_per_task(x, y)
    theirs = [metrics.probability_of_improvement(x[:, [t]], y[:, [t]]) for t in range(4)]
    assert ours == pytest.approx(theirs)
    assert ours.mean() == pytest.approx(metrics.probability_of_improvement(x, y))
    assert stats.poi_per_task(x, x) == pytest.approx([0.5] * 4)


def test_poi_of_a_dominating_policy_is_one() -> None:
    rng = np.random.RandomState(2)
    ref = rng.normal(size=(20, 2))
    table = stats.probability_of_improvement(_frame({"ref": ref, "better": ref + 100}), "return", "ref", reps=REPS)
    assert set(table["env"]) == {"e0", "e1", stats.ALL_ENVS}
    assert table["poi"].tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_two_policies_differing_only_by_noise_get_poi_near_one_half() -> None:
    rng = np.random.RandomState(4)
    same = rng.normal(10, 1, size=(1, 3))  # identical expected return per env
    a = same + rng.normal(0, 1, size=(120, 3))
    b = same + rng.normal(0, 1, size=(120, 3))
    table = stats.probability_of_improvement(_frame({"b": b, "a": a}), "return", "b", reps=REPS)
    overall = table[table["env"] == stats.ALL_ENVS].iloc[0]
    assert overall["poi"] == pytest.approx(0.5, abs=0.06)
    assert overall["ci_low"] < 0.5 < overall["ci_high"]
    assert overall["poi"] == pytest.approx(metrics.probability_of_improvement(a, b))


def test_unequal_episode_counts_are_refused() -> None:
    episodes = _frame({"a": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="unequal"):
        stats.summarize(episodes.iloc[:-1], ["return"], reps=REPS)


def test_performance_profile_is_rliable_score_distribution() -> None:
    data = np.random.RandomState(6).uniform(size=(30, 2))
    taus = np.linspace(0, 1, 11)
    profiles, cis = stats.performance_profiles(_frame({"a": data}, kpi="inboxed_share"), "inboxed_share", taus,
                                               reps=100)
    assert profiles["a"] == pytest.approx(rly.score_distributions(data, taus))
    assert np.all(cis["a"][0] <= profiles["a"] + 1e-12) and np.all(profiles["a"] <= cis["a"][1] + 1e-12)


def test_a_pooled_sweep_counts_each_seed_once() -> None:
    """Two runs on the same three seeds: one row per seed, the runs' mean (the seed is the independent unit)."""
    import pandas as pd

    from evaluation.stats import score_matrix

    rows = [{"policy": "sweep", "env": "e", "seed": s, "return": float(s + run)} for run in (0, 10) for s in (1, 2, 3)]
    matrix = score_matrix(pd.DataFrame(rows), "sweep", ["e"], ["return"])
    assert matrix.shape == (3, 1, 1)
    assert matrix[:, 0, 0].tolist() == [6.0, 7.0, 8.0]
