"""Roll out policies over env specs and seeds, in parallel, with results independent of the worker count.

Work is cut into fixed chunks of seeds per (policy, env) whose size never depends on ``workers``; each
chunk builds its own env and loads its own policy, so a policy with internal state or its own random
generator sees the same sequence of episodes whichever process runs the chunk. Results are sorted
back into (policy, env, seed) order before anything is written.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evaluation.episodes import play_episode
from evaluation.kpis import episode_kpis
from evaluation.specs import EnvSpec, EvaluationError, PolicySpec

CHUNK_SEEDS = 8
"""Seeds per unit of work. Fixed (not derived from ``workers``) so outputs do not depend on parallelism."""

TRACE_KEYS = ("sent", "delivered", "inbox", "deferred", "bounced", "blocked", "complaints", "expired",
              "demand_by_provider", "reputation")
"""Per-provider arrays kept per day for the plots (a subset of the step info)."""

PolicyLoader = Callable[[str, Any], Any]
KpiFunction = Callable[[list[dict[str, Any]], list[float]], dict[str, float]]


def default_loader(spec: str, env: Any) -> Any:
    """``agents.load_policy``; imported lazily so that the simulator-only path stays light.

    A sweep folder (checked once before the run) loads every one of its runs and returns the first.
    """
    from agents import load_policy
    from agents.sweep_folder import sweep_runs

    sweep = sweep_runs(Path(spec)) if Path(spec).is_dir() else None
    return load_policy(spec, env) if sweep is None else [load_policy(run, env) for run in sweep[1]][0]


def default_kpis(infos: list[dict[str, Any]], rewards: list[float]) -> dict[str, float]:
    """The project's KPI definitions (``evaluation.kpis``); the benchmark never recomputes them."""
    return episode_kpis(infos, rewards)


@dataclass
class Trace:
    """One episode day by day: per-provider arrays [days, P] plus the SES dashboard rates [days]."""

    providers: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    ses_bounce_rate: np.ndarray
    ses_complaint_rate: np.ndarray


@dataclass
class EpisodeResult:
    policy: str
    env: str
    seed: int
    kpis: dict[str, float]
    trace: Trace | None = None


@dataclass
class Job:
    """A chunk of seeds for one (policy, env): the unit sent to a worker."""

    policy: PolicySpec
    env: EnvSpec
    seeds: list[int]
    trace_seeds: frozenset[int] = field(default_factory=frozenset)
    member: int = 0
    """Which run of a pooled sweep policy (0 otherwise): results are ordered by it, then by seed."""


def rollout(policy: Any, env: Any, seed: int, kpi_fn: KpiFunction,
            keep_trace: bool) -> tuple[dict[str, float], Trace | None]:
    """Play one deterministic episode (:func:`evaluation.episodes.play_episode`); its KPIs and optionally its trace."""
    episode = play_episode(policy, env, seed)
    infos = episode.infos
    trace = None
    if keep_trace:
        trace = Trace(
            providers=tuple(infos[0]["providers"]),
            arrays={k: np.stack([np.asarray(i[k]) for i in infos]) for k in TRACE_KEYS},
            ses_bounce_rate=np.array([i["ses_bounce_rate"] for i in infos], float),
            ses_complaint_rate=np.array([i["ses_complaint_rate"] for i in infos], float),
        )
    return kpi_fn(infos, episode.rewards), trace


def run_job(job: Job, loader: PolicyLoader, kpi_fn: KpiFunction) -> list[EpisodeResult]:
    """Run one chunk; errors name the policy, env and seed so a user can reproduce them."""
    env = job.env.make()
    try:
        policy = loader(job.policy.spec, env)
        _single_thread_torch()
        out = []
        for seed in job.seeds:
            try:
                kpis, trace = rollout(policy, env, seed, kpi_fn, seed in job.trace_seeds)
            except Exception as exc:  # noqa: BLE001  (re-raised with the episode's coordinates)
                raise EvaluationError(
                    f"policy {job.policy.label!r} on {job.env.label!r} seed {seed} failed: {type(exc).__name__}: {exc}"
                ) from exc
            out.append(EpisodeResult(job.policy.label, job.env.label, seed, kpis, trace))
        return out
    finally:
        env.close()


def _single_thread_torch() -> None:
    """One torch thread per worker: no oversubscription, and the same float reductions at any worker count."""
    torch = sys.modules.get("torch")  # only if a policy loaded it: importing torch costs seconds per worker
    if torch is not None:
        torch.set_num_threads(1)


def make_jobs(policies: Sequence[PolicySpec], env_specs: Sequence[EnvSpec], seeds: Sequence[int],
              trace_episodes: int) -> list[Job]:
    """Cut the (policy, env, seed) grid into fixed-size chunks; the first ``trace_episodes`` seeds keep traces."""
    traced = frozenset(seeds[:trace_episodes])
    jobs = []
    for p in policies:
        members = [PolicySpec(run, p.label) for run in p.runs] or [p]  # a sweep: each run under the sweep's label
        for e in env_specs:
            for m, member in enumerate(members):
                for i in range(0, len(seeds), CHUNK_SEEDS):
                    jobs.append(Job(member, e, list(seeds[i:i + CHUNK_SEEDS]), traced, m))
    return jobs


def run(
    policies: Sequence[PolicySpec],
    env_specs: Sequence[EnvSpec],
    seeds: Sequence[int],
    *,
    workers: int = 1,
    trace_episodes: int = 3,
    loader: PolicyLoader = default_loader,
    kpi_fn: KpiFunction = default_kpis,
    progress: bool | None = None,
) -> list[EpisodeResult]:
    """Every policy on every env spec for every seed; results in (policy, env, seed) input order.

    ``workers > 1`` runs chunks in spawned processes (``loader`` and ``kpi_fn`` must then be importable
    module-level functions). ``progress=None`` shows a tqdm bar only on a terminal.
    """
    if not seeds:
        raise EvaluationError("no episodes to run: --episodes must be at least 1")
    jobs = make_jobs(policies, env_specs, seeds, trace_episodes)
    total = sum(len(j.seeds) for j in jobs)
    results: dict[tuple[int, int, int], list[EpisodeResult]] = {}
    order = {(p.label, e.label): (i, k) for i, p in enumerate(policies) for k, e in enumerate(env_specs)}
    with tqdm(total=total, unit="ep", desc="episodes", disable=None if progress is None else not progress,
              file=sys.stderr, dynamic_ncols=True) as bar:
        for job, chunk in _execute(jobs, workers, loader, kpi_fn):
            if chunk:
                key = (*order[(chunk[0].policy, chunk[0].env)], job.member)
                results.setdefault(key, []).extend(chunk)
            bar.update(len(chunk))
    out: list[EpisodeResult] = []
    for key in sorted(results):
        out.extend(sorted(results[key], key=lambda r: r.seed))
    return out


def _execute(jobs: list[Job], workers: int, loader: PolicyLoader,
             kpi_fn: KpiFunction) -> Iterator[tuple[Job, list[EpisodeResult]]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, run_job(job, loader, kpi_fn)
        return
    context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_job, job, loader, kpi_fn): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    chunk = future.result()
                except BrokenProcessPool as exc:
                    raise EvaluationError(f"a worker process died ({exc}); rerun with --workers 1 to see why") from None
                yield futures[future], chunk
        except BaseException:
            for f in futures:
                f.cancel()
            raise
