"""Named benchmark suites: which envs, which policies and which seeds ``--suite NAME`` means.

Seeds: training uses seeds below 1,000,000 (``train.py`` enforces it) and its periodic evaluation,
which picks the saved ``best_model``, uses 1,000,000 + i. The benchmark starts at 2,000,000, so a
reported number comes from episodes that neither training nor checkpoint selection has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.util import BENCHMARK_SEED_BASE
from envs.profiles import HELDOUT_PROFILES

REFERENCE_POLICY = "ses-standard"
"""What probability of improvement is measured against: DESIGN.md's 'standard gradual schedule'."""

SCENARIO_IDS: tuple[str, ...] = (
    "ipwarmup/NewIP-v1",
    "ipwarmup/AddIP-v1",
    "ipwarmup/SelfHosted-v1",
    "ipwarmup/Rewarm-v1",
    "ipwarmup/Randomized-v1",
)
HELDOUT_ENV_SPECS: tuple[str, ...] = tuple(
    f"ipwarmup/Randomized-v1:profile={name}" for name in sorted(HELDOUT_PROFILES)
)


@dataclass(frozen=True)
class Suite:
    name: str
    envs: tuple[str, ...]
    policies: tuple[str, ...]
    episodes: int
    seed: int = BENCHMARK_SEED_BASE


def baseline_names() -> tuple[str, ...]:
    """Every baseline agents/ registers (schedules, heuristics, random) plus the oracle, in registry order."""
    import agents

    names = getattr(agents, "BASELINES", None)
    if names is None:
        raise RuntimeError("agents exports no BASELINES registry; cannot build the standard suite")
    names = tuple(names)
    return names if "oracle" in names else (*names, "oracle")


def get_suite(name: str) -> Suite:
    """The suite called ``name``; only ``standard`` exists."""
    if name != "standard":
        from evaluation.specs import EvaluationError

        raise EvaluationError(f"unknown suite {name!r} (known: standard)")
    return Suite("standard", SCENARIO_IDS + HELDOUT_ENV_SPECS, baseline_names(), episodes=50)
