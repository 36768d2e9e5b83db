"""The end-of-training comparison: a trained run beside SES standard on unseen evaluation seeds."""

from __future__ import annotations

import json
from pathlib import Path

from agents.kpis import mean_ci, run_episodes
from agents.ppo import load_run_policy, read_config
from agents.training import EVAL_SEED_BASE, atomic_write_text

REPORTED = ("inboxed_share", "days_to_full", "complaint_rate", "bounce_rate", "deferral_share", "blocks", "paused",
            "return")
BASELINE = "ses-standard"


def compare_with_baseline(run_dir: Path, n_episodes: int = 100, baseline: str = BASELINE) -> str:
    """Evaluate the run's policy and ``baseline`` on the same ``n_episodes`` unseen seeds.

    Writes ``RUN_DIR/report.json`` (mean and 95% CI per KPI for both) and returns a printable table.
    """
    config = read_config(run_dir)
    seeds = [EVAL_SEED_BASE + i for i in range(n_episodes)]
    kwargs = config.get("env_kwargs") or None
    results = {
        "ppo": run_episodes(load_run_policy(run_dir), config["env_id"], seeds, env_kwargs=kwargs),
        baseline: run_episodes(baseline, config["env_id"], seeds, env_kwargs=kwargs),
    }
    summary = {name: {k: mean_ci([e[k] for e in eps]) for k in REPORTED} for name, eps in results.items()}
    atomic_write_text(run_dir / "report.json", json.dumps(
        {"env_id": config["env_id"], "seeds": [seeds[0], seeds[-1]], "mean_ci95": summary}, indent=2))
    lines = [f"{config['env_id']}: {n_episodes} evaluation episodes (seeds {seeds[0]}..{seeds[-1]}), mean [95% CI]",
             f"{'KPI':<16}{'PPO':>34}{baseline:>34}"]
    for k in REPORTED:
        cells = [f"{m:.4g} [{lo:.4g}, {hi:.4g}]" for m, lo, hi in (summary[name][k] for name in results)]
        lines.append(f"{k:<16}" + "".join(f"{c:>34}" for c in cells))
    return "\n".join(lines)
