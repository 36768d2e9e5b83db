"""Result files: episodes.csv, summary.csv/.md, poi.csv, paired.csv, traces.csv, manifest.json, and the output folder.

Everything is written into a hidden staging folder beside ``--out`` and published only when complete
(:func:`core.util.output_folder`), so an interrupted or failed run never leaves a folder that looks like a
result. ``--out`` must be new, empty, or an earlier evaluate.py output: its ``.ipwarmup-output.json`` marker
lists the files evaluate.py wrote there, and only those are replaced or removed.
"""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.util import OutputError, check_output_folder, config_hash, output_folder
from evaluation.runner import EpisodeResult
from evaluation.specs import EvaluationError
from evaluation.stats import ALL_ENVS

MANIFEST = "manifest.json"
TOOL = "evaluate.py"
RESULT_FILES = ("episodes.csv", "summary.csv", "summary.md", "poi.csv", "paired.csv", "traces.csv", MANIFEST)
"""The fixed names evaluate.py writes (plus plots/*.png); checked against foreign files before any work."""
PACKAGES = ("numpy", "gymnasium", "stable-baselines3", "torch", "rliable", "arch", "scipy", "pandas", "matplotlib")

# Columns of the Markdown tables, in reading order; the full set is in summary.csv.
HEADLINE_KPIS = ("inboxed_share_all", "inboxed_share", "days_to_full", "worst_complaint_rate", "worst_bounce_rate",
                 "deferral_share", "blocks", "spike_days", "paused", "return")
PERCENT_KPIS = frozenset({"inboxed_share_all", "inboxed_share", "complaint_rate", "worst_complaint_rate",
                          "bounce_rate", "worst_bounce_rate", "deferral_share", "paused"})


def check_output_dir(out: Path) -> None:
    """Refuse, before any work, an ``--out`` evaluate.py may not write (see :func:`core.util.check_output_folder`)."""
    try:
        check_output_folder(out, TOOL, RESULT_FILES)
    except OutputError as exc:
        raise EvaluationError(str(exc)) from None


@contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """Yield a staging folder; on success its files are published into ``out``, on any failure it is deleted."""
    check_output_dir(out)
    try:
        with output_folder(out, TOOL) as staging:
            yield staging
    except OutputError as exc:
        raise EvaluationError(str(exc)) from None


def episodes_frame(results: Sequence[EpisodeResult]) -> pd.DataFrame:
    """One row per episode: policy, env, seed, then the KPIs in the order ``evaluation.kpis`` returns them."""
    rows = [{"policy": r.policy, "env": r.env, "seed": r.seed, **r.kpis} for r in results]
    return pd.DataFrame(rows)


def traces_frame(results: Sequence[EpisodeResult]) -> pd.DataFrame:
    """Long per-day, per-provider table of the traced episodes (what the plots draw), for users' own plots."""
    frames = []
    for r in results:
        if r.trace is None:
            continue
        t = r.trace
        days, n_p = t.arrays["sent"].shape
        data: dict[str, Any] = {
            "policy": r.policy, "env": r.env, "seed": r.seed,
            "day": np.repeat(np.arange(1, days + 1), n_p),
            "provider": np.tile(np.array(t.providers), days),
        }
        for key, value in t.arrays.items():
            data[key] = value.reshape(-1)
        data["ses_bounce_rate"] = np.repeat(t.ses_bounce_rate, n_p)
        data["ses_complaint_rate"] = np.repeat(t.ses_complaint_rate, n_p)
        frames.append(pd.DataFrame(data))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Fixed float format so identical numbers give byte-identical files."""
    frame.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def _fmt(kpi: str, value: float, never: float = np.inf) -> str:
    if not np.isfinite(value):
        return "n/a"
    if kpi == "days_to_full" and value >= never:
        return "never"
    if kpi in PERCENT_KPIS:
        return f"{100 * value:.3g}%" if abs(value) < 0.01 else f"{100 * value:.1f}%"
    if kpi == "blocks":
        return f"{value:,.0f}"
    if kpi == "days_to_full":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(kpi: str, row: Any, never: float) -> str:
    """``IQM [low, high]`` of one summary row (a pandas Series with iqm, ci_low, ci_high)."""
    return f"{_fmt(kpi, row['iqm'], never)} [{_fmt(kpi, row['ci_low'], never)}, {_fmt(kpi, row['ci_high'], never)}]"


def _table(summary: pd.DataFrame, poi: pd.DataFrame | None, env: str, policies: Sequence[str], kpis: Sequence[str],
           reference: str | None, never: float) -> list[str]:
    header = ["policy", *kpis] + ([f"P(better than {reference})"] if poi is not None else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sub = summary[summary["env"] == env].set_index(["policy", "kpi"])
    for policy in policies:
        cells = [policy]
        for kpi in kpis:
            cells.append(_cell(kpi, sub.loc[(policy, kpi)], never) if (policy, kpi) in sub.index else "")
        if poi is not None:
            hit = poi[(poi["env"] == env) & (poi["policy"] == policy)]
            cells.append(f"{hit.iloc[0]['poi']:.2f} [{hit.iloc[0]['ci_low']:.2f}, {hit.iloc[0]['ci_high']:.2f}]"
                         if len(hit) else "reference")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _diff_cell(metric: str, row: Any) -> str:
    """``+1.23 [0.80, 1.66]``: a paired mean difference (signed) and its CI, in the metric's own format."""
    sign = "+" if row["mean_diff"] > 0 else ""
    return f"{sign}{_fmt(metric, row['mean_diff'])} [{_fmt(metric, row['ci_low'])}, {_fmt(metric, row['ci_high'])}]"


def _wins_cell(row: Any) -> str:
    ties = f" ({row['ties']} ties)" if row["ties"] else ""
    return f"{row['wins']}/{row['n']}{ties}"


def _poi_cell(row: Any) -> str:
    return f"{row['poi']:.2f} [{row['poi_ci_low']:.2f}, {row['poi_ci_high']:.2f}]"


def paired_lines(paired: pd.DataFrame) -> list[str]:
    """One stdout line per candidate and baseline, over all envs: mean difference [CI], wins/N, PoI [CI]."""
    return [f"{r['candidate']} vs {r['baseline']}: {r['metric']} {_diff_cell(r['metric'], r)}, wins {_wins_cell(r)}, "
            f"PoI {_poi_cell(r)}" for _, r in paired[paired["env"] == ALL_ENVS].iterrows()]


def _paired_section(paired: pd.DataFrame | None, note: str | None) -> list[str]:
    """Per candidate, one table: its baselines over all envs, then per env (one env: that env's rows only)."""
    if paired is None:
        return ["## Paired comparisons", "", f"_{note}_", ""] if note else []
    metric = paired["metric"].iloc[0] if len(paired) else ""
    envs = [e for e in dict.fromkeys(paired["env"]) if e != ALL_ENVS]
    groups = envs if len(envs) == 1 else [ALL_ENVS, *envs]
    lines = ["## Paired comparisons", "",
             f"Each candidate against each baseline on the same seeds: mean difference in `{metric}` "
             "(candidate - baseline) [95% paired-t CI], seeds where the candidate scored higher out of the pairs, "
             f"and P(candidate better) [95% CI], rliable's probability of improvement over that baseline. "
             "Candidates are the policies that are not named baselines (training runs, sweeps, policy cards); "
             "without one, every policy is compared with the reference. All rows in `paired.csv`.", ""]
    for candidate, table in paired.groupby("candidate", sort=False):
        lines += [f"### {candidate}", "", "| env | baseline | mean difference [95% CI] | wins/N | "
                  "P(better) [95% CI] |", "|---|---|---|---|---|"]
        for env in groups:
            for i, (_, r) in enumerate(table[table["env"] == env].iterrows()):
                shown = ("all envs" if env == ALL_ENVS else env) if i == 0 else ""
                lines.append(f"| {shown} | {r['baseline']} | {_diff_cell(metric, r)} | {_wins_cell(r)} | "
                             f"{_poi_cell(r)} |")
        lines.append("")
    return lines


def summary_markdown(summary: pd.DataFrame, poi: pd.DataFrame | None, manifest: Mapping[str, Any],
                     poi_note: str | None = None, censor: Mapping[str, float] | None = None,
                     paired: pd.DataFrame | None = None, paired_note: str | None = None) -> str:
    """The tables a reader opens first: across envs, then one per env, headline KPIs as IQM [95% CI]; then the
    paired comparisons of each candidate with each baseline (:func:`evaluation.stats.paired_comparisons`)."""
    cfg = manifest["config"]
    policies = list(dict.fromkeys(summary["policy"]))
    envs = [e for e in dict.fromkeys(summary["env"]) if e != ALL_ENVS]
    kpis = [k for k in HEADLINE_KPIS if k in set(summary["kpi"])]
    reference = cfg.get("reference")
    lines = [
        "# ipwarmup benchmark results",
        "",
        f"Command: `{manifest['command']}`  ",
        f"Config hash: `{manifest['config_hash'][:16]}`; ipwarmup {manifest['ipwarmup_version']}; "
        f"{cfg['episodes']} episodes per policy and env (seeds {cfg['seeds'][0]}..{cfg['seeds'][-1]}).",
        "",
        "Each cell: interquartile mean (IQM) over episodes [95% stratified-bootstrap CI, "
        f"{cfg['bootstrap_reps']} resamples, rliable]. `paused` is the share of episodes SES paused (a mean). "
        f"P(better than {reference}) is rliable's probability of improvement on `{cfg['metric']}` "
        "(0.5 = no difference). `days_to_full` (defined in evaluation/kpis.py): an episode that "
        "never gets there counts as horizon + 1 days, shown as `never` when the statistic lands there. "
        "All KPIs for every env are in `summary.csv`; per-episode values in `episodes.csv`.",
        "",
    ]
    censor = dict(censor or {})
    if poi_note:
        lines += [f"_{poi_note}_", ""]
    if len(envs) > 1:
        lines += ["## All envs (each env a task)", ""]
        lines += _table(summary, poi, ALL_ENVS, policies, kpis, reference, max(censor.values(), default=np.inf))
        lines += [""]
    for env in envs:
        lines += [f"## {env}", ""]
        lines += _table(summary, poi, env, policies, kpis, reference, censor.get(env, np.inf)) + [""]
    lines += _paired_section(paired, paired_note)
    return "\n".join(lines)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def project_version() -> str:
    """The installed ipwarmup version, else the one in pyproject.toml (a source checkout)."""
    version = _version("ipwarmup")
    if version:
        return version
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def git_commit() -> str | None:
    """HEAD of the source checkout (with ``-dirty`` if it has changes), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def build_manifest(config: dict[str, Any], command: str, argv: Sequence[str],
                   elapsed: float | None = None) -> dict[str, Any]:
    """Everything needed to reproduce or cite a result folder."""
    return {
        "ipwarmup_version": project_version(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "command": command,
        "argv": list(argv),
        "config": config,
        "config_hash": config_hash(config),
        "seeds": config["seeds"],
        "elapsed_seconds": None if elapsed is None else round(elapsed, 2),
    }


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
