"""A batch of warm-up episodes: parameters, hidden state, reward, observations and info.

:class:`Simulator` is what the gymnasium env, the vector env and SB3's VecEnv adapter all step. It
owns no random generator: callers pass theirs, so each wrapper keeps gymnasium's seeding rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.actions import MIN_SHARE, action_to_share
from core.providers import FEEDBACK_LOOP, PROVIDERS
from envs.dynamics import COUNT_FIELDS, NOT_SHOWN, DayOutcome, State, ses_rates, simulate_day
from envs.families import EpisodeParams, draw_episode_params, resolved_scenario
from envs.observation import build_observation
from envs.scenario import Scenario

COUNT_KEYS = COUNT_FIELDS
"""Per-provider integer arrays in every step's info (DESIGN.md contract plus extras)."""


@dataclass
class StepResult:
    obs: np.ndarray  # [n, OBS_SIZE] float32
    reward: np.ndarray  # [n] float64
    terminated: np.ndarray  # [n] bool (SES paused the account)
    truncated: np.ndarray  # [n] bool (horizon reached)
    outcome: DayOutcome


def check_action(action: Any, n: int) -> np.ndarray:
    """A finite float array of shape [n, P]; anything else raises ValueError naming the problem."""
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"action must be numeric, one value in [-1, 1] per provider {PROVIDERS}; "
                         f"got {action!r}") from None
    expected = (n, len(PROVIDERS))
    if a.shape != expected:
        if n == 1 and a.shape == expected[1:]:
            a = a[None]
        else:
            raise ValueError(f"action has shape {a.shape}; expected {expected[1:] if n == 1 else expected} "
                             f"(one value in [-1, 1] per provider {PROVIDERS})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action must be finite; got {a.tolist()} (NaN or inf)")
    return a


class Simulator:
    """``n`` independent episodes of one scenario, stepped together."""

    def __init__(self, scenario: Scenario, n: int) -> None:
        self.scenario = scenario
        self.rules = resolved_scenario(scenario)  # the scalar rules (a held-out profile's, if set)
        self.n = n
        self.params = EpisodeParams.empty(n)
        self.state = State.zeros(n, self.rules.retry_days)
        self.share = np.full((n, len(PROVIDERS)), MIN_SHARE)

    @property
    def horizon(self) -> int:
        return self.rules.horizon

    def reset(self, rng: np.random.Generator, mask: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in ``mask`` (all by default); return the full observation batch."""
        mask = np.ones(self.n, bool) if mask is None else mask
        draw_episode_params(self.scenario, rng, self.params, mask)
        self.state.reset_rows(mask, self.params)
        self.share[mask] = MIN_SHARE
        return self.observe(self.empty_outcome())

    def step(self, action: np.ndarray, rng: np.random.Generator) -> StepResult:
        """One day for every episode; ``action`` is [n, P] in [-1, 1] (clipped)."""
        was_paused = self.state.paused.copy()
        self.share = action_to_share(check_action(action, self.n))
        outcome = simulate_day(self.rules, self.params, self.state, self.share, rng)
        truncated = (self.state.day >= self.horizon) & ~outcome.paused
        reward = self.reward(outcome, newly_paused=outcome.paused & ~was_paused, final=truncated)
        return StepResult(self.observe(outcome), reward, outcome.paused.copy(), truncated, outcome)

    def observe(self, outcome: DayOutcome) -> np.ndarray:
        next_available = self.params.demand + self.state.backlog.sum(-1)
        return build_observation(outcome, self.state, self.share, self.params.demand, next_available,
                                 self.params.tier_share)

    def reward(self, o: DayOutcome, newly_paused: np.ndarray, final: np.ndarray) -> np.ndarray:
        """Mail inboxed via any route, as a share of demand, less the costs of complaints and bounces (every route:
        SES counts them all), blocks, lost and delayed mail; a one-off penalty when SES pauses the account; and on
        the last day the value of an IP that is ready (:meth:`readiness`)."""
        r = self.rules
        value = (
            o.inbox
            + o.overflow_inbox
            - r.reward_complaint_cost * (o.complaints + o.overflow_complaints)
            - r.reward_bounce_cost * (o.bounced + o.overflow_bounced)
            - r.reward_block_cost * o.blocked
            - r.reward_lost_cost * o.expired
            - r.reward_deferral_cost * o.deferred
        ).sum(-1)
        demand = np.maximum(self.params.demand.sum(-1), 1)
        ready = np.where(final, r.reward_ready_value * self.readiness(o), 0.0)
        return value / demand - r.reward_pause_penalty * newly_paused + ready

    def readiness(self, outcome: DayOutcome) -> np.ndarray:
        """0..1 per episode: how ready the IP is to carry its whole stream, weighted by each provider's demand.

        A provider counts as far as the IP carried its mail on ``outcome``'s day (:func:`carried_share`: the share
        put on the IP, less what the provider deferred or blocked) times how far its reputation has come from cold
        to HIGH; an IP that carries everything at a HIGH reputation everywhere scores 1. Counting only accepted
        mail keeps a last-day jump the providers defer from buying readiness the IP does not have."""
        return (self._demand_weight() * carried_share(self.share, outcome) * self._progress()).sum(-1)

    def reputation_progress(self) -> np.ndarray:
        """0..1 per episode: :meth:`readiness` as if the IP carried everything (reputation alone)."""
        return (self._demand_weight() * self._progress()).sum(-1)

    def _progress(self) -> np.ndarray:
        return provider_progress(self.rules, self.state.reputation)

    def _demand_weight(self) -> np.ndarray:
        return self.params.demand / np.maximum(self.params.demand.sum(-1, keepdims=True), 1)

    def empty_outcome(self) -> DayOutcome:
        """A day on which nothing happened: what the observation and info show at reset."""
        z = np.zeros((self.n, len(PROVIDERS)), np.int64)
        hidden = np.full(self.n, NOT_SHOWN, np.int64)
        return DayOutcome(**{k: z for k in COUNT_KEYS}, available=self.params.demand.copy(),
                          postmaster_band=hidden, snds_colour=hidden.copy(), paused=self.state.paused.copy())

    def info_row(self, outcome: DayOutcome, i: int) -> dict[str, Any]:
        """The single-env info dict for episode ``i`` (plain Python scalars, int64 arrays)."""
        info: dict[str, Any] = {k: getattr(outcome, k)[i].copy() for k in COUNT_KEYS}
        bounce, complaint = ses_rates(self.state)
        info.update(
            providers=PROVIDERS,
            fbl=FEEDBACK_LOOP.copy(),
            demand=int(self.params.demand[i].sum()),
            demand_by_provider=self.params.demand[i].copy(),
            audience=self.params.tier_share[i].copy(),
            backlog=self.state.backlog[i].sum(-1),
            reputation=self.state.reputation[i].copy(),
            paused=bool(self.state.paused[i]),
            day=int(self.state.day[i]),
            ses_bounce_rate=float(bounce[i]),
            ses_complaint_rate=float(complaint[i]),
            postmaster_band=int(outcome.postmaster_band[i]),
            snds_colour=int(outcome.snds_colour[i]),
        )
        return info

    def info_batch(self, outcome: DayOutcome, mask: np.ndarray | None = None) -> dict[str, Any]:
        """The vector-env info dict: each key an array over envs plus its ``_key`` mask."""
        n = self.n
        present = np.ones(n, bool) if mask is None else mask
        bounce, complaint = ses_rates(self.state)
        providers = np.empty(n, dtype=object)
        for i in range(n):
            providers[i] = PROVIDERS
        info: dict[str, Any] = {k: getattr(outcome, k).copy() for k in COUNT_KEYS}
        info.update(
            providers=providers,
            fbl=np.broadcast_to(FEEDBACK_LOOP, (n, len(PROVIDERS))).copy(),
            demand=self.params.demand.sum(-1),
            demand_by_provider=self.params.demand.copy(),
            audience=self.params.tier_share.copy(),
            backlog=self.state.backlog.sum(-1),
            reputation=self.state.reputation.copy(),
            paused=self.state.paused.copy(),
            day=self.state.day.copy(),
            ses_bounce_rate=bounce.copy(),
            ses_complaint_rate=complaint.copy(),
            postmaster_band=outcome.postmaster_band.copy(),
            snds_colour=outcome.snds_colour.copy(),
        )
        for key in list(info):
            info[f"_{key}"] = present.copy()
        return info


def provider_progress(rules: Scenario, reputation: np.ndarray) -> np.ndarray:
    """How far each provider's reputation has come from cold to HIGH, 0..1: the reputation half of readiness."""
    return np.clip((reputation - rules.cold_reputation) / (rules.high_reputation - rules.cold_reputation), 0.0, 1.0)


def carried_share(share: np.ndarray, outcome: DayOutcome) -> np.ndarray:
    """The share of each provider's mail the IP carried [n, P]: the share put on it times the fraction of the day's
    attempts the provider accepted (not deferred, not blocked; hard bounces are the list's, not the IP's). A provider
    the IP sent nothing to counts at its share."""
    refused = (outcome.deferred + outcome.blocked).astype(np.float64)
    accepted = np.where(outcome.sent > 0, 1.0 - refused / np.maximum(outcome.sent, 1), 1.0)
    return share * np.clip(accepted, 0.0, 1.0)
