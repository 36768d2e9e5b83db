"""Aggregate statistics, all through rliable (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice").

Interquartile mean with 95% stratified-bootstrap confidence intervals per (policy, env) and across envs
(each env a task, runs resampled within it), probability of improvement over a reference policy, and
performance profiles. Every bootstrap starts from ``seed``, so a policy's numbers depend
on its own episodes, the env set and the seed, never on which other policies are in the run.
Paired comparisons (:func:`paired_comparisons`) add, on top of rliable's PoI, the mean difference on
the same seeds with scipy's paired-t interval and the count of seeds won.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rliable import library as rly

ALL_ENVS = "all"
"""The ``env`` value of rows that aggregate over every env in the run (envs as rliable tasks)."""

BINARY_KPIS = frozenset({"paused"})
"""KPIs that are 0/1 per episode: their aggregate is the mean (the share of episodes), not the IQM."""

CONFIDENCE = 0.95


def _bootstrap(score_dict: dict, func, reps: int, seed: int) -> tuple[dict, dict]:
    """rliable's stratified bootstrap, reproducible.

    rliable 1.2's ``StratifiedBootstrap.update_indices`` draws from the global ``np.random`` and
    ignores ``random_state``, so the global generator is seeded here (and restored afterwards).
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return rly.get_interval_estimates(score_dict, func, reps=reps, confidence_interval_size=CONFIDENCE,
                                              random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(saved)


def _aggregate_func(kpis: Sequence[str], with_all: bool):
    """Scores [runs, tasks, K] -> IQM per (task, KPI) then, if ``with_all``, over all runs and tasks per KPI.

    IQM is rliable's ``aggregate_iqm`` (``scipy.stats.trim_mean`` at 25%), applied along an axis so one
    bootstrap replicate costs one call; binary KPIs use rliable's mean. Output is flattened for arch.
    """
    binary = np.array([k in BINARY_KPIS for k in kpis])

    def func(scores: np.ndarray) -> np.ndarray:
        runs, tasks, k = scores.shape
        per_task = np.where(binary, scores.mean(axis=0), scipy.stats.trim_mean(scores, 0.25, axis=0))
        if not with_all:
            return per_task.ravel()
        flat = scores.reshape(runs * tasks, k)
        overall = np.where(binary, flat.mean(axis=0), scipy.stats.trim_mean(flat, 0.25, axis=0))
        return np.concatenate([per_task.ravel(), overall])

    return func


def score_matrix(episodes: pd.DataFrame, policy: str, env_labels: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """Scores [runs, tasks, K] for one policy: rows by seed, one task per env, in the given order.

    A pooled sweep plays every seed once per trained run; those episodes share the simulated world, so they are
    not independent draws: its row for a seed is the mean over its runs, and the bootstraps resample seeds. (Over
    all 5 x 50 episodes as if independent, a sweep's CIs were about sqrt(5) too narrow.) Every env must hold the
    same number of seeds (the runner guarantees it: one seed list for all).
    """
    blocks = []
    for env in env_labels:
        sub = episodes[(episodes["policy"] == policy) & (episodes["env"] == env)]
        blocks.append(sub.groupby("seed")[list(columns)].mean().sort_index().to_numpy(dtype=float))
    sizes = {b.shape[0] for b in blocks}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"policy {policy!r} has unequal or missing episode counts across envs: {sorted(sizes)}")
    return np.stack(blocks, axis=1)


def _map(func, items: list, workers: int) -> list:
    """``map`` over policies, in spawned processes when ``workers > 1`` (bootstraps are CPU-bound)."""
    if workers <= 1 or len(items) <= 1:
        return [func(*item) for item in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(func, *zip(*items, strict=True)))


def _summarize_policy(policy: str, scores: np.ndarray, env_labels: list[str], kpis: list[str], reps: int,
                      seed: int, with_all: bool, episodes_per_env: int) -> list[dict]:
    point, interval = _bootstrap({policy: scores}, _aggregate_func(kpis, with_all), reps, seed)
    k = len(kpis)
    groups = env_labels + ([ALL_ENVS] if with_all else [])
    rows = []
    for g, env in enumerate(groups):
        n = episodes_per_env * (scores.shape[1] if env == ALL_ENVS else 1)  # a sweep's episodes, not its seeds
        for j, kpi in enumerate(kpis):
            i = g * k + j
            rows.append({"policy": policy, "env": env, "kpi": kpi, "statistic": "mean" if kpi in BINARY_KPIS else "iqm",
                         "episodes": n, "iqm": float(point[policy][i]), "ci_low": float(interval[policy][0, i]),
                         "ci_high": float(interval[policy][1, i])})
    return rows


def summarize(episodes: pd.DataFrame, kpis: Sequence[str], *, reps: int = 2000, seed: int = 0,
              workers: int = 1) -> pd.DataFrame:
    """Long table: policy, env, kpi, statistic, episodes, iqm, ci_low, ci_high (95% stratified bootstrap).

    ``statistic`` is ``iqm`` except for binary KPIs (``mean``: the share of episodes); the point value is
    in the ``iqm`` column either way so the contract's column names hold. With more than one env, rows
    with ``env == "all"`` treat each env as a task, as rliable aggregates across Atari games. One
    stratified bootstrap per policy (runs resampled within each env) yields every row of that policy;
    each policy's bootstrap starts from the same seed, so its numbers do not depend on the other policies.
    """
    env_labels = list(dict.fromkeys(episodes["env"]))
    with_all = len(env_labels) > 1
    per_env = episodes.groupby(["policy", "env"]).size()
    items = [(p, score_matrix(episodes, p, env_labels, kpis), env_labels, list(kpis), reps, seed, with_all,
              int(per_env[p].iloc[0])) for p in dict.fromkeys(episodes["policy"])]
    return pd.DataFrame([row for rows in _map(_summarize_policy, items, workers) for row in rows])


def poi_per_task(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """rliable's per-task probability of improvement, all tasks in one scipy call.

    ``metrics.probability_of_improvement`` calls ``scipy.stats.mannwhitneyu(..., alternative='greater')``
    once per task and divides U by ``n_x * n_y``; this makes the same call with ``axis=0``, which is
    the difference between minutes and seconds over 2,000 bootstrap replicates. Identical samples give
    0.5 either way (U = n^2 / 2). ``tests/test_stats.py`` pins it to rliable's function.
    """
    u = scipy.stats.mannwhitneyu(x, y, alternative="greater", axis=0).statistic
    return np.asarray(u, float) / (x.shape[0] * y.shape[0])


def _poi_func(with_all: bool):
    """(x, y) [runs, tasks] -> probability of improvement per task, then averaged over tasks (rliable's aggregate)."""

    def func(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        per = poi_per_task(x, y)
        return np.concatenate([per, [per.mean()]]) if with_all else per

    return func


def _poi_policy(policy: str, x: np.ndarray, y: np.ndarray, env_labels: list[str], reference: str, metric: str,
                reps: int, seed: int, with_all: bool) -> list[dict]:
    """One bootstrap of P(x > y) per env (plus their mean over envs when ``with_all``), rows of :data:`POI_COLUMNS`."""
    point, interval = _bootstrap({policy: [x, y]}, _poi_func(with_all), reps, seed)
    groups = env_labels + ([ALL_ENVS] if with_all else [])
    return [{"policy": policy, "reference": reference, "env": env, "metric": metric, "poi": float(point[policy][i]),
             "ci_low": float(interval[policy][0, i]), "ci_high": float(interval[policy][1, i])}
            for i, env in enumerate(groups)]


POI_COLUMNS = ["policy", "reference", "env", "metric", "poi", "ci_low", "ci_high"]


def _poi_pairs(episodes: pd.DataFrame, metric: str, pairs: Sequence[tuple[str, str]], *, with_all: bool, reps: int,
               seed: int, workers: int) -> pd.DataFrame:
    """PoI rows (:data:`POI_COLUMNS`) of each (policy, reference) pair: one bootstrap per pair, each from ``seed``."""
    env_labels = list(dict.fromkeys(episodes["env"]))
    policies = dict.fromkeys(p for pair in pairs for p in pair)
    scores = {p: score_matrix(episodes, p, env_labels, [metric])[..., 0] for p in policies}
    items = [(p, scores[p], scores[r], env_labels, r, metric, reps, seed, with_all) for p, r in pairs]
    return pd.DataFrame([row for rows in _map(_poi_policy, items, workers) for row in rows], columns=POI_COLUMNS)


def probability_of_improvement(episodes: pd.DataFrame, metric: str, reference: str, *, reps: int = 2000,
                               seed: int = 0, workers: int = 1) -> pd.DataFrame:
    """P(policy's ``metric`` > reference's on the same env), per env and averaged over envs, with 95% CIs.

    rliable's definition (Mann-Whitney U over runs, averaged over tasks, the mean over envs equal to
    ``metrics.probability_of_improvement`` on the full matrix); higher ``metric`` must be better. Both
    sides are resampled independently within each env (rliable's ``StratifiedIndependentBootstrap``).
    """
    if reference not in set(episodes["policy"]):
        raise ValueError(f"reference policy {reference!r} is not among the evaluated policies")
    pairs = [(p, reference) for p in dict.fromkeys(episodes["policy"]) if p != reference]
    return _poi_pairs(episodes, metric, pairs, with_all=episodes["env"].nunique() > 1, reps=reps, seed=seed,
                      workers=workers)


PAIRED_COLUMNS = ["candidate", "baseline", "env", "metric", "n", "mean_diff", "ci_low", "ci_high", "wins", "losses",
                  "ties", "poi", "poi_ci_low", "poi_ci_high"]


def paired_scores(episodes: pd.DataFrame, metric: str, candidate: str, baseline: str) -> pd.DataFrame:
    """``metric`` of both policies side by side, one row per (env, seed): columns env, seed, candidate, baseline.

    A pooled sweep (several runs on each seed) enters as its mean over runs on that seed, so a row is one
    seed, the independent unit. Raises ValueError when the two policies were not run on the same seeds.
    """
    c, b = (episodes[episodes["policy"] == p].groupby(["env", "seed"], sort=False)[metric].mean()
            for p in (candidate, baseline))
    for name, mine, other, theirs in ((candidate, c, baseline, b), (baseline, b, candidate, c)):
        missing = theirs.index.difference(mine.index)
        if len(missing):
            shown = ", ".join(f"{env} seed {s}" for env, s in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise ValueError(f"cannot pair {candidate!r} with {baseline!r} on the same seeds: {name!r} has no episode "
                             f"for {len(missing)} (env, seed) of {other!r} ({shown})")
    both = pd.concat({"candidate": c, "baseline": b}, axis=1, join="inner")
    return both.reset_index()


def paired_stats(c: np.ndarray, b: np.ndarray) -> dict:
    """n, mean of c - b with scipy's paired-t 95% CI ([d, d] when every difference is d), wins/losses/ties."""
    d = c - b
    mean = float(d.mean())
    if len(d) < 2:
        low = high = float("nan")  # one pair: no interval
    elif np.ptp(d) <= 1e-9 * np.abs(d).max():  # every difference d, up to rounding
        low = high = mean  # scipy would return NaN (zero standard error) or warn of catastrophic cancellation
    else:
        ci = scipy.stats.ttest_rel(c, b).confidence_interval(CONFIDENCE)
        low, high = float(ci.low), float(ci.high)
    return {"n": len(d), "mean_diff": mean, "ci_low": low, "ci_high": high, "wins": int((d > 0).sum()),
            "losses": int((d < 0).sum()), "ties": int((d == 0).sum())}


def paired_comparisons(episodes: pd.DataFrame, metric: str, candidates: Sequence[str], baselines: Sequence[str], *,
                       reps: int = 2000, seed: int = 0, workers: int = 1) -> pd.DataFrame:
    """Each candidate against each baseline on the same seeds (:data:`PAIRED_COLUMNS`), per env and over all envs.

    Episodes of two policies on one env with one seed face the same simulated world, so they are paired by
    (env, seed): ``mean_diff`` is the mean of candidate - baseline with its 95% paired-t CI, wins/losses/ties
    count seeds where the candidate's ``metric`` is higher/lower/equal (higher is better). The ``all`` row pools
    every pair (each env weighs by its pair count, equal here). ``poi`` is rliable's probability of improvement
    of the candidate over that baseline with its 95% CI, as in :func:`probability_of_improvement` (its ``all``
    row is the mean over envs, also with one env).
    """
    unknown = [p for p in dict.fromkeys([*candidates, *baselines]) if p not in set(episodes["policy"])]
    if unknown:
        raise ValueError(f"policies not among the evaluated ones: {', '.join(map(repr, unknown))}")
    pairs = [(c, b) for c in candidates for b in baselines if c != b]
    rows = []
    for c, b in pairs:
        scores = paired_scores(episodes, metric, c, b)
        groups = [*scores.groupby("env", sort=False), (ALL_ENVS, scores)]
        rows += [{"candidate": c, "baseline": b, "env": env, "metric": metric,
                  **paired_stats(g["candidate"].to_numpy(float), g["baseline"].to_numpy(float))} for env, g in groups]
    poi = _poi_pairs(episodes, metric, pairs, with_all=True, reps=reps, seed=seed, workers=workers)
    poi = poi.rename(columns={"policy": "candidate", "reference": "baseline", "ci_low": "poi_ci_low",
                              "ci_high": "poi_ci_high"})
    table = pd.DataFrame(rows, columns=PAIRED_COLUMNS[:11])
    return table.merge(poi.drop(columns="metric"), on=["candidate", "baseline", "env"], how="left")[PAIRED_COLUMNS]


def performance_profiles(episodes: pd.DataFrame, metric: str, taus: np.ndarray, *, reps: int = 2000,
                         seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable score distributions: the fraction of (episode, env) runs with ``metric > tau``, with 95% CIs."""
    env_labels = list(dict.fromkeys(episodes["env"]))
    score_dict = {p: score_matrix(episodes, p, env_labels, [metric])[..., 0] for p in dict.fromkeys(episodes["policy"])}
    taus = np.asarray(taus, float)

    def profile(scores: np.ndarray) -> np.ndarray:
        return rly.score_distributions(scores, taus)  # what create_performance_profile uses, but seedable here

    return _bootstrap(score_dict, profile, reps, seed)
