"""Aggregate statistics, all through rliable (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice").

Interquartile mean with 95% stratified-bootstrap confidence intervals per (policy, env) and across envs
(each env a task, runs resampled within it), probability of improvement over a reference policy, and
performance profiles. Every bootstrap starts from ``seed``, so a policy's numbers depend
on its own episodes, the env set and the seed, never on which other policies are in the run.
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

    Every env must hold the same number of episodes (the runner guarantees it: one seed list for all).
    """
    blocks = []
    for env in env_labels:
        sub = episodes[(episodes["policy"] == policy) & (episodes["env"] == env)].sort_values("seed")
        blocks.append(sub[list(columns)].to_numpy(dtype=float))
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
                      seed: int, with_all: bool) -> list[dict]:
    point, interval = _bootstrap({policy: scores}, _aggregate_func(kpis, with_all), reps, seed)
    k = len(kpis)
    groups = env_labels + ([ALL_ENVS] if with_all else [])
    rows = []
    for g, env in enumerate(groups):
        n = scores.shape[0] * (scores.shape[1] if env == ALL_ENVS else 1)
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
    items = [(p, score_matrix(episodes, p, env_labels, kpis), env_labels, list(kpis), reps, seed, with_all)
             for p in dict.fromkeys(episodes["policy"])]
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
    point, interval = _bootstrap({policy: [x, y]}, _poi_func(with_all), reps, seed)
    groups = env_labels + ([ALL_ENVS] if with_all else [])
    return [{"policy": policy, "reference": reference, "env": env, "metric": metric, "poi": float(point[policy][i]),
             "ci_low": float(interval[policy][0, i]), "ci_high": float(interval[policy][1, i])}
            for i, env in enumerate(groups)]


def probability_of_improvement(episodes: pd.DataFrame, metric: str, reference: str, *, reps: int = 2000,
                               seed: int = 0, workers: int = 1) -> pd.DataFrame:
    """P(policy's ``metric`` > reference's on the same env), per env and averaged over envs, with 95% CIs.

    rliable's definition (Mann-Whitney U over runs, averaged over tasks, the mean over envs equal to
    ``metrics.probability_of_improvement`` on the full matrix); higher ``metric`` must be better. Both
    sides are resampled independently within each env (rliable's ``StratifiedIndependentBootstrap``).
    """
    if reference not in set(episodes["policy"]):
        raise ValueError(f"reference policy {reference!r} is not among the evaluated policies")
    env_labels = list(dict.fromkeys(episodes["env"]))
    with_all = len(env_labels) > 1
    y = score_matrix(episodes, reference, env_labels, [metric])[..., 0]
    items = [(p, score_matrix(episodes, p, env_labels, [metric])[..., 0], y, env_labels, reference, metric, reps, seed,
              with_all) for p in dict.fromkeys(episodes["policy"]) if p != reference]
    rows = [row for rows in _map(_poi_policy, items, workers) for row in rows]
    return pd.DataFrame(rows, columns=["policy", "reference", "env", "metric", "poi", "ci_low", "ci_high"])


def performance_profiles(episodes: pd.DataFrame, metric: str, taus: np.ndarray, *, reps: int = 2000,
                         seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable score distributions: the fraction of (episode, env) runs with ``metric > tau``, with 95% CIs."""
    env_labels = list(dict.fromkeys(episodes["env"]))
    score_dict = {p: score_matrix(episodes, p, env_labels, [metric])[..., 0] for p in dict.fromkeys(episodes["policy"])}
    taus = np.asarray(taus, float)

    def profile(scores: np.ndarray) -> np.ndarray:
        return rly.score_distributions(scores, taus)  # what create_performance_profile uses, but seedable here

    return _bootstrap(score_dict, profile, reps, seed)
