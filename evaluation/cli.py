"""``evaluate.py`` / ``ipwarmup evaluate``: argument parsing, input checks, and the run from specs to result folder.

Every input is resolved and checked (envs built, policies loaded once) before any episode runs, so a
typo costs a second, not a benchmark; bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.util import (
    BENCHMARK_SEED_BASE,
    EPISODE_SEED_LIMIT,
    TRAINING_SEED_LIMIT,
    OneLineParser,
    did_you_mean,
    sha256_tree,
    shorten,
)
from evaluation import report, runner, stats
from evaluation.runner import KpiFunction, PolicyLoader
from evaluation.specs import EnvSpec, EvaluationError, PolicySpec, parse_env_spec, parse_policy_specs
from evaluation.suite import REFERENCE_POLICY, get_suite

PROFILE_METRIC = "inboxed_share"
"""Performance profiles and the interval plot use the inboxed share: already on [0, 1] in every env."""


MAX_EPISODES = 1_000_000
"""Episodes per policy and env at most: days of simulation, not a typo's billions of seeds held in memory."""
PROFILE_REPS = 500
"""Bootstrap resamples for the profile bands (a figure, 101 thresholds per resample); tables use --reps."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="evaluate.py",
        description="Benchmark warm-up policies over scenarios and seeds; writes episodes.csv, summary.csv/.md, "
                    "poi.csv, paired.csv, traces.csv, plots/ and manifest.json into --out.",
        epilog="Env specs take scenario overrides after a colon: ipwarmup/NewIP-v1:horizon=10,demand=20000 or "
               "ipwarmup/Randomized-v1:profile=poor-list. See docs/benchmark.md.",
    )
    p.add_argument("--policy", nargs="+", default=[], metavar="SPEC",
                   help="baseline names (ses-standard, oracle, random, ...), training run folders or policy cards")
    p.add_argument("--env", nargs="+", default=[], metavar="ID", help="env specs: ID[:key=value,...]")
    p.add_argument("--episodes", "-n", type=_positive_int, default=None,
                   help="episodes per policy and env (default: the suite's, else 20)")
    p.add_argument("--seed", type=int, default=None,
                   help=f"first seed; episode i uses SEED + i (default {BENCHMARK_SEED_BASE:,}, unseen in training)")
    p.add_argument("--out", required=True, type=Path,
                   help="results folder: new, empty, or an earlier evaluate.py output (only its files are replaced)")
    p.add_argument("--suite", choices=["standard"], default=None,
                   help="add a named suite's envs and policies (standard: all scenarios, held-out profiles, "
                        "all baselines, the oracle)")
    p.add_argument("--workers", "-w", type=_positive_int, default=os.cpu_count() or 1,
                   help="processes running episodes (default: all cores); results do not depend on it")
    p.add_argument("--reference", default=REFERENCE_POLICY,
                   help=f"policy that probability of improvement is measured against (default {REFERENCE_POLICY})")
    p.add_argument("--metric", default="return",
                   help="higher-is-better KPI for probability of improvement and the paired comparisons")
    p.add_argument("--reps", type=_positive_int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--trace-episodes", type=int, default=3,
                   help="episodes per policy and env whose day-by-day trace is kept for plots and traces.csv")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary on stdout")
    return p


@dataclass
class Plan:
    """The resolved inputs of a run: what the config hash covers."""

    policies: list[PolicySpec]
    envs: list[EnvSpec]
    seeds: list[int]
    reference: str
    metric: str
    reps: int
    trace_episodes: int
    suite: str | None
    digests: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "policies": [{"label": p.label, "spec": p.spec, **({"sha256": self.digests[p.label]}
                                                                 if p.label in self.digests else {})}
                         for p in self.policies],
            "envs": [{"label": e.label, "id": e.env_id, "kwargs": e.kwargs} for e in self.envs],
            "episodes": len(self.seeds),
            "seeds": self.seeds,
            "reference": self.reference,
            "metric": self.metric,
            "bootstrap_reps": self.reps,
            "confidence": stats.CONFIDENCE,
            "trace_episodes": self.trace_episodes,
            "chunk_seeds": runner.CHUNK_SEEDS,
        }


def resolve(args: argparse.Namespace) -> Plan:
    """Suite plus flags -> a checked plan. Raises EvaluationError naming the first bad input."""
    policy_texts, env_texts, episodes, seed = list(args.policy), list(args.env), args.episodes, args.seed
    if args.suite:
        suite = get_suite(args.suite)
        policy_texts = [*suite.policies, *policy_texts]
        env_texts = [*suite.envs, *env_texts]
        episodes = suite.episodes if episodes is None else episodes
        seed = suite.seed if seed is None else seed
    if not policy_texts:
        raise EvaluationError("no policy given: pass --policy SPEC [SPEC ...] or --suite standard")
    if not env_texts:
        raise EvaluationError("no env given: pass --env ID [ID ...] or --suite standard")
    episodes = 20 if episodes is None else episodes
    seed = BENCHMARK_SEED_BASE if seed is None else seed
    if seed < 0:
        raise EvaluationError(f"--seed must be non-negative, got {shorten(seed)}")
    if seed >= EPISODE_SEED_LIMIT:
        raise EvaluationError(f"--seed must be below 2**32 (it seeds the bootstrap too), got {shorten(seed)}")
    if episodes > MAX_EPISODES:
        raise EvaluationError(f"--episodes (-n) must be at most {MAX_EPISODES:,} per policy and env, "
                              f"got {shorten(episodes)}")
    if args.trace_episodes < 0:
        raise EvaluationError(f"--trace-episodes must be non-negative, got {args.trace_episodes}")
    envs = list({e.label: e for e in (parse_env_spec(t) for t in env_texts)}.values())
    policies = parse_policy_specs(policy_texts)
    digests = {p.label: sha256_tree(Path(p.spec)) for p in policies if Path(p.spec).exists()}
    return Plan(policies, envs, [seed + i for i in range(episodes)], args.reference, args.metric, args.reps,
                args.trace_episodes, args.suite, digests)


def check_metric_and_reference(plan: Plan, kpi_fn: KpiFunction) -> None:
    """Refuse an unknown ``--metric`` or an explicit ``--reference`` that is not evaluated, before any episode.

    The KPI names come from ``kpi_fn`` itself, applied to one simulated day of the first env.
    """
    labels = [p.label for p in plan.policies]
    if plan.reference != REFERENCE_POLICY and plan.reference not in labels:
        raise EvaluationError(f"--reference {plan.reference!r} is not among the evaluated policies "
                              f"({', '.join(labels)}){did_you_mean(plan.reference, labels)}")
    env = plan.envs[0].make()
    try:
        env.reset(seed=plan.seeds[0])
        _, reward, _, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
        kpis = [k for k in kpi_fn([info], [float(reward)]) if k not in ("policy", "env", "seed")]
    finally:
        env.close()
    if plan.metric not in kpis:
        raise EvaluationError(f"--metric {plan.metric!r} is not a KPI{did_you_mean(plan.metric, kpis)} "
                              f"(known: {', '.join(kpis)})")


def check_policies(plan: Plan, loader: PolicyLoader) -> None:
    """Load every policy once against the first env, so a typo or a broken model file fails now."""
    env = plan.envs[0].make()
    try:
        for p in plan.policies:
            try:
                policy = loader(p.spec, env)
            except Exception as exc:  # noqa: BLE001  (any loader failure becomes one readable line)
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise EvaluationError(f"cannot load policy {p.spec!r}: {message}") from None
            if not callable(getattr(policy, "predict", None)):
                raise EvaluationError(f"policy {p.spec!r} has no predict method")
    finally:
        env.close()


def execute(plan: Plan, out: Path, *, workers: int = 1, plots: bool = True, progress: bool | None = None,
            command: str = "", argv: Sequence[str] = (), loader: PolicyLoader = runner.default_loader,
            kpi_fn: KpiFunction = runner.default_kpis) -> dict[str, Any]:
    """Run the plan and write the result folder atomically; returns the manifest.

    Every input is checked before the first episode: the output folder, the metric and reference, the policies.
    """
    report.check_output_dir(out)
    check_metric_and_reference(plan, kpi_fn)
    check_policies(plan, loader)
    start = time.perf_counter()
    results = runner.run(plan.policies, plan.envs, plan.seeds, workers=workers, trace_episodes=plan.trace_episodes,
                         loader=loader, kpi_fn=kpi_fn, progress=progress)
    episodes = report.episodes_frame(results)
    kpis = [c for c in episodes.columns if c not in ("policy", "env", "seed")]
    if plan.metric not in kpis:
        raise EvaluationError(f"--metric {plan.metric!r} is not a KPI (known: {', '.join(kpis)})")
    censor = {e.label: e.make().unwrapped.sim.horizon + 1 for e in plan.envs}  # type: ignore[attr-defined]
    scored = censor_never(episodes, censor)
    summary = stats.summarize(scored, kpis, reps=plan.reps, seed=plan.seeds[0], workers=workers)
    poi, poi_note = None, None
    if plan.reference in set(episodes["policy"]):
        poi = stats.probability_of_improvement(scored, plan.metric, plan.reference, reps=plan.reps,
                                               seed=plan.seeds[0], workers=workers)
    else:
        poi_note = f"Probability of improvement not computed: the reference {plan.reference!r} was not evaluated " \
                   f"(add it to --policy)."
    candidates, baselines = comparison_sides(plan.policies, plan.reference)
    paired, paired_note = None, None
    if any(c != b for c in candidates for b in baselines):
        paired = stats.paired_comparisons(scored, plan.metric, candidates, baselines, reps=plan.reps,
                                          seed=plan.seeds[0], workers=workers)
    elif len(plan.policies) > 1:
        paired_note = "Paired comparisons not computed: " + (
            "no baseline was evaluated beside the candidates." if candidates else
            f"only baselines were evaluated, and not the reference {plan.reference!r} (add it to --policy).")
    config = plan.config()
    config["kpis"] = kpis
    manifest = report.build_manifest(config, command, argv)
    with report.atomic_dir(out) as tmp:
        report.write_csv(episodes, tmp / "episodes.csv")
        report.write_csv(summary, tmp / "summary.csv")
        if poi is not None:
            report.write_csv(poi, tmp / "poi.csv")
        if paired is not None:
            report.write_csv(paired, tmp / "paired.csv")
        traces = report.traces_frame(results)
        if len(traces):
            report.write_csv(traces, tmp / "traces.csv")
        if plots:
            _plots(plan, results, scored, summary, poi, tmp / "plots")
        manifest["elapsed_seconds"] = round(time.perf_counter() - start, 2)
        (tmp / "summary.md").write_text(report.summary_markdown(summary, poi, manifest, poi_note, censor, paired,
                                                                paired_note))
        report.write_json(manifest, tmp / report.MANIFEST)
    return manifest


def comparison_sides(policies: Sequence[PolicySpec], reference: str) -> tuple[list[str], list[str]]:
    """Who faces whom in paired.csv: (candidates, baselines), as labels.

    A benchmark is run to see whether new policies (training runs, sweeps, policy cards: any spec that is not a
    name in ``agents.BASELINES``) beat each established baseline evaluated beside them, not only the reference;
    so every candidate meets every evaluated baseline. A run of baselines alone has no candidate, and all pairs
    of baselines would be n^2 mostly idle lines: then each policy meets the reference alone, as in poi.csv.
    """
    from agents import BASELINES

    candidates = [p.label for p in policies if p.spec not in BASELINES]
    if candidates:
        return candidates, [p.label for p in policies if p.spec in BASELINES]
    labels = [p.label for p in policies]
    return ([p for p in labels if p != reference], [reference]) if reference in labels else ([], [])


def censor_never(episodes: pd.DataFrame, censor: dict[str, int]) -> pd.DataFrame:
    """``days_to_full`` is NaN ('never') in evaluation.kpis; for statistics it counts as horizon + 1 (right-censored).

    The IQM then stays defined when a few episodes never reach full volume, and ranks 'never' last.
    """
    if "days_to_full" not in episodes.columns:
        return episodes
    out = episodes.copy()
    out["days_to_full"] = out["days_to_full"].fillna(out["env"].map(censor))
    return out


def _plots(plan: Plan, results: list[runner.EpisodeResult], episodes: Any, summary: Any, poi: Any,
           folder: Path) -> None:
    from evaluation import plots

    folder.mkdir()
    labels = [p.label for p in plan.policies]
    colors = plots.policy_colors(labels)
    for env in plan.envs:
        traces = {p: [r.trace for r in results if r.policy == p and r.env == env.label and r.trace is not None]
                  for p in labels}
        traces = {p: t for p, t in traces.items() if t}
        if not traces:
            continue
        scenario = env.make().unwrapped.scenario  # type: ignore[attr-defined]
        plots.plot_ramps(traces, env.label, folder / f"ramp_{env.slug}.png", colors)
        plots.plot_rates(traces, env.label, folder / f"rates_{env.slug}.png", colors)
        plots.plot_reputation(traces, env.label, folder / f"reputation_{env.slug}.png", colors,
                              scenario.high_reputation)
    if PROFILE_METRIC in episodes.columns:
        taus = np.linspace(0.0, 1.0, 101)
        profiles, cis = stats.performance_profiles(episodes, PROFILE_METRIC, taus, reps=min(plan.reps, PROFILE_REPS),
                                                   seed=plan.seeds[0])
        plots.plot_profiles(profiles, cis, taus, PROFILE_METRIC, folder / "profiles.png", colors)
    env_key = stats.ALL_ENVS if (summary["env"] == stats.ALL_ENVS).any() else plan.envs[0].label
    shown = [k for k in (PROFILE_METRIC, plan.metric) if k in set(summary["kpi"])]
    shown = list(dict.fromkeys(shown))
    points, intervals = {}, {}
    for p in labels:
        rows = summary[(summary["env"] == env_key) & (summary["policy"] == p)].set_index("kpi").loc[shown]
        pt, lo, hi = list(rows["iqm"]), list(rows["ci_low"]), list(rows["ci_high"])
        if poi is not None:
            hit = poi[(poi["env"] == env_key) & (poi["policy"] == p)]
            found = hit.iloc[0] if len(hit) else {"poi": 0.5, "ci_low": 0.5, "ci_high": 0.5}
            pt.append(found["poi"])
            lo.append(found["ci_low"])
            hi.append(found["ci_high"])
        points[p], intervals[p] = np.array(pt), np.array([lo, hi])
    names = [f"IQM {k}" for k in shown] + ([f"P({plan.metric} > {plan.reference})"] if poi is not None else [])
    plots.plot_intervals(points, intervals, names, folder / "intervals.png", colors)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python evaluate.py`` and ``ipwarmup evaluate``; exit 2 with one line on bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "evaluate.py", *argv])
    try:
        report.check_output_dir(args.out)  # first: a wrong --out costs nothing
        plan = resolve(args)
        if plan.seeds[0] < TRAINING_SEED_LIMIT:
            print(f"evaluate: warning: seeds from {plan.seeds[0]} overlap training seeds (< {TRAINING_SEED_LIMIT:,})",
                  file=sys.stderr)
        manifest = execute(plan, args.out, workers=args.workers, plots=not args.no_plots,
                           progress=False if args.quiet else None, command=command, argv=argv)
    except EvaluationError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("evaluate: interrupted; nothing written", file=sys.stderr)
        raise SystemExit(130) from None
    if not args.quiet:
        n = len(plan.seeds) * len(plan.policies) * len(plan.envs)
        if (args.out / "paired.csv").is_file():  # removed when this run wrote none
            print("\n".join(report.paired_lines(pd.read_csv(args.out / "paired.csv"))))
        print(f"wrote {args.out} ({n} episodes, {manifest['elapsed_seconds']:.1f} s, "
              f"config {manifest['config_hash'][:12]})")
