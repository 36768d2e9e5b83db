"""The compiled day's random draws: exact where they claim to be, close where they approximate, and the oracle's
expected-value mode free of noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

import envs
from envs.day_kernel import EXACT_BINOMIAL_BELOW, _binomial, _lognormal
from envs.dynamics import State, simulate_day
from envs.families import EpisodeParams, draw_episode_params


def _draws(n: int, p: float, size: int, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal(size)
    return np.array([_binomial(float(x), False, n, p) for x in z])


@pytest.mark.parametrize(("n", "p"), [(20, 0.3), (12, 0.8), (400, 0.005), (3, 0.5)])
def test_small_variance_draws_are_exact_binomials(n: int, p: float) -> None:
    """Inversion at Phi(z): the empirical PMF matches the binomial PMF (chi-square, far below its 0.1% point)."""
    assert n * p * (1 - p) < EXACT_BINOMIAL_BELOW
    size = 40_000
    counts = np.bincount(_draws(n, p, size), minlength=n + 1)
    expected = np.array([math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]) * size
    keep = expected >= 5  # pool the sparse tail, as a chi-square test must
    observed = np.append(counts[keep], counts[~keep].sum())
    wanted = np.append(expected[keep], expected[~keep].sum())
    chi2 = float((((observed - wanted) ** 2) / np.maximum(wanted, 1e-9)).sum())
    dof = len(observed) - 1
    assert chi2 < dof + 4 * math.sqrt(2 * dof) + 10, (chi2, dof)


def test_large_variance_draws_have_the_binomial_mean_and_spread() -> None:
    n, p = 50_000, 0.2
    x = _draws(n, p, 20_000)
    assert abs(x.mean() - n * p) < 0.1 * math.sqrt(n * p * (1 - p))
    assert x.std() == pytest.approx(math.sqrt(n * p * (1 - p)), rel=0.03)
    assert x.min() >= 0 and x.max() <= n


def test_draws_stay_in_range_at_the_edges() -> None:
    for n, p, z in [(10, 1.0, -5.0), (10, 0.0, 5.0), (0, 0.5, 1.0), (10, 0.999, -8.0), (10, 0.001, 8.0)]:
        assert 0 <= _binomial(z, False, n, p) <= n


def test_expected_mode_returns_rounded_means_and_no_noise() -> None:
    assert [_binomial(3.0, True, 10, 0.26), _binomial(-3.0, True, 3, 1.0)] == [3, 3]
    assert _lognormal(2.0, True, 0.5) == 1.0
    assert _lognormal(2.0, False, 0.5) == pytest.approx(math.exp(1.0))


def test_expected_value_day_is_deterministic() -> None:
    """The oracle's look-ahead (``rng=None``) gives the same day from the same state, every time."""
    scenario = envs.get_scenario("ipwarmup/Randomized-v1")
    n = 4
    params = EpisodeParams.empty(n)
    draw_episode_params(scenario, np.random.default_rng(3), params, np.ones(n, bool))
    state = State.zeros(n, scenario.retry_days)
    state.reset_rows(np.ones(n, bool), params)
    share = np.full((n, len(envs.PROVIDERS)), 0.05)
    a, b = state.copy(), state.copy()
    first, second = simulate_day(scenario, params, a, share, None), simulate_day(scenario, params, b, share, None)
    assert first.delivered.tolist() == second.delivered.tolist()
    assert np.array_equal(a.reputation, b.reputation)


def test_mixed_overflow_draws_every_route_per_episode() -> None:
    """``overflow='mixed'`` (a training family option): each episode gets a shared pool, a warm pool with finite
    headroom or no overflow route, and the fixed scenarios' draws are untouched by the option's existence."""
    from envs.simulator import Simulator

    sim = Simulator(envs.get_scenario("ipwarmup/Randomized-v1", overflow="mixed"), 60)
    sim.reset(np.random.default_rng(0))
    headroom = sim.params.pool_headroom[:, 0]
    assert np.isinf(headroom).any() and (headroom == 0).any() and (np.isfinite(headroom) & (headroom > 0)).any()
    fixed = Simulator(envs.get_scenario("ipwarmup/Randomized-v1"), 60)
    fixed.reset(np.random.default_rng(0))
    assert np.isinf(fixed.params.pool_headroom).all()
