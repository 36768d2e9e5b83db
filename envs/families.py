"""Per-episode parameters: what the sender cannot know exactly, drawn at reset for every scenario.

Even a fixed scenario draws its providers' cold acceptance, pace and placement, its list's tier rates and
its overflow route's placement from a prior around the scenario's values (nobody knows Gmail's exact pace
for their IP); Randomized draws from the training family; a held-out profile fixes some dimensions outside
that family. Everything is drawn here, from the env's ``np_random``, into :class:`EpisodeParams` arrays (one
row per env), so the dynamics never branch on the scenario kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from core.providers import PROVIDERS, TIERS
from envs.profiles import (
    HELDOUT_PROFILES,
    TRAIN_B2B_EPISODES,
    TRAIN_B2B_MIX,
    TRAIN_COLD_CAPACITY,
    TRAIN_DEMAND,
    TRAIN_LIST_QUALITY,
    TRAIN_MAX_MICROSOFT_SHARE,
    TRAIN_MIX_CONCENTRATION,
    TRAIN_WARMUP_DAYS,
)
from envs.scenario import Scenario

P, K = len(PROVIDERS), len(TIERS)
OVERFLOW_ROUTES = np.array(["shared_pool", "warm_pool", "none"])
"""The routes ``overflow='mixed'`` draws from, one per episode."""
MICROSOFT = PROVIDERS.index("microsoft")


@dataclass
class EpisodeParams:
    """The numbers that differ between episodes, one row per env."""

    demand: np.ndarray  # [n, P] int64, fresh emails per day per provider
    tier_share: np.ndarray  # [n, K] audience composition
    reputation_rate: np.ndarray  # [n, P] logistic growth rate of reputation at full activity, per day
    initial_reputation: np.ndarray  # [n, P]
    cold_capacity: np.ndarray  # [n, P] emails/day a cold IP gets accepted
    inbox_rate: np.ndarray  # [n, P] inbox placement of a reputable IP
    pool_inbox_rate: np.ndarray  # [n, P] inbox placement of the overflow route
    pool_headroom: np.ndarray  # [n, P] emails/day the overflow route takes (inf: shared pool, 0: none)
    tier_complaint_rate: np.ndarray  # [n, K]
    tier_unknown_user_rate: np.ndarray  # [n, K]
    tier_open_rate: np.ndarray  # [n, K]
    tier_trap_rate: np.ndarray  # [n, K]
    machine_open_share: np.ndarray  # [n] Apple MPP machine opens per inboxed Apple email

    @staticmethod
    def empty(n: int) -> EpisodeParams:
        return EpisodeParams(
            demand=np.zeros((n, P), np.int64),
            tier_share=np.zeros((n, K)),
            reputation_rate=np.zeros((n, P)),
            initial_reputation=np.zeros((n, P)),
            cold_capacity=np.ones((n, P)),
            inbox_rate=np.zeros((n, P)),
            pool_inbox_rate=np.zeros((n, P)),
            pool_headroom=np.zeros((n, P)),
            tier_complaint_rate=np.zeros((n, K)),
            tier_unknown_user_rate=np.zeros((n, K)),
            tier_open_rate=np.zeros((n, K)),
            tier_trap_rate=np.zeros((n, K)),
            machine_open_share=np.zeros(n),
        )

    def rows(self, index: np.ndarray) -> EpisodeParams:
        """A copy holding only the rows ``index`` (the oracle plans on copies)."""
        return EpisodeParams(**{f.name: getattr(self, f.name)[index].copy() for f in fields(self)})


def logit(x: float) -> float:
    return math.log(x / (1.0 - x))


def reputation_rate(scenario: Scenario, warmup_days: np.ndarray) -> np.ndarray:
    """Logistic growth rate that takes reputation from cold to high in ``warmup_days`` at full activity."""
    gap = logit(scenario.high_reputation) - logit(scenario.cold_reputation)
    return gap / np.asarray(warmup_days, dtype=np.float64)


def resolved_scenario(scenario: Scenario) -> Scenario:
    """The scenario whose scalar fields govern an episode (a held-out profile's, if one is set)."""
    if scenario.profile is None:
        return scenario
    return scenario.replace(profile=None, randomize=False, **HELDOUT_PROFILES[scenario.profile])


def median_cold_capacity(scenario: Scenario) -> np.ndarray:
    """The prior's median cold acceptance per provider [P]: the scenario's values, or the middle of the training
    family's log-uniform range for a randomized scenario (which ignores the scenario's values)."""
    s = resolved_scenario(scenario)
    if s.randomize:
        return np.full(P, math.sqrt(TRAIN_COLD_CAPACITY[0] * TRAIN_COLD_CAPACITY[1]))
    return np.asarray(s.cold_capacity, np.float64)


LOW_COLD_SIGMAS = 2.0
"""How far below the median (in log-sigmas) :func:`low_cold_capacity` sits: 2.3% of episodes draw less."""


def low_cold_capacity(scenario: Scenario) -> np.ndarray:
    """The low end of the prior's cold acceptance per provider [P]: the training family's lower bound for a
    randomized scenario, else ``LOW_COLD_SIGMAS`` log-sigmas below the scenario's values. What a sender can assume
    a cold provider takes before it has seen any answer (the jump guard's day-1 reference)."""
    s = resolved_scenario(scenario)
    if s.randomize:
        return np.full(P, float(TRAIN_COLD_CAPACITY[0]))
    low = np.asarray(s.cold_capacity, np.float64) * math.exp(-LOW_COLD_SIGMAS * s.cold_capacity_spread)
    return np.clip(low, 1.0, s.warm_capacity)


def _around(rng: np.random.Generator, centre: np.ndarray, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    """Log-normal draws with median ``centre`` (the scenario's value) and log-sigma ``sigma``."""
    return np.asarray(centre, np.float64) * np.exp(sigma * rng.standard_normal(shape))


def draw_episode_params(scenario: Scenario, rng: np.random.Generator, out: EpisodeParams, mask: np.ndarray) -> None:
    """Fill the rows of ``out`` selected by ``mask`` with a fresh episode's parameters."""
    idx = np.flatnonzero(mask)
    m = idx.size
    if m == 0:
        return
    s = resolved_scenario(scenario)
    if s.randomize:
        draws = _draw_family(s, rng, m)
        if s.anchor_share > 0:
            anchored = rng.random(m) < s.anchor_share
            draws = _choose(anchored, _draw_anchored(s, rng, m), draws)
    else:
        draws = _draw_around(s, rng, m)
    warmup_days, cold, demand, mix, tier = draws
    lo, hi = s.initial_reputation
    out.initial_reputation[idx] = rng.uniform(lo, hi, size=(m, P)) if hi > lo else lo
    out.demand[idx] = np.rint(demand[:, None] * mix).astype(np.int64)
    out.tier_share[idx] = tier
    out.reputation_rate[idx] = reputation_rate(s, warmup_days)
    out.cold_capacity[idx] = np.clip(cold, 1.0, s.warm_capacity)
    inbox = np.asarray(s.inbox_rate) + s.inbox_rate_spread * rng.standard_normal((m, P))
    out.inbox_rate[idx] = np.clip(inbox, 0.05, 1.0)
    out.pool_inbox_rate[idx] = out.inbox_rate[idx] * rng.uniform(*s.pool_quality, size=(m, 1))
    routes = OVERFLOW_ROUTES[rng.integers(len(OVERFLOW_ROUTES), size=m)] if s.overflow == "mixed" \
        else np.full(m, s.overflow)
    out.pool_headroom[idx] = np.where(routes[:, None] == "shared_pool", np.inf,
                                      np.where(routes[:, None] == "warm_pool", s.pool_headroom * out.demand[idx], 0.0))
    for name in ("tier_complaint_rate", "tier_unknown_user_rate", "tier_open_rate", "tier_trap_rate"):
        getattr(out, name)[idx] = np.clip(_around(rng, np.asarray(getattr(s, name)), s.tier_rate_spread, (m, K)),
                                          0.0, 1.0)
    out.machine_open_share[idx] = rng.uniform(*s.machine_open_share, size=m)


Draws = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Provider pace [m, P], cold acceptance [m, P], demand [m], provider mix [m, P] and tier shares [m, K]."""


def _draw_family(s: Scenario, rng: np.random.Generator, m: int) -> Draws:
    """The training family's draws: uniform over its published ranges, independent of the scenario's values."""
    warmup_days = rng.uniform(*TRAIN_WARMUP_DAYS, size=(m, P))
    low, high = TRAIN_COLD_CAPACITY
    cold = np.exp(rng.uniform(math.log(low), math.log(high), size=(m, P)))
    quality = rng.uniform(*TRAIN_LIST_QUALITY, size=m)
    demand = np.exp(rng.uniform(np.log(TRAIN_DEMAND[0]), np.log(TRAIN_DEMAND[1]), size=m))
    mix = _draw_mix(s, rng, m)
    tier = np.stack([np.asarray(s.tier_share(q)) for q in quality])
    return warmup_days, cold, demand, mix, tier


def _draw_around(s: Scenario, rng: np.random.Generator, m: int, list_quality: float | None = None) -> Draws:
    """The scenario's own prior: pace and cold acceptance around its values, its demand, mix and list (or a list of
    ``list_quality``)."""
    warmup_days = _around(rng, np.asarray(s.warmup_days), s.warmup_days_spread, (m, P))
    cold = _around(rng, np.asarray(s.cold_capacity), s.cold_capacity_spread, (m, P))
    demand = np.full(m, s.demand)
    mix = np.broadcast_to(np.asarray(s.provider_share), (m, P))
    tier = np.broadcast_to(np.asarray(s.tier_share(list_quality)), (m, K))
    return warmup_days, cold, demand, mix, tier


def _draw_anchored(s: Scenario, rng: np.random.Generator, m: int) -> Draws:
    """The scenario's own prior clipped to the training family's ranges, so that anchoring never trains on a
    held-out region (NewIP-v1's prior puts Apple's pace past 42 days in about 4 episodes of 10)."""
    quality = float(np.clip(s.list_quality, *TRAIN_LIST_QUALITY))
    warmup_days, cold, demand, mix, tier = _draw_around(s, rng, m, quality)
    return (np.clip(warmup_days, *TRAIN_WARMUP_DAYS), np.clip(cold, *TRAIN_COLD_CAPACITY),
            np.clip(demand, *TRAIN_DEMAND), mix, tier)


def _choose(rows: np.ndarray, if_true: Draws, if_false: Draws) -> Draws:
    """Per episode, ``if_true``'s draws where ``rows`` is set, else ``if_false``'s."""
    w, c, d, x, t = (np.where(rows.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
                     for a, b in zip(if_true, if_false, strict=True))
    return w, c, d, x, t


def _draw_mix(scenario: Scenario, rng: np.random.Generator, m: int) -> np.ndarray:
    """Provider mixes around the consumer default or, in a share of episodes, a business audience, rejecting the
    held-out Microsoft-heavy region."""
    business = rng.random(m) < TRAIN_B2B_EPISODES
    centre = np.where(business[:, None], np.asarray(TRAIN_B2B_MIX), np.asarray(scenario.provider_share))
    alpha = TRAIN_MIX_CONCENTRATION * centre + 1e-3
    mix = np.stack([rng.dirichlet(a) for a in alpha]) if m else np.zeros((0, P))
    bad = mix[:, MICROSOFT] > TRAIN_MAX_MICROSOFT_SHARE
    while bad.any():
        mix[bad] = np.stack([rng.dirichlet(a) for a in alpha[bad]])
        bad = mix[:, MICROSOFT] > TRAIN_MAX_MICROSOFT_SHARE
    return mix
