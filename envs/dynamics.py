"""Provider and audience dynamics: one day of sending, batched over envs and providers.

Plain numpy over arrays of shape ``[n_envs, n_providers]`` and no gymnasium import, so one
implementation serves the single env, the vector env, SB3's VecEnv and the oracle's look-ahead.
Every equation is written out in ``docs/model.md``; the numbers come from :class:`~envs.scenario.Scenario`.

One call to :func:`simulate_day` runs, per env and provider:

1. the new IP takes ``share`` of the day's available mail (fresh demand plus, with no overflow route,
   the queued backlog), most engaged recipients first; the rest overflows or waits;
2. first attempts to unknown users hard-bounce; the provider blocks a share of the rest (5xx) by
   reputation and complaint pressure, accepts up to its throttle limit and defers the excess (4xx);
3. deferred mail is retried on later days until the retry window closes, then it expires;
4. accepted mail lands in the inbox or junk by reputation; inboxed mail draws opens and complaints;
5. hidden reputation, the recent-peak volume and the complaint pressure update; SES judges the account.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import numpy as np

from core.actions import clip as _clip
from core.features import SES_DECAY, ses_rate
from core.providers import FEEDBACK_LOOP, PROVIDERS
from envs.families import EpisodeParams
from envs.scenario import Scenario

P = len(PROVIDERS)

BLOCK_REPUTATION = 0.25
"""Below this reputation a provider rejects a growing share at SMTP (Postmaster BAD, 3.1). ASSUMPTION."""
BLOCK_MAX = 0.9
PRESSURE_BLOCK_MAX = 0.5
"""Share blocked when complaint pressure reaches twice the limit ('sustained, blocks', 3.1). ASSUMPTION."""
PRESSURE_JUNK_MAX = 0.6
"""Extra junk share at the complaint limit (Gmail: graduated impact above 0.1%, 3.1). ASSUMPTION."""
INBOX_REPUTATION_LOW, INBOX_REPUTATION_HIGH = 0.1, 0.7
"""Reputation range over which inbox placement rises from 0 to the provider's benchmark rate. ASSUMPTION."""
BOUNCE_SAFE = 0.02
"""Hard-bounce rate providers tolerate (SES best results < 2%, 1.4)."""
CAPACITY_CURVE = 2.0
"""Reputation capacity rises as cold * (warm / cold) ** (progress ** CAPACITY_CURVE): nearly flat in the
first week, as Oracle's per-ISP plan (10k Gmail days 1-5, 12.5k days 6-7) and SparkPost's week-one
caps (2.4-2.5) describe, then fast. ASSUMPTION on the form."""
REFERENCE_OPEN_RATE = 0.25
"""Open rate at which mail counts as fully wanted for reputation growth (Braze: > 25% is good, 2.3)."""


@dataclass
class State:
    """Hidden state per env (and provider); the sender never observes it directly."""

    day: np.ndarray  # [n] int64 days simulated in this episode
    reputation: np.ndarray  # [n, P] reputation in [0, 1]
    peak: np.ndarray  # [n, P] recent-peak accepted volume, fading daily
    complaints_w: np.ndarray  # [n, P] weighted complaint count
    inbox_w: np.ndarray  # [n, P] weighted inbox count (complaint pressure denominator)
    retry: np.ndarray  # [n, P, R] int64 deferred mail by age in days (0 = deferred yesterday)
    backlog: np.ndarray  # [n, P, R] int64 unsent mail by age (overflow 'none' only)
    ses_sent: np.ndarray  # [n] weighted first attempts
    ses_bounced: np.ndarray  # [n] weighted hard bounces
    ses_delivered_fbl: np.ndarray  # [n] weighted deliveries to FBL providers
    ses_complaints: np.ndarray  # [n] weighted FBL complaints
    paused: np.ndarray  # [n] bool

    @staticmethod
    def zeros(n: int, retry_days: int) -> State:
        return State(
            day=np.zeros(n, np.int64),
            reputation=np.zeros((n, P)),
            peak=np.zeros((n, P)),
            complaints_w=np.zeros((n, P)),
            inbox_w=np.zeros((n, P)),
            retry=np.zeros((n, P, retry_days), np.int64),
            backlog=np.zeros((n, P, retry_days), np.int64),
            ses_sent=np.zeros(n),
            ses_bounced=np.zeros(n),
            ses_delivered_fbl=np.zeros(n),
            ses_complaints=np.zeros(n),
            paused=np.zeros(n, bool),
        )

    def reset_rows(self, mask: np.ndarray, params: EpisodeParams) -> None:
        """Start new episodes in the rows selected by ``mask``."""
        for f in fields(self):
            getattr(self, f.name)[mask] = 0
        self.reputation[mask] = params.initial_reputation[mask]

    def copy(self) -> State:
        return State(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


@dataclass
class DayOutcome:
    """What happened on the simulated day; every count is a non-negative int64 array [n, P]."""

    sent: np.ndarray  # attempts on the new IP: first attempts + retries
    delivered: np.ndarray  # accepted (inbox + junk)
    inbox: np.ndarray
    junk: np.ndarray
    deferred: np.ndarray  # 4xx, queued for retry
    bounced: np.ndarray  # hard bounces (unknown users) on first attempt
    blocked: np.ndarray  # 5xx rejections
    complaints: np.ndarray  # true complaints (FBL-reported ones: ``complaints * FBL``)
    opens: np.ndarray
    expired: np.ndarray  # deferred or queued mail whose window closed today (lost)
    first_attempts: np.ndarray  # fresh mail put on the new IP today
    overflow: np.ndarray  # mail sent through the overflow route instead
    queued: np.ndarray  # retry queue + backlog left at the end of the day
    available: np.ndarray  # fresh demand + backlog the share applied to
    paused: np.ndarray  # [n] bool, SES paused the account at the end of the day


@dataclass(frozen=True)
class _Constants:
    """A scenario's tuples as arrays, built once per scenario instead of once per day."""

    cold: np.ndarray
    unknown_user_rate: np.ndarray
    complaint_rate: np.ndarray
    open_rate: np.ndarray
    inbox_rate: np.ndarray


@functools.lru_cache(maxsize=64)
def _constants(s: Scenario) -> _Constants:
    arrays = [np.asarray(x, np.float64) for x in (s.cold_capacity, s.tier_unknown_user_rate, s.tier_complaint_rate,
                                                  s.tier_open_rate, s.inbox_rate)]
    for a in arrays:
        a.flags.writeable = False
    return _Constants(*arrays)


def throttle_limit(scenario: Scenario, reputation: np.ndarray, peak: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """Emails/day a provider accepts before deferring: min(reputation capacity, spike limit)."""
    progress = _clip((reputation - scenario.cold_reputation) / (1.0 - scenario.cold_reputation), 0.0, 1.0)
    reputation_capacity = cold * (scenario.warm_capacity / cold) ** (progress**CAPACITY_CURVE)
    spike_limit = np.maximum(cold, scenario.spike_allowance * peak)
    return np.minimum(reputation_capacity, spike_limit)


def inbox_probability(scenario: Scenario, reputation: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    """Share of accepted mail placed in the inbox."""
    base = _constants(scenario).inbox_rate
    placement = _clip((reputation - INBOX_REPUTATION_LOW) / (INBOX_REPUTATION_HIGH - INBOX_REPUTATION_LOW), 0.0, 1.0)
    excess = _clip((pressure - scenario.complaint_safe) / (scenario.complaint_limit - scenario.complaint_safe), 0, 1)
    return base * placement * (1.0 - PRESSURE_JUNK_MAX * excess)


def block_probability(scenario: Scenario, reputation: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    """Share of valid attempts rejected at SMTP (5xx)."""
    by_trust = BLOCK_MAX * _clip((BLOCK_REPUTATION - reputation) / BLOCK_REPUTATION, 0.0, 1.0)
    over = _clip((pressure - scenario.complaint_limit) / scenario.complaint_limit, 0.0, 1.0)
    return 1.0 - (1.0 - by_trust) * (1.0 - PRESSURE_BLOCK_MAX * over)


def complaint_pressure(state: State) -> np.ndarray:
    """The weighted complaint rate a provider judges (per inboxed email), robust at low volume."""
    return state.complaints_w / np.maximum(state.inbox_w, 1_000.0)


def audience_mix(scenario: Scenario, params: EpisodeParams, on_ip: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Tier composition [n, P, K] of the mail the new IP carries (engaged first, or at random)."""
    share = params.tier_share[:, None, :]  # [n, 1, K]
    if scenario.audience_order == "random":
        return np.broadcast_to(share, (*on_ip.shape, share.shape[-1]))
    frac = np.where(available > 0, on_ip / np.maximum(available, 1), 0.0)[..., None]  # [n, P, 1]
    before = np.cumsum(share, axis=-1) - share
    taken = _clip(frac - before, 0.0, share)
    return np.where(frac > 0, taken / np.maximum(frac, 1e-12), share)


def _binomial(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial draws; skipped when every draw is certainly 0 (numpy draws nothing for n = 0 or p = 0, so the
    random stream and the results are the same either way)."""
    p = _clip(p, 0.0, 1.0)
    if not (p > 0.0).any() or not n.any():
        return np.zeros(n.shape, np.int64)
    return rng.binomial(n, p).astype(np.int64, copy=False)


def _take_oldest(queue: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Remove ``amount`` [n, P] from ``queue`` [n, P, R] oldest-first, in place; return what was taken."""
    taken = np.zeros_like(amount)
    remaining = amount.copy()
    for age in range(queue.shape[-1] - 1, -1, -1):
        take = np.minimum(queue[..., age], remaining)
        queue[..., age] -= take
        remaining -= take
        taken += take
    return taken


def _age(queue: np.ndarray, newest: np.ndarray) -> np.ndarray:
    """Shift ``queue`` one day older, put ``newest`` at age 0, return what fell off the end."""
    expired = queue[..., -1].copy()
    queue[..., 1:] = queue[..., :-1]
    queue[..., 0] = newest
    return expired


def _split_deferred(retry: np.ndarray, fresh_valid: np.ndarray, deferred: np.ndarray) -> np.ndarray:
    """Deferred mail by age [n, P, R+1] (0 = today's first attempts), proportional to each age's share."""
    if not deferred.any():
        return np.zeros((*deferred.shape, retry.shape[-1] + 1), np.int64)
    # Every pool gets floor(pool * frac); the remainder goes to today's mail, which always has room.
    frac = (deferred / np.maximum(fresh_valid + retry.sum(-1), 1))[..., None]  # deferred <= the pools' total
    parts = np.empty((*deferred.shape, retry.shape[-1] + 1), np.int64)
    parts[..., 1:] = np.floor(retry * frac)
    parts[..., 0] = deferred - parts[..., 1:].sum(-1)
    overflow = np.maximum(parts[..., 0] - fresh_valid, 0)
    if overflow.any():  # rare rounding corner: move the excess to the youngest age with room
        parts[..., 0] -= overflow
        for age in range(1, parts.shape[-1]):
            move = np.minimum(overflow, retry[..., age - 1] - parts[..., age])
            parts[..., age] += move
            overflow -= move
    return parts


def simulate_day(
    scenario: Scenario,
    params: EpisodeParams,
    state: State,
    share: np.ndarray,
    rng: np.random.Generator,
) -> DayOutcome:
    """Advance ``state`` by one day in place, the new IP taking ``share`` [n, P] in [0, 1] of the mail."""
    s = scenario
    c = _constants(s)
    cold = c.cold

    # 1. Routing: the new IP takes its share of the available mail, oldest queued mail first.
    # With an overflow route nothing is ever queued, so the backlog bookkeeping is skipped.
    if s.overflow == "none":
        backlog_total = state.backlog.sum(-1)
        available = params.demand + backlog_total
        on_ip = np.floor(share * available).astype(np.int64)
        from_backlog = _take_oldest(state.backlog, np.minimum(on_ip, backlog_total))
        fresh_left = params.demand - (on_ip - from_backlog)
        overflow = np.zeros_like(on_ip)
        expired_backlog = _age(state.backlog, fresh_left)
    else:
        available = params.demand
        on_ip = np.floor(share * available).astype(np.int64)
        overflow = params.demand - on_ip
        expired_backlog = None

    mix = audience_mix(s, params, on_ip, available)
    unknown_p = mix @ c.unknown_user_rate
    complaint_p = mix @ c.complaint_rate
    open_p = mix @ c.open_rate

    # 2. The provider's answer: hard bounces, blocks, throttling.
    retries = state.retry.sum(-1)
    bounced = _binomial(rng, on_ip, unknown_p)
    valid = on_ip - bounced + retries
    pressure = complaint_pressure(state)
    blocked = _binomial(rng, valid, block_probability(s, state.reputation, pressure))
    limit = throttle_limit(s, state.reputation, state.peak, cold)
    if s.capacity_noise > 0:
        limit = limit * rng.lognormal(0.0, s.capacity_noise, size=limit.shape)
    accepted = np.minimum(valid - blocked, np.floor(limit).astype(np.int64))
    deferred = valid - blocked - accepted

    # 3. Retry queue: deferred mail ages; what was deferred on its last retry day expires.
    by_age = _split_deferred(state.retry, on_ip - bounced, deferred)
    expired_retry = by_age[..., -1]
    state.retry[...] = by_age[..., :-1]

    # 4. Placement, opens and complaints.
    inbox = _binomial(rng, accepted, inbox_probability(s, state.reputation, pressure))
    junk = accepted - inbox
    complaints = _binomial(rng, inbox, complaint_p)
    opens = _binomial(rng, inbox, open_p)

    # 5. Hidden state.
    _update_reputation(s, params, state, accepted, on_ip, bounced, complaints, inbox, cold, open_p, deferred)
    state.peak[...] = np.maximum(accepted, s.volume_memory * state.peak)
    _update_enforcement(s, state, on_ip, bounced, accepted, complaints)
    state.day += 1

    return DayOutcome(
        sent=on_ip + retries,
        delivered=accepted,
        inbox=inbox,
        junk=junk,
        deferred=deferred,
        bounced=bounced,
        blocked=blocked,
        complaints=complaints,
        opens=opens,
        expired=expired_retry if expired_backlog is None else expired_retry + expired_backlog,
        first_attempts=on_ip,
        overflow=overflow,
        queued=state.retry.sum(-1) if expired_backlog is None else state.retry.sum(-1) + state.backlog.sum(-1),
        available=available,
        paused=state.paused.copy(),
    )


def _update_reputation(
    s: Scenario,
    params: EpisodeParams,
    state: State,
    accepted: np.ndarray,
    sent: np.ndarray,
    bounced: np.ndarray,
    complaints: np.ndarray,
    inbox: np.ndarray,
    cold: np.ndarray,
    open_p: np.ndarray,
    deferred: np.ndarray,
) -> None:
    """Reputation grows with steady, wanted volume; falls with spikes, complaints and bounces; fades idle.

    Only the accepted share of the volume offered today earns reputation: mail pushed on against the
    provider's throttle (deferred, 4xx) is not 'steady' sending, and Gmail's advice is to reduce volume
    until deferrals stop before increasing again (domain-facts 3.1). ASSUMPTION on the form.
    """
    memory = math.exp(-1.0 / s.complaint_memory_days)
    state.complaints_w[...] = memory * state.complaints_w + complaints
    state.inbox_w[...] = memory * state.inbox_w + inbox
    pressure = complaint_pressure(state)

    activity = _clip(np.log1p(accepted) / math.log1p(s.keep_warm_volume), 0.0, 1.0)
    engagement = np.minimum(open_p / REFERENCE_OPEN_RATE, 1.0)
    complaint_gate = _clip(1.0 - (pressure - s.complaint_safe) / (s.complaint_limit - s.complaint_safe), 0.0, 1.0)
    offered = accepted + deferred
    throttle_gate = np.where(offered > 0, accepted / np.maximum(offered, 1), 1.0)
    growth = params.reputation_rate * activity * engagement * complaint_gate * throttle_gate * (1.0 - state.reputation)

    reference = np.maximum(state.peak, cold)
    spike = s.spike_penalty * _clip(sent / reference - s.spike_allowance, 0.0, 2.0)
    complaint = s.complaint_penalty * _clip((pressure - s.complaint_limit) / s.complaint_limit, 0.0, 3.0)
    bounce_rate = bounced / np.maximum(sent, 1)  # bounced <= sent, so 0 when nothing was sent
    bounce = s.bounce_penalty * np.maximum(bounce_rate - BOUNCE_SAFE, 0.0)
    fade = 1.0 - 0.1 ** (1.0 / s.idle_days_to_cold)
    idle = (1.0 - activity) * fade * np.maximum(state.reputation - s.cold_reputation, 0.0)

    state.reputation[...] = _clip(state.reputation + growth - spike - complaint - bounce - idle, 0.0, 1.0)


def _update_enforcement(
    s: Scenario, state: State, sent: np.ndarray, bounced: np.ndarray, accepted: np.ndarray, complaints: np.ndarray
) -> None:
    """SES's account rates over a weighted window; pause at the thresholds once volume is representative."""
    w = SES_DECAY
    state.ses_sent[...] = w * state.ses_sent + sent.sum(-1)
    state.ses_bounced[...] = w * state.ses_bounced + bounced.sum(-1)
    state.ses_delivered_fbl[...] = w * state.ses_delivered_fbl + (accepted * FEEDBACK_LOOP).sum(-1)
    state.ses_complaints[...] = w * state.ses_complaints + (complaints * FEEDBACK_LOOP).sum(-1)
    if s.enforcement != "ses":
        return
    rep = s.representative_volume
    bounce_rate, complaint_rate = ses_rates(state)
    state.paused |= (state.ses_sent >= rep) & (bounce_rate >= s.pause_bounce_rate)
    state.paused |= (state.ses_delivered_fbl >= rep) & (complaint_rate >= s.pause_complaint_rate)


def ses_rates(state: State) -> tuple[np.ndarray, np.ndarray]:
    """The bounce and complaint rates SES's reputation dashboard shows [n]."""
    return ses_rate(state.ses_bounced, state.ses_sent), ses_rate(state.ses_complaints, state.ses_delivered_fbl)
