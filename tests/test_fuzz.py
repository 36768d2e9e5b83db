"""benchmarks/fuzz_env.py: a short fuzz run finds no violation, and its checks do catch broken steps."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest

import envs

ROOT = Path(__file__).resolve().parent.parent


def _fuzz() -> Any:
    spec = importlib.util.spec_from_file_location("fuzz_env", ROOT / "benchmarks" / "fuzz_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_env"] = module
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz()
P = len(envs.PROVIDERS)


def test_a_short_fuzz_run_checks_every_scenario_and_finds_no_violation() -> None:
    """The quick version of the 1,000,000-step run: every id, single and batched, horizons to 120 days."""
    report = fuzz.run(total_steps=6_000, seed=1, max_horizon=120, n_envs=32)
    assert report.violations == 0, report.summary()
    assert report.steps >= 6_000 and report.single_steps > 0 and report.vector_steps > 0
    assert set(report.per_id) == set(envs.ENV_IDS)
    assert report.replays >= len(envs.ENV_IDS)
    assert len(report.past_horizon) == len(envs.ENV_IDS)


def test_long_horizons_and_extreme_actions_keep_the_invariants() -> None:
    """One 1,000-day episode per action kind on the first id: days 13 to 1,000 with bang-bang and +-3.4e38."""
    report = fuzz.Report()
    for i, strategy in enumerate(fuzz.STRATEGIES):
        actions = fuzz.action_source(strategy, np.random.default_rng(i), (P,), 1000)
        fuzz.play(envs.ENV_IDS[0], {"horizon": 1000}, i, actions, report)
    assert report.violations == 0, report.summary()
    assert report.single_steps >= 1000  # at least one episode lasted to the horizon or SES paused it


def _good_info() -> dict[str, np.ndarray]:
    info = {k: np.zeros(P, np.int64) for k in fuzz.CONTRACT_COUNTS}
    info.update(sent=np.full(P, 10), delivered=np.full(P, 6), deferred=np.full(P, 2), bounced=np.ones(P, np.int64),
                blocked=np.ones(P, np.int64), inbox=np.full(P, 5), complaints=np.ones(P, np.int64),
                junk=np.ones(P, np.int64), reputation=np.full(P, 0.5))
    return info


@pytest.mark.parametrize(("change", "kind"), [
    ({"sent": np.full(P, 11)}, "sent != delivered"),
    ({"inbox": np.full(P, 7), "junk": np.full(P, -1)}, "negative count"),
    ({"complaints": np.full(P, 6)}, "complaints > inbox"),
    ({"delivered": np.full(P, 6.0)}, "not int"),
    ({"reputation": np.full(P, 1.5)}, "reputation outside"),
])
def test_the_checker_catches_a_broken_step(change: dict[str, np.ndarray], kind: str) -> None:
    space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    report = fuzz.Report()
    fuzz.check_single(report, "good", space, np.zeros(3, np.float32), 0.0, False, False, _good_info(), P)
    assert report.violations == 0, report.summary()
    fuzz.check_single(report, "bad", space, np.zeros(3, np.float32), 0.0, False, False, {**_good_info(), **change}, P)
    assert report.violations >= 1 and any(kind in e for e in report.examples), report.examples


@pytest.mark.parametrize(("obs", "reward", "kind"), [
    (np.array([0.0, np.nan, 0.0], np.float32), 0.0, "not finite"),
    (np.array([0.0, 2.0, 0.0], np.float32), 0.0, "outside the space"),
    (np.zeros(3, np.float64), 0.0, "not float32"),
    (np.zeros(3, np.float32), float("inf"), "reward"),
])
def test_the_checker_catches_a_bad_observation_or_reward(obs: np.ndarray, reward: float, kind: str) -> None:
    space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    report = fuzz.Report()
    fuzz.check_single(report, "bad", space, obs, reward, False, False, _good_info(), P)
    assert any(kind in e for e in report.examples), report.examples


@pytest.mark.parametrize("profile", sorted(envs.HELDOUT_PROFILES))
def test_a_profile_keeps_an_explicitly_given_horizon(profile: str) -> None:
    """Found by benchmarks/fuzz_env.py: a profile that named a horizon silently replaced an explicit horizon=."""
    randomized = next(i for i in envs.ENV_IDS if "Randomized" in i)
    horizon = 65
    report = fuzz.Report()
    fuzz.play(randomized, {"profile": profile, "horizon": horizon}, 0,
              fuzz.action_source("constant", np.random.default_rng(0), (P,), horizon), report)
    assert report.violations == 0, report.summary()
