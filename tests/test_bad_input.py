"""Bad input gets a clear error that names the problem; finite out-of-range actions are clipped."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest

import envs
from core.util import is_finite_number, is_whole_number, shorten
from envs.scenario import ScenarioError

P = len(envs.PROVIDERS)


@pytest.fixture
def env() -> gymnasium.Env:
    e = gymnasium.make("ipwarmup/NewIP-v1")
    e.reset(seed=0)
    return e


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (np.full(P, np.nan, np.float32), "finite"),
        (np.array([0, 0, 0, 0, np.inf], np.float32), "finite"),
        (np.array([0, -np.inf, 0, 0, 0], np.float32), "finite"),
        (np.zeros(P - 1, np.float32), r"shape \(4,\); expected \(5,\)"),
        (np.zeros((2, P), np.float32), r"shape \(2, 5\)"),
        (np.float32(0.5), r"shape \(\)"),
        ("all of it", "numeric"),
    ],
)
def test_bad_action_raises_naming_the_problem(env: gymnasium.Env, action: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_bad_action_in_vector_env() -> None:
    vec = gymnasium.make_vec("ipwarmup/NewIP-v1", num_envs=3, vectorization_mode="vector_entry_point")
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(3, 5\)"):
        vec.step(np.zeros((2, P), np.float32))
    bad = np.zeros((3, P), np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        vec.step(bad)


def test_rejected_action_leaves_the_episode_untouched(env: gymnasium.Env) -> None:
    """A NaN action raises before anything is simulated: the next good step is still day 1."""
    with pytest.raises(ValueError):
        env.step(np.full(P, np.nan, np.float32))
    _, _, _, _, info = env.step(np.zeros(P, np.float32))
    assert info["day"] == 1


def test_finite_out_of_range_actions_are_clipped() -> None:
    """Documented: values beyond [-1, 1] act as the nearest bound (0.01% or 100% of the mail)."""
    def episode(action: np.ndarray) -> list[np.ndarray]:
        e = gymnasium.make("ipwarmup/NewIP-v1", horizon=5)
        e.reset(seed=3)
        return [e.step(action)[0] for _ in range(5)]

    inside = np.array([1.0, -1.0, 1.0, -1.0, 0.25], np.float32)
    outside = np.array([7.0, -1e6, 1.0001, -3.0, 0.25], np.float32)
    for a, b in zip(episode(inside), episode(outside), strict=True):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(envs.action_to_share(np.array([5.0, -5.0])), [1.0, 1e-4])


def test_unknown_env_id_gets_gymnasiums_hint() -> None:
    with pytest.raises(gymnasium.error.NameNotFound, match="Did you mean: `NewIP`"):
        gymnasium.make("ipwarmup/NewIp-v1")
    with pytest.raises(gymnasium.error.VersionNotFound, match="v1"):
        gymnasium.make("ipwarmup/NewIP-v9")
    with pytest.raises(gymnasium.error.DeprecatedEnv, match="use `ipwarmup/NewIP-v1`"), \
            pytest.warns(DeprecationWarning, match="NewIP-v0 is out of date"):
        gymnasium.make("ipwarmup/NewIP-v0")  # the dynamics changed: results under v0 are not comparable


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("NewIp-v1", "did you mean 'ipwarmup/NewIP-v1'"),
        ("ipwarmup/Rewarn-v1", "did you mean 'ipwarmup/Rewarm-v1'"),
        ("Nothing", "known: NewIP-v1"),
    ],
)
def test_get_scenario_unknown_name_did_you_mean(name: str, match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        envs.get_scenario(name)


def test_get_scenario_accepts_prefix_and_returns_frozen_copies() -> None:
    s = envs.get_scenario("ipwarmup/SelfHosted-v1", demand=1234)
    assert s.overflow == "none" and s.demand == 1234.0
    assert envs.get_scenario("SelfHosted-v1").demand == 30_000.0  # the registered scenario is unchanged
    with pytest.raises(AttributeError):
        s.demand = 5.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"demand": -5}, "demand must be in"),
        ({"demand": float("nan")}, "demand must be finite"),
        ({"demand": "lots"}, "demand must be a number"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 2.5}, "horizon"),
        ({"list_quality": 1.5}, "list_quality"),
        ({"provider_share": (0.5, 0.5, 0.0, 0.0, 0.1)}, "provider_share must be non-negative and sum to 1"),
        ({"provider_share": (0.5, 0.5)}, "provider_share needs one value per provider"),
        ({"provider_share": "abc"}, "provider_share.*sequence of numbers"),
        ({"provider_share": (10**400,) * 5}, "provider_share.*sequence of numbers"),  # no float holds it
        ({"spike_penalty": 10**400}, "'spike_penalty' must be a finite number"),
        ({"horizon": 10**400}, r"horizon must be a whole number.*\(401 chars\)"),  # cut short, not 401 digits
        ({"tier_complaint_rate": (0.1,) * 3}, "tier_complaint_rate needs one value per tier"),
        ({"tier_unknown_user_rate": (0.1, 0.1, 0.1, 2.0)}, "tier_unknown_user_rate values must lie in"),
        ({"warmup_days": (14, 0, 14, 14, 14)}, "warmup_days must be positive"),
        ({"retry_window_hours": 0}, "retry_window_hours"),
        ({"overflow": "cloud"}, "overflow must be"),
        ({"audience_order": "alphabetical"}, "audience_order must be"),
        ({"enforcement": "gmail"}, "enforcement must be"),
        ({"randomize": "yes"}, "randomize.*true or false"),
        ({"anchor_share": 1.5}, "anchor_share must be in"),
        ({"randomize": True, "anchor_share": 0.5, "provider_share": (0.1, 0.6, 0.1, 0.1, 0.1)},
         "anchor_share draws around this scenario's provider_share"),
        ({"profile": "nope"}, "unknown profile 'nope'"),
        ({"initial_reputation": (0.6, 0.4)}, "initial_reputation"),
        ({"cold_reputation": 0.9}, "cold_reputation"),
        ({"spike_allowance": 1.0}, "spike_allowance"),
        ({"capacity_noise": -0.1}, "capacity_noise"),
        ({"name": 5}, "name must be a string"),
    ],
)
def test_invalid_scenario_parameter_raises_naming_it(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        gymnasium.make("ipwarmup/NewIP-v1", **overrides)
    with pytest.raises(ScenarioError, match=match):
        gymnasium.make_vec("ipwarmup/NewIP-v1", num_envs=2, vectorization_mode="vector_entry_point", **overrides)


@pytest.mark.parametrize(("key", "hint"), [("demnd", "demand"), ("retry_window", "retry_window_hours"), ("zzz", None)])
def test_unknown_scenario_parameter_named_with_hint(key: str, hint: str | None) -> None:
    match = f"unknown scenario parameter '{key}'" + (f"; did you mean '{hint}'" if hint else "")
    with pytest.raises(ScenarioError, match=match):
        gymnasium.make("ipwarmup/NewIP-v1", **{key: 1})


def test_scenario_error_is_a_value_error() -> None:
    """Callers that catch ValueError (as for gymnasium's own argument errors) also catch ours."""
    assert issubclass(ScenarioError, ValueError)


def test_bad_num_envs() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        envs.WarmupVectorEnv(0)


@pytest.mark.parametrize(("value", "finite", "whole"), [
    (3, True, True),
    (-1, True, False),  # below the default low of 0
    (2.5, True, False),
    (3.0, True, False),  # a float is not a whole number: a config's 3.0 epochs is a typo to name
    (True, False, False),  # YAML's and JSON's true is a Python int
    (float("nan"), False, False),
    (float("-inf"), False, False),
    (10**400, False, True),  # valid JSON and YAML; math.isfinite raises OverflowError on it
    ("3", False, False),
    (None, False, False),
])
def test_numbers_from_data_are_told_apart(value: Any, finite: bool, whole: bool) -> None:
    assert is_finite_number(value) is finite and is_whole_number(value) is whole


def test_whole_number_bounds_are_inclusive() -> None:
    assert is_whole_number(1, 1, 5) and is_whole_number(5, 1, 5) and is_whole_number(-3, -3)
    assert not is_whole_number(0, 1, 5) and not is_whole_number(6, 1, 5)


def test_a_value_too_long_to_print_is_named_not_raised() -> None:
    """repr() refuses an int past 4,300 digits (YAML 1.1 reads one from a short hex literal): messages must not."""
    assert shorten(10**5000) == "int too long to print"
    assert shorten([1, 10**5000]) == "list too long to print"
    assert shorten(10**100).endswith("(101 chars)")


def test_a_scenario_is_named_by_a_string() -> None:
    with pytest.raises(ScenarioError, match="a scenario is named by a string"):
        envs.get_scenario(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"days": 0}, "--days must be a whole number of days >= 1, got 0"),
    ({"days": True}, "--days must be a whole number of days >= 1, got True"),
    ({"days": 1.5}, "--days must be a whole number of days >= 1, got 1.5"),
    ({"seed": 2**32}, r"--seed must be a whole number in \[0, 2\*\*32\), got 4294967296"),
])
def test_export_refuses_bad_days_and_seed_before_reading_the_run(tmp_path: Any, kwargs: dict[str, Any],
                                                                  message: str) -> None:
    from training.export import ExportError, export_run

    with pytest.raises(ExportError, match=message):
        export_run(tmp_path / "no-such-run", tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
