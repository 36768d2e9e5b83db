"""The per-env tables of docs/benchmark.md, from an ``evaluate.py`` result folder.

``summary.md`` in the folder has one table per env; this prints the transposed views the benchmark page shows
(one row per policy, one column per env) for a KPI's IQM, the probability of improvement over the reference, and
the best baseline per env beside the trained policies, so the page is regenerated, not retyped::

    python benchmarks/benchmark_tables.py results/standard > results/standard/tables.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import BASELINES, PRIVILEGED  # noqa: E402
from evaluation.report import PERCENT_KPIS  # noqa: E402
from evaluation.stats import ALL_ENVS  # noqa: E402

CEILINGS = PRIVILEGED
"""Privileged policies: never counted as the best baseline a trained policy must beat."""


def short(env: str) -> str:
    """``ipwarmup/Randomized-v1:profile=poor-list`` -> ``held-out poor-list``; ``ipwarmup/NewIP-v1`` -> ``NewIP-v1``."""
    name = env.removeprefix("ipwarmup/")
    return f"held-out {name.split('profile=')[1]}" if "profile=" in name else name


def fmt(kpi: str, value: float) -> str:
    return f"{100 * value:.1f}%" if kpi in PERCENT_KPIS else f"{value:.1f}"


def kpi_table(summary: pd.DataFrame, kpi: str) -> str:
    """IQM of ``kpi`` per policy (rows) and env (columns, ``all`` last)."""
    rows = summary[summary["kpi"] == kpi]
    envs = [e for e in dict.fromkeys(rows["env"]) if e != ALL_ENVS] + [ALL_ENVS]
    table = rows.pivot(index="policy", columns="env", values="iqm").reindex(list(dict.fromkeys(rows["policy"])))
    lines = ["| policy | " + " | ".join(short(e) for e in envs) + " |", "|---" * (len(envs) + 1) + "|"]
    for policy, values in table.iterrows():
        lines.append(f"| {policy} | " + " | ".join(fmt(kpi, values[e]) for e in envs) + " |")
    return "\n".join(lines)


def poi_table(poi: pd.DataFrame) -> str:
    envs = [e for e in dict.fromkeys(poi["env"]) if e != ALL_ENVS] + [ALL_ENVS]
    table = poi.pivot(index="policy", columns="env", values="poi").reindex(list(dict.fromkeys(poi["policy"])))
    lines = ["| policy | " + " | ".join(short(e) for e in envs) + " |", "|---" * (len(envs) + 1) + "|"]
    for policy, values in table.iterrows():
        lines.append(f"| {policy} | " + " | ".join(f"{values[e]:.2f}" for e in envs) + " |")
    return "\n".join(lines)


def versus_best(summary: pd.DataFrame, kpi: str) -> str:
    """Per env: each trained policy's IQM [CI] beside the best non-privileged baseline's and the ceilings'
    (``oracle-reward``, and ``oracle-nojump``, the ceiling for a policy that never jumps)."""
    rows = summary[(summary["kpi"] == kpi) & (summary["env"] != ALL_ENVS)]
    trained = [p for p in dict.fromkeys(rows["policy"]) if p not in BASELINES]
    ceilings = [p for p in ("oracle-reward", "oracle-nojump") if p in set(rows["policy"])]
    lines = ["| env | " + " | ".join([*trained, "best baseline", *ceilings]) + " |",
             "|---" * (len(trained) + 2 + len(ceilings)) + "|"]

    def cell(row: pd.Series) -> str:
        return f"{fmt(kpi, row['iqm'])} [{fmt(kpi, row['ci_low'])}, {fmt(kpi, row['ci_high'])}]"

    for env, group in rows.groupby("env", sort=False):
        by_policy = group.set_index("policy")
        baselines = by_policy[[p in BASELINES and p not in CEILINGS for p in by_policy.index]]
        best = baselines["iqm"].idxmax()
        lines.append(f"| {short(str(env))} | " + " | ".join(cell(by_policy.loc[p]) for p in trained)
                     + f" | {best} {cell(by_policy.loc[best])} | "
                     + " | ".join(cell(by_policy.loc[p]) if p in by_policy.index else "" for p in ceilings) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="an evaluate.py output folder")
    parser.add_argument("--kpi", nargs="+", default=["inboxed_share_all", "return"])
    args = parser.parse_args(argv)
    if not (args.results / "summary.csv").is_file():
        parser.error(f"{args.results} is not an evaluate.py result folder (no summary.csv)")
    summary = pd.read_csv(args.results / "summary.csv")
    for kpi in args.kpi:
        print(f"### {kpi} per env (IQM)\n\n{kpi_table(summary, kpi)}\n")
    if (args.results / "poi.csv").exists():
        poi = pd.read_csv(args.results / "poi.csv")
        print(f"### P(return > {poi['reference'].iloc[0]}) per env\n\n{poi_table(poi)}\n")
    if any(p not in BASELINES for p in summary["policy"]):
        for kpi in args.kpi:
            print(f"### Trained policies vs the best baseline, {kpi} (IQM [95% CI])\n\n{versus_best(summary, kpi)}\n")


if __name__ == "__main__":
    main()
