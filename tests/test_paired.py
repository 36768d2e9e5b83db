"""Paired comparisons on the same seeds (evaluation.stats.paired_comparisons), who is compared, and paired.csv."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.util import BENCHMARK_SEED_BASE
from evaluation import cli, stats
from evaluation.specs import PolicySpec

REPS = 200


def _frame(scores: dict[str, np.ndarray], kpi: str = "return") -> pd.DataFrame:
    """Episodes table from {policy: [seeds, envs]} with envs e0, e1, ... and seeds 0..seeds-1."""
    rows = [{"policy": p, "env": f"e{t}", "seed": i, kpi: m[i, t]}
            for p, m in scores.items() for t in range(m.shape[1]) for i in range(m.shape[0])]
    return pd.DataFrame(rows)


def _paired(episodes: pd.DataFrame, candidates: list[str], baselines: list[str]) -> pd.DataFrame:
    return stats.paired_comparisons(episodes, "return", candidates, baselines, reps=REPS, seed=3)


def test_better_by_a_constant_on_every_seed_wins_every_pair() -> None:
    base = np.random.RandomState(0).normal(0, 5, size=(12, 2))  # seed noise far larger than the gap
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # zero-variance differences: no NaN warnings either
        table = _paired(_frame({"base": base, "cand": base + 1.5}), ["cand"], ["base"])
    assert table.columns.tolist() == stats.PAIRED_COLUMNS
    assert table["env"].tolist() == ["e0", "e1", stats.ALL_ENVS]
    assert table["n"].tolist() == [12, 12, 24]
    assert table["wins"].tolist() == table["n"].tolist() and not table[["losses", "ties"]].to_numpy().any()
    assert table["mean_diff"].to_numpy() == pytest.approx(1.5)
    assert (table["ci_low"] > 0).all() and table["ci_high"].to_numpy() == pytest.approx(1.5)
    assert (table["poi"] > 0.5).all() and (table["poi_ci_low"] <= table["poi"]).all()


def test_paired_ci_is_scipys_and_poi_is_the_reference_path() -> None:
    rng = np.random.RandomState(1)
    base = rng.normal(0, 3, size=(20, 2))
    episodes = _frame({"base": base, "cand": base + 0.5 + rng.normal(0, 1, size=(20, 2))})
    table = _paired(episodes, ["cand"], ["base"]).set_index("env")
    import scipy.stats

    ci = scipy.stats.ttest_rel(episodes[episodes.policy == "cand"]["return"],
                               episodes[episodes.policy == "base"]["return"]).confidence_interval(0.95)
    assert [table.loc["all", "ci_low"], table.loc["all", "ci_high"]] == pytest.approx([ci.low, ci.high])
    poi = stats.probability_of_improvement(episodes, "return", "base", reps=REPS, seed=3).set_index("env")
    assert table["poi"].to_dict() == pytest.approx(poi["poi"].to_dict())
    assert table["poi_ci_low"].to_dict() == pytest.approx(poi["ci_low"].to_dict())


def test_identical_policies_tie_on_every_seed() -> None:
    base = np.random.RandomState(2).normal(size=(10, 1))
    table = _paired(_frame({"base": base, "same": base.copy()}), ["same"], ["base"])
    assert table["env"].tolist() == ["e0", stats.ALL_ENVS]  # one env: the all row is that env's
    assert table["ties"].tolist() == [10, 10] and not table[["wins", "losses"]].to_numpy().any()
    assert table[["mean_diff", "ci_low", "ci_high"]].to_numpy() == pytest.approx(np.zeros((2, 3)))
    assert table["poi"].to_numpy() == pytest.approx([0.5, 0.5])


def test_every_candidate_meets_every_baseline() -> None:
    m = np.zeros((5, 2))
    table = _paired(_frame({"a": m, "b": m + 1, "x": m + 2, "y": m - 1}), ["x", "y"], ["a", "b"])
    overall = table[table["env"] == stats.ALL_ENVS]
    assert list(zip(overall["candidate"], overall["baseline"], strict=True)) == [("x", "a"), ("x", "b"), ("y", "a"),
                                                                                 ("y", "b")]
    assert overall["mean_diff"].tolist() == pytest.approx([2, 1, -1, -2])
    assert overall["losses"].tolist() == [0, 0, 10, 10]


def test_a_sweeps_runs_are_averaged_per_seed() -> None:
    base = _frame({"base": np.zeros((4, 1))})
    runs = pd.concat([_frame({"sweep": np.full((4, 1), v)}) for v in (1.0, 3.0)], ignore_index=True)
    table = _paired(pd.concat([base, runs], ignore_index=True), ["sweep"], ["base"])
    assert table["n"].tolist() == [4, 4] and table["mean_diff"].tolist() == pytest.approx([2.0, 2.0])


def test_mismatched_seeds_are_refused_by_name() -> None:
    m = np.zeros((6, 2))
    episodes = _frame({"base": m, "cand": m + 1})
    episodes.loc[(episodes["policy"] == "cand") & (episodes["seed"] == 5), "seed"] = 99
    with pytest.raises(ValueError, match=r"cannot pair 'cand' with 'base' on the same seeds: 'cand' has no episode "
                                         r"for 2 \(env, seed\) of 'base' \(e0 seed 5, e1 seed 5\)"):
        _paired(episodes, ["cand"], ["base"])
    with pytest.raises(ValueError, match="not among the evaluated"):
        _paired(episodes, ["cand"], ["nobody"])


def test_candidates_are_the_non_baselines_else_everyone_meets_the_reference(tmp_path: Path) -> None:
    def specs(*texts: str) -> list[PolicySpec]:
        return [PolicySpec(t, Path(t).name) for t in texts]

    run = str(tmp_path / "runs" / "ppo-1")
    assert cli.comparison_sides(specs("ses-standard", run, "aimd", "card/policy.json"), "ses-standard") == (
        ["ppo-1", "policy.json"], ["ses-standard", "aimd"])
    assert cli.comparison_sides(specs("aimd", "ses-standard", "random"), "ses-standard") == (
        ["aimd", "random"], ["ses-standard"])
    assert cli.comparison_sides(specs("aimd", "random"), "ses-standard") == ([], [])
    assert cli.comparison_sides(specs(run), "ses-standard") == (["ppo-1"], [])


def test_evaluate_writes_paired_csv_and_the_summary_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res"
    env = "ipwarmup/NewIP-v1:horizon=5"
    cli.main(["--policy", "ses-standard", "aimd", "--env", env, "-n", "3", "--reps", "50", "--no-plots",
              "--workers", "1", "--out", str(out)])
    paired = pd.read_csv(out / "paired.csv")
    assert paired.columns.tolist() == stats.PAIRED_COLUMNS
    assert paired[["candidate", "baseline", "env"]].values.tolist() == [["aimd", "ses-standard", env],
                                                                       ["aimd", "ses-standard", stats.ALL_ENVS]]
    assert paired["n"].tolist() == [3, 3] and (paired["wins"] + paired["losses"] + paired["ties"] == 3).all()
    episodes = pd.read_csv(out / "episodes.csv")
    assert set(episodes["seed"]) == {BENCHMARK_SEED_BASE + i for i in range(3)}
    text = (out / "summary.md").read_text()
    assert "## Paired comparisons" in text and "### aimd" in text and "| ses-standard |" in text.split("### aimd")[1]
    printed = capsys.readouterr().out
    assert printed.startswith("aimd vs ses-standard: return ") and ", wins " in printed and ", PoI " in printed
    # the same folder again, baselines only and no reference: no pairs, so the earlier paired.csv goes
    cli.main(["--policy", "aimd", "random", "--env", env, "-n", "2", "--reps", "20", "--no-plots", "--workers", "1",
              "--quiet", "--out", str(out)])
    assert not (out / "paired.csv").exists()
    assert "Paired comparisons not computed: only baselines were evaluated" in (out / "summary.md").read_text()
    assert capsys.readouterr().out == ""
