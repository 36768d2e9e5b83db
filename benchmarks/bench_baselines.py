"""Every baseline and the oracle on every scenario: mean and 95% CI of each episode KPI.

Run ``python benchmarks/bench_baselines.py`` (``--episodes 50`` seeds per (policy, scenario), from
``core.util.BENCHMARK_SEED_BASE``) and it prints the markdown tables that ``docs/baselines.md`` holds, then
per scenario the headline (best schedule or heuristic, ses-standard, no-warmup, oracle) and the paired checks
of issue 10 (no-warmup against ses-standard on the same seeds). ``--csv PATH`` keeps every episode's KPIs
(atomic write); ``--from-csv PATH`` prints the same tables from them without playing. Same seeds, same numbers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from agents.registry import BASELINES, PRIVILEGED  # noqa: E402
from core.providers import PROVIDERS  # noqa: E402
from core.util import BENCHMARK_SEED_BASE, atomic_write_text, seed_range  # noqa: E402
from envs import ENV_IDS  # noqa: E402
from evaluation.episodes import run_episodes  # noqa: E402
from evaluation.kpis import KPI_NAMES, mean_ci  # noqa: E402

COLUMNS = (*KPI_NAMES, "final_reputation")
"""The KPIs, and the hidden final reputation averaged over providers (analysis only: a sender never sees it)."""
DIGITS = {"inboxed_share": 4, "inboxed_share_all": 4, "days_to_full": 1, "blocks": 0, "paused": 2, "return": 1,
          "final_reputation": 3}
PERCENT = {"complaint_rate", "worst_complaint_rate", "bounce_rate", "worst_bounce_rate", "deferral_share"}
ADAPTIVE = ("ses-managed", "aimd", "braze-automated")
"""The adaptive heuristics, compared with ses-standard per seed in the headline."""
NOT_BASELINES = (*PRIVILEGED, "random", "no-warmup")
"""Left out when naming the best schedule or heuristic."""


def cell(name: str, values: list[float]) -> str:
    """'mean ± half-width'; rates in percent; days_to_full over the episodes that got there, with that share."""
    mean, lo, hi = mean_ci(values)
    if math.isnan(mean):
        return "never"
    scale, digits = (100.0, 3) if name in PERCENT else (1.0, DIGITS.get(name, 3 if abs(mean) < 10 else 1))
    text = f"{mean * scale:.{digits}f} ± {(hi - lo) / 2 * scale:.{digits}f}"
    if name == "days_to_full":
        reached = sum(math.isfinite(v) for v in values) / len(values)
        text += f" ({reached:.0%})"
    return text


def play(policy: str, env_id: str, seeds: list[int], overrides: dict[str, Any]) -> tuple[list[dict[str, float]], float]:
    """KPI rows of one (policy, env), with final_reputation, and the seconds it took."""
    started = time.perf_counter()
    rows = run_episodes(policy, env_id, seeds, overrides)
    for row in rows:
        row["final_reputation"] = float(np.mean([row[f"final_reputation_{p}"] for p in PROVIDERS]))
    return rows, time.perf_counter() - started


def play_all(tasks: list[tuple[str, str]], seeds: list[int], overrides: dict[str, Any],
             workers: int) -> Iterator[tuple[list[dict[str, float]], float]]:
    """:func:`play` of every (policy, env) in order, in this process or in ``workers`` processes."""
    if workers <= 1:
        yield from (play(p, e, seeds, overrides) for p, e in tasks)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(play, *zip(*[(p, e, seeds, overrides) for p, e in tasks], strict=True))


def table(env_id: str, policies: list[str], kpis: dict[str, list[dict[str, float]]]) -> list[str]:
    lines = [f"\n### {env_id}\n", "| policy | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in policies:
        lines.append(f"| {name} | " + " | ".join(cell(k, [e[k] for e in kpis[name]]) for k in COLUMNS) + " |")
    return lines


def paired(a: list[dict[str, float]], b: list[dict[str, float]], kpi: str) -> str:
    """Mean of the per-seed difference a - b with its 95% CI."""
    mean, lo, hi = mean_ci([x[kpi] - y[kpi] for x, y in zip(a, b, strict=True)])
    return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def headline(env_id: str, kpis: dict[str, list[dict[str, float]]]) -> list[str]:
    """Best schedule or heuristic (by mean inboxed_share_all), ses-standard, no-warmup, oracle; paired checks."""
    def mean(name: str, k: str) -> float:
        return float(np.mean([e[k] for e in kpis[name]]))

    lines = [f"\n{env_id}: headline (inboxed_share_all, return, final_reputation, blocks):"]
    candidates = [p for p in kpis if p not in NOT_BASELINES]
    shown: dict[str, str] = {}
    if candidates:
        shown[max(candidates, key=lambda p: mean(p, "inboxed_share_all"))] = " (best schedule/heuristic)"
        shown.setdefault(max(candidates, key=lambda p: mean(p, "return")), " (best schedule/heuristic on return)")
    for p in ("ses-standard", "no-warmup", "oracle", "oracle-reward"):
        if p in kpis:
            shown.setdefault(p, "")
    for p, tag in shown.items():
        lines.append(f"- {p}{tag}: " + ", ".join(cell(k, [e[k] for e in kpis[p]])
                                                 for k in ("inboxed_share_all", "return", "final_reputation",
                                                           "blocks")))
    if "ses-standard" in kpis:
        s = kpis["ses-standard"]
        for p in ("no-warmup", *ADAPTIVE, "oracle"):
            if p in kpis:
                lines.append(f"- {p} - ses-standard, paired per seed [95% CI]: " + "; ".join(
                    f"{k} {paired(kpis[p], s, k)}" for k in ("inboxed_share_all", "return", "final_reputation")))
        full = [e["days_to_full"] for e in s]
        lines.append(f"- ses-standard: blocks in {sum(e['blocks'] > 0 for e in s)} of {len(s)} episodes "
                     f"(max {max(e['blocks'] for e in s):.0f}); full volume by day 45 in "
                     f"{sum(math.isfinite(d) and d <= 45 for d in full)} of {len(s)}")
    return lines


def to_csv(kpis: dict[tuple[str, str], list[dict[str, float]]], seeds: list[int]) -> str:
    out = io.StringIO()
    keys = list(next(iter(kpis.values()))[0])
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["env", "policy", "seed", *keys])
    for (env_id, policy), rows in kpis.items():
        for seed, row in zip(seeds, rows, strict=True):
            writer.writerow([env_id, policy, seed, *(row[k] for k in keys)])
    return out.getvalue()


def from_csv(path: Path) -> tuple[dict[tuple[str, str], list[dict[str, float]]], list[int]]:
    """The KPI rows of an earlier --csv per (env, policy), and the seeds of the first of them."""
    kpis: dict[tuple[str, str], list[dict[str, float]]] = {}
    seeds: dict[tuple[str, str], list[int]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            key = (row.pop("env"), row.pop("policy"))
            seeds.setdefault(key, []).append(int(row.pop("seed")))
            kpis.setdefault(key, []).append({k: float(v) for k, v in row.items()})
    return kpis, next(iter(seeds.values()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50, help="seeds per (policy, scenario)")
    parser.add_argument("--seed", type=int, default=BENCHMARK_SEED_BASE, help="first seed")
    parser.add_argument("--env", nargs="+", default=list(ENV_IDS), help="env ids")
    parser.add_argument("--policy", nargs="+", default=list(BASELINES), help="baseline names")
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE", dest="overrides",
                        help="scenario overrides for every env, VALUE as JSON (e.g. demand=1000000)")
    parser.add_argument("--workers", type=int, default=1, choices=(1, 2), help="processes over (policy, env)")
    parser.add_argument("--csv", type=Path, help="write every episode's KPIs here (atomic)")
    parser.add_argument("--from-csv", type=Path, help="print the tables of an earlier --csv; play nothing")
    args = parser.parse_args(argv)
    seeds = seed_range(args.seed, args.episodes)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.overrides)}
    started = time.perf_counter()
    seconds: dict[tuple[str, str], float] = {}
    if args.from_csv:
        kpis, seeds = from_csv(args.from_csv)
        env_ids = list(dict.fromkeys(e for e, _ in kpis))
        policies = list(dict.fromkeys(p for _, p in kpis))
    else:
        env_ids, policies = args.env, args.policy
        tasks = [(p, e) for e in env_ids for p in policies]
        kpis = {}
        for (p, e), (rows, took) in zip(tasks, play_all(tasks, seeds, overrides, args.workers), strict=True):
            kpis[(e, p)], seconds[(e, p)] = rows, took
            print(f"{e} {p}: {took:.1f} s", file=sys.stderr, flush=True)
        if args.csv:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.csv, to_csv(kpis, seeds))
    print(f"{len(seeds)} episodes per (policy, scenario), seeds {seeds[0]}..{seeds[-1]}; mean ± 95% CI half-width "
          "(normal approximation); rates in %; days_to_full over the episodes that reached full volume (share); "
          "final_reputation: hidden, mean over providers."
          + (f" Overrides: {json.dumps(overrides)}." if overrides else ""))
    for env_id in env_ids:
        by_policy = {p: kpis[(env_id, p)] for p in policies if (env_id, p) in kpis}
        print("\n".join(table(env_id, list(by_policy), by_policy)))
        if seconds:
            print(f"\n({sum(t for (e, _), t in seconds.items() if e == env_id):.0f} s of episodes)")
    for env_id in env_ids:
        print("\n".join(headline(env_id, {p: kpis[(env_id, p)] for p in policies if (env_id, p) in kpis})))
    if seconds:
        print(f"\n(wall time {time.perf_counter() - started:.0f} s, {args.workers} worker(s))")


if __name__ == "__main__":
    main()
