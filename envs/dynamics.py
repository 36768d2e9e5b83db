"""Provider and audience dynamics: one day of sending, batched over envs and providers.

Plain numpy over arrays of shape ``[n_envs, n_providers]`` and no gymnasium import, so one
implementation serves the single env, the vector env, SB3's VecEnv and the oracle's look-ahead.
Every equation is written out in ``docs/model.md``; the numbers come from :class:`~envs.scenario.Scenario`
and the episode's draws in :class:`~envs.families.EpisodeParams`.

One call to :func:`simulate_day` runs, per env and provider:

1. routing: the new IP takes ``share`` of the day's available mail (fresh demand plus mail waiting in the
   backlog), most engaged recipients first; the overflow route (shared pool, warm pool with finite headroom,
   or none) takes the rest up to its headroom; what neither takes waits and expires after the retry window;
2. the provider's answer on the new IP: unknown users hard-bounce, old addresses hit spam traps, a share of
   the rest is blocked (5xx) by reputation, complaint pressure, escalation of sustained excess and a
   blocklist-like listing; it accepts up to its throttle limit and defers the excess (4xx);
3. deferred mail is retried on later days until the retry window closes, then it expires;
4. accepted mail lands in the inbox or junk by reputation, complaint pressure and escalation; inboxed mail
   draws opens (and Apple's machine opens) and complaints; the overflow route delivers at its own placement;
5. hidden state: reputation grows with wanted, accepted volume above the registration threshold (logistic:
   slow from a damaged reputation) and falls with spikes, complaints, bounces, trap hits and escalation; the
   recent-peak volume, complaint pressure, refusal strain and listing update; SES judges the whole account;
   the dashboards (Postmaster band, SNDS colour) publish yesterday's view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from core.actions import clip as _clip
from core.features import SES_DECAY, ses_rate
from core.providers import ESCALATES_TO_BLOCK, FEEDBACK_LOOP, MACHINE_OPENS, POSTMASTER, PROVIDERS, SNDS
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
ESCALATION_BLOCK_MAX = 0.8
"""Share blocked at full escalation by a provider that escalates to blocks (Microsoft 550 S3150, 9.2). ASSUMPTION."""
ESCALATION_JUNK_MAX = 0.7
"""Extra junk share at full escalation by a provider that escalates to the spam folder (bulking, 2.4). ASSUMPTION."""
LISTING_BLOCK_MAX = 0.9
"""Share blocked while fully listed ('reject email completely, rather than sending it to the spam folder', SES
on Spamhaus listings, 9.5). ASSUMPTION on the size."""
INBOX_REPUTATION_LOW, INBOX_REPUTATION_HIGH = 0.1, 0.7
"""Reputation range over which inbox placement rises from 0 to the provider's benchmark rate. ASSUMPTION."""
BOUNCE_SAFE = 0.02
"""Hard-bounce rate providers tolerate (SES best results < 2%, 1.4)."""
CAPACITY_CURVE = 1.0
"""Reputation ceiling on acceptance: cold * (warm / cold) ** (progress ** CAPACITY_CURVE), progress from the BAD
threshold (``BLOCK_REPUTATION``) to HIGH: a neutral new IP may ramp to several times its cold acceptance
(Oracle's per-ISP week one: 10,000-15,000, 2.5), a HIGH one takes ``warm_capacity``; a damaged one (below BAD)
gets less than a new IP ('421 4.7.0 ... very low reputation ... rate limited', 3.1). ASSUMPTION on the form."""
REFERENCE_OPEN_RATE = 0.25
"""Open rate at which mail counts as fully wanted for reputation growth (Braze: > 25% is good, 2.3)."""
MIN_GROWTH_REPUTATION = 0.02
"""Floor of the logistic growth term r (1 - r): even a BAD reputation recovers, slowly."""
POSTMASTER_BANDS = (0.15, 0.4)
"""Reputation below which Postmaster shows BAD, then LOW; MEDIUM below the scenario's HIGH reputation (3.1).
ASSUMPTION on the cut points."""
SNDS_COLOURS = (0.1, 0.9)
"""SNDS: green under 10% of the day's mail filtered as spam, yellow to 90%, red above (3.3)."""
NOT_SHOWN = -1
"""A dashboard value on a day the dashboard shows nothing (volume under its threshold, or before any data)."""


@dataclass
class State:
    """Hidden state per env (and provider); the sender never observes it directly."""

    day: np.ndarray  # [n] int64 days simulated in this episode
    reputation: np.ndarray  # [n, P] reputation in [0, 1]
    peak: np.ndarray  # [n, P] recent-peak accepted volume, fading daily (the throttle's reference)
    sent_peak: np.ndarray  # [n, P] recent-peak first attempts, fading daily (the sender's own history, for spikes)
    complaints_w: np.ndarray  # [n, P] weighted complaint count
    inbox_w: np.ndarray  # [n, P] weighted inbox count (complaint pressure denominator)
    strain: np.ndarray  # [n, P] weighted log excess of fresh mail over the acceptance limit (escalation driver)
    listing: np.ndarray  # [n, P] weighted spam-trap hits (blocklist-like memory)
    retry: np.ndarray  # [n, P, R] int64 deferred mail by age in days (0 = deferred yesterday)
    backlog: np.ndarray  # [n, P, R] int64 mail no route took, by age
    ses_sent: np.ndarray  # [n] weighted first attempts, every route
    ses_bounced: np.ndarray  # [n] weighted hard bounces, every route
    ses_delivered_fbl: np.ndarray  # [n] weighted deliveries to FBL providers, every route
    ses_complaints: np.ndarray  # [n] weighted FBL complaints, every route
    postmaster_reputation: np.ndarray  # [n] Gmail's reputation at the end of yesterday (what Postmaster publishes)
    postmaster_volume: np.ndarray  # [n] Gmail's accepted mail yesterday
    snds_spam_share: np.ndarray  # [n] Microsoft's junk + blocked share of yesterday's attempts
    snds_volume: np.ndarray  # [n] Microsoft's attempts yesterday
    paused: np.ndarray  # [n] bool

    @staticmethod
    def zeros(n: int, retry_days: int) -> State:
        return State(
            day=np.zeros(n, np.int64),
            reputation=np.zeros((n, P)),
            peak=np.zeros((n, P)),
            sent_peak=np.zeros((n, P)),
            complaints_w=np.zeros((n, P)),
            inbox_w=np.zeros((n, P)),
            strain=np.zeros((n, P)),
            listing=np.zeros((n, P)),
            retry=np.zeros((n, P, retry_days), np.int64),
            backlog=np.zeros((n, P, retry_days), np.int64),
            ses_sent=np.zeros(n),
            ses_bounced=np.zeros(n),
            ses_delivered_fbl=np.zeros(n),
            ses_complaints=np.zeros(n),
            postmaster_reputation=np.zeros(n),
            postmaster_volume=np.zeros(n),
            snds_spam_share=np.zeros(n),
            snds_volume=np.zeros(n),
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
    complaints: np.ndarray  # true complaints (FBL-reported ones: ``complaints * FEEDBACK_LOOP``)
    opens: np.ndarray  # real opens plus Apple's machine opens
    expired: np.ndarray  # deferred or waiting mail whose window closed today (lost)
    first_attempts: np.ndarray  # fresh or waiting mail put on the new IP today
    overflow: np.ndarray  # mail the overflow route took instead
    overflow_delivered: np.ndarray
    overflow_inbox: np.ndarray
    overflow_bounced: np.ndarray
    overflow_complaints: np.ndarray
    trap_hits: np.ndarray  # spam-trap hits on the new IP (hidden from the sender)
    queued: np.ndarray  # retry queue + backlog left at the end of the day
    available: np.ndarray  # fresh demand + backlog the share applied to
    postmaster_band: np.ndarray  # [n] int64 Gmail Postmaster IP reputation published this morning: 0 BAD .. 3 HIGH
    snds_colour: np.ndarray  # [n] int64 Microsoft SNDS colour published this morning: 0 green, 1 yellow, 2 red
    paused: np.ndarray  # [n] bool, SES paused the account at the end of the day


COUNT_FIELDS = ("sent", "delivered", "inbox", "junk", "deferred", "bounced", "blocked", "complaints", "opens",
                "expired", "first_attempts", "overflow", "overflow_delivered", "overflow_inbox", "overflow_bounced",
                "overflow_complaints", "trap_hits", "queued")
"""The [n, P] integer count fields of :class:`DayOutcome`."""


def throttle_limit(scenario: Scenario, reputation: np.ndarray, peak: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """Emails/day a provider accepts before deferring: min(reputation ceiling, spike limit)."""
    s = scenario
    progress = _clip((reputation - BLOCK_REPUTATION) / (s.high_reputation - BLOCK_REPUTATION), 0.0, 1.0)
    ceiling = cold * (s.warm_capacity / cold) ** (progress**CAPACITY_CURVE)
    damaged = _clip(reputation / BLOCK_REPUTATION, 0.0, 1.0)  # below BAD: less than a new IP gets
    spike_limit = np.maximum(cold, s.spike_allowance * peak)
    return np.minimum(ceiling * damaged, spike_limit)


def escalation(scenario: Scenario, strain: np.ndarray) -> np.ndarray:
    """0..1: how far a provider has escalated a sustained excess (0 below ``escalation_start`` x its limit)."""
    start, full = math.log(scenario.escalation_start), math.log(scenario.escalation_full)
    return _clip((strain - start) / (full - start), 0.0, 1.0)


def inbox_probability(scenario: Scenario, params: EpisodeParams, reputation: np.ndarray, pressure: np.ndarray,
                      strain: np.ndarray) -> np.ndarray:
    """Share of accepted mail placed in the inbox (before the day's noise)."""
    s = scenario
    placement = _clip((reputation - INBOX_REPUTATION_LOW) / (INBOX_REPUTATION_HIGH - INBOX_REPUTATION_LOW), 0.0, 1.0)
    excess = _clip((pressure - s.complaint_safe) / (s.complaint_limit - s.complaint_safe), 0, 1)
    bulked = ESCALATION_JUNK_MAX * escalation(s, strain) * ~ESCALATES_TO_BLOCK
    return params.inbox_rate * placement * (1.0 - PRESSURE_JUNK_MAX * excess) * (1.0 - bulked)


def block_probability(scenario: Scenario, reputation: np.ndarray, pressure: np.ndarray, strain: np.ndarray,
                      listing: np.ndarray) -> np.ndarray:
    """Share of valid attempts rejected at SMTP (5xx)."""
    s = scenario
    by_reputation = BLOCK_MAX * _clip((BLOCK_REPUTATION - reputation) / BLOCK_REPUTATION, 0.0, 1.0)
    over = _clip((pressure - s.complaint_limit) / s.complaint_limit, 0.0, 1.0)
    escalated = ESCALATION_BLOCK_MAX * escalation(s, strain) * ESCALATES_TO_BLOCK
    listed = LISTING_BLOCK_MAX * _clip(listing / s.listing_threshold - 1.0, 0.0, 1.0)
    return 1.0 - (1.0 - by_reputation) * (1.0 - PRESSURE_BLOCK_MAX * over) * (1.0 - escalated) * (1.0 - listed)


def complaint_pressure(state: State) -> np.ndarray:
    """The weighted complaint rate a provider judges (per inboxed email), robust at low volume."""
    return state.complaints_w / np.maximum(state.inbox_w, 1_000.0)


def audience_mix(scenario: Scenario, params: EpisodeParams, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Tier composition [n, P, K] of the slice [lo, hi) of each provider's mail, most engaged first.

    ``lo`` and ``hi`` [n, P] are fractions of the available mail: the new IP takes [0, share), the overflow
    route the next slice. With ``audience_order='random'`` every slice has the list's composition.
    """
    share = params.tier_share[:, None, :]  # [n, 1, K]
    if scenario.audience_order == "random":
        return np.broadcast_to(share, (*lo.shape, share.shape[-1]))
    before = np.cumsum(share, axis=-1) - share
    lo3, hi3 = lo[..., None], hi[..., None]
    taken = np.maximum(np.minimum(hi3, before + share) - np.maximum(lo3, before), 0.0)
    width = hi3 - lo3
    return np.where(width > 0, taken / np.maximum(width, 1e-12), share)


def _per_email(mix: np.ndarray, tier_rate: np.ndarray) -> np.ndarray:
    """The probability per email [n, P] of a slice with tier composition ``mix`` [n, P, K], from rates [n, K]."""
    return (mix @ tier_rate[:, :, None])[..., 0]


def dashboards(scenario: Scenario, state: State) -> tuple[np.ndarray, np.ndarray]:
    """What Postmaster (Gmail band 0-3) and SNDS (Microsoft colour 0-2) publish from yesterday's state, or -1."""
    rep = state.postmaster_reputation
    band = np.where(rep < POSTMASTER_BANDS[0], 0, np.where(rep < POSTMASTER_BANDS[1], 1,
                                                           np.where(rep < scenario.high_reputation, 2, 3)))
    band = np.where(state.postmaster_volume >= scenario.postmaster_min_volume, band, NOT_SHOWN)
    spam = state.snds_spam_share
    colour = np.where(spam < SNDS_COLOURS[0], 0, np.where(spam <= SNDS_COLOURS[1], 1, 2))
    colour = np.where(state.snds_volume >= scenario.snds_min_volume, colour, NOT_SHOWN)
    return band.astype(np.int64), colour.astype(np.int64)


EXACT_BINOMIAL_BELOW = 9.0
"""Binomial draws whose variance n p (1 - p) is at least this use the normal approximation (rounded, clipped to
[0, n]); smaller ones are drawn exactly. The approximation's error is far below the model's own uncertainty and it
halves the cost of a day (benchmarks/bench_env.py)."""


RARE_EVENT = 0.02
"""Below this probability a small-variance draw uses the Poisson limit of the binomial (complaints, traps, bounces
of small volumes): half the cost of numpy's binomial there, with a relative error of about p."""
APPROXIMATE_FROM_SIZE = 256
"""Batches of at least this many draws (about 50 envs) use the approximation; smaller ones are all exact."""


def _binomial(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial(n, p) draws, exact for small variances and normal-approximated for large ones; all 0 (no draw)
    when every draw is certainly 0."""
    p = _clip(p, 0.0, 1.0)
    if not n.any():
        return np.zeros(n.shape, np.int64)
    if n.size < APPROXIMATE_FROM_SIZE:  # a few envs: one exact call is cheaper than the split
        return rng.binomial(n, p).astype(np.int64, copy=False)
    mean = n * p
    var = mean * (1.0 - p)
    out = np.floor(mean + np.sqrt(var) * rng.standard_normal(np.shape(mean)) + 0.5)
    out = _clip(out, 0.0, n).astype(np.int64)
    small = (var > 0.0) & (var < EXACT_BINOMIAL_BELOW)  # var 0: the draw is n p exactly (0 or n)
    if small.any():
        n_s, p_s = np.broadcast_to(n, out.shape)[small], np.broadcast_to(p, out.shape)[small]
        rare = p_s < RARE_EVENT
        draws = np.empty(n_s.shape, np.int64)
        draws[rare] = np.minimum(rng.poisson(n_s[rare] * p_s[rare]), n_s[rare])  # Poisson limit: p small
        draws[~rare] = rng.binomial(n_s[~rare], p_s[~rare])
        out[small] = draws
    return out


def _draw(rng: np.random.Generator, *pairs: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Independent binomial draws for several (n, p) pairs of one shape, in one :func:`_binomial` call."""
    n = np.array([a for a, _ in pairs])  # every n and p is [n_envs, P]: np.array stacks them in C
    p = np.array([b for _, b in pairs])
    return list(_binomial(rng, n, p))


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


def _noisy(rng: np.random.Generator, base: np.ndarray, sigma: float) -> np.ndarray:
    """``base`` times the day's log-normal noise (no draw when ``sigma`` is 0)."""
    return base * rng.lognormal(0.0, sigma, size=base.shape) if sigma > 0 else base


def simulate_day(
    scenario: Scenario,
    params: EpisodeParams,
    state: State,
    share: np.ndarray,
    rng: np.random.Generator,
) -> DayOutcome:
    """Advance ``state`` by one day in place, the new IP taking ``share`` [n, P] in [0, 1] of the mail."""
    s = scenario
    cold = params.cold_capacity

    # 1. Routing: the new IP takes its share of the available mail, the overflow route the next slice up to its
    # headroom, the rest waits. With a shared pool (unlimited headroom) nothing ever waits.
    unlimited = bool(np.isinf(params.pool_headroom).all())
    backlog_total = 0 if unlimited else state.backlog.sum(-1)
    available = params.demand + backlog_total
    on_ip = np.floor(share * available).astype(np.int64)
    rest = available - on_ip
    overflow = rest if unlimited else np.minimum(rest, np.floor(params.pool_headroom)).astype(np.int64)
    if unlimited:
        expired_backlog = np.zeros_like(on_ip)
    else:
        taken = on_ip + overflow
        from_backlog = _take_oldest(state.backlog, np.minimum(taken, backlog_total))
        expired_backlog = _age(state.backlog, params.demand - (taken - from_backlog))

    avail = np.maximum(available, 1)
    ip_frac = on_ip / avail
    mix = audience_mix(s, params, np.zeros_like(ip_frac), ip_frac)
    pool_mix = audience_mix(s, params, ip_frac, (on_ip + overflow) / avail)
    engagement_noise = rng.lognormal(0.0, s.engagement_noise, size=on_ip.shape) if s.engagement_noise > 0 else 1.0
    complaint_p = _per_email(mix, params.tier_complaint_rate) * engagement_noise
    open_p = _per_email(mix, params.tier_open_rate) * engagement_noise
    unknown_p = _per_email(mix, params.tier_unknown_user_rate)
    trap_p = _per_email(mix, params.tier_trap_rate)

    # 2. The provider's answer on the new IP: hard bounces, trap hits, blocks, throttling. Independent draws share
    # one call (the per-call overhead dominates a small batch): bounces on both routes, then trap hits, blocks and
    # the overflow route's placement, then the inbox and the overflow route's complaints, then opens and complaints.
    retries = state.retry.sum(-1)
    pool_unknown_p = _per_email(pool_mix, params.tier_unknown_user_rate)
    bounced, pool_bounced = _draw(rng, (on_ip, unknown_p), (overflow, pool_unknown_p))
    valid = on_ip - bounced + retries
    pool_delivered = overflow - pool_bounced
    pressure = complaint_pressure(state)
    block_p = block_probability(s, state.reputation, pressure, state.strain, state.listing)
    trap_hits, blocked, pool_inbox = _draw(rng, (on_ip - bounced, trap_p), (valid, block_p),
                                           (pool_delivered, params.pool_inbox_rate))
    limit = throttle_limit(s, state.reputation, state.peak, cold)
    if s.capacity_noise > 0:
        limit = limit * rng.lognormal(0.0, s.capacity_noise, size=limit.shape)
    accepted = np.minimum(valid - blocked, np.floor(limit).astype(np.int64))
    deferred = valid - blocked - accepted

    # 3. Retry queue: deferred mail ages; what was deferred on its last retry day expires.
    by_age = _split_deferred(state.retry, on_ip - bounced, deferred)
    expired_retry = by_age[..., -1]
    state.retry[...] = by_age[..., :-1]

    # 4. Placement, opens and complaints on the new IP; the overflow route's complaints; Apple's machine opens.
    inbox_p = inbox_probability(s, params, state.reputation, pressure, state.strain)
    if s.inbox_noise > 0:
        inbox_p = inbox_p + s.inbox_noise * rng.standard_normal(inbox_p.shape)
    pool_complaint_p = _per_email(pool_mix, params.tier_complaint_rate)
    inbox, pool_complaints = _draw(rng, (accepted, inbox_p), (pool_inbox, pool_complaint_p))
    complaints, real_opens = _draw(rng, (inbox, complaint_p), (inbox, open_p))
    machine = np.zeros_like(inbox)
    machine[:, MACHINE_OPENS] = _binomial(rng, inbox[:, MACHINE_OPENS] - real_opens[:, MACHINE_OPENS],
                                          params.machine_open_share)

    # 5. Hidden state, dashboards, enforcement.
    band, colour = dashboards(s, state)  # published this morning from yesterday's view
    excess = (on_ip - bounced) / np.maximum(limit, 1.0)
    _update_reputation(s, params, state, accepted, on_ip, bounced, complaints, inbox, cold, open_p,
                       valid - blocked, trap_hits, excess)
    state.peak[...] = np.maximum(accepted, s.volume_memory * state.peak)
    state.sent_peak[...] = np.maximum(on_ip, s.volume_memory * state.sent_peak)
    state.postmaster_reputation[...] = state.reputation[:, POSTMASTER]
    state.postmaster_volume[...] = accepted[:, POSTMASTER]
    attempts = on_ip + retries
    state.snds_spam_share[...] = ((accepted - inbox + blocked)[:, SNDS]) / np.maximum(attempts[:, SNDS], 1)
    state.snds_volume[...] = attempts[:, SNDS]
    _update_enforcement(s, state, on_ip + overflow, bounced + pool_bounced, accepted + pool_delivered,
                        complaints + pool_complaints)
    state.day += 1

    return DayOutcome(
        sent=attempts,
        delivered=accepted,
        inbox=inbox,
        junk=accepted - inbox,
        deferred=deferred,
        bounced=bounced,
        blocked=blocked,
        complaints=complaints,
        opens=real_opens + machine,
        expired=expired_retry + expired_backlog,
        first_attempts=on_ip,
        overflow=overflow,
        overflow_delivered=pool_delivered,
        overflow_inbox=pool_inbox,
        overflow_bounced=pool_bounced,
        overflow_complaints=pool_complaints,
        trap_hits=trap_hits,
        queued=state.retry.sum(-1) + (0 if unlimited else state.backlog.sum(-1)),
        available=available,
        postmaster_band=band,
        snds_colour=colour,
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
    offered: np.ndarray,
    trap_hits: np.ndarray,
    excess: np.ndarray,
) -> None:
    """Reputation grows with wanted, accepted volume; falls with spikes, complaints, bounces, traps, escalation.

    Growth is logistic, ``rate * gates * r (1 - r)``: the pace set by the provider's warm-up days at full
    activity, and slow from a damaged reputation (recovery takes weeks, 4.1, 9.4). Activity is 0 below
    ``register_volume`` accepted emails a day and 1 from ``keep_warm_volume`` on (log-linear between): a handful
    of emails builds nothing (9.3). Only accepted mail earns reputation: mail pushed against the throttle
    (deferred, 4xx) is not steady sending (Gmail: reduce volume until deferrals stop, 3.1). ASSUMPTION on the form.
    """
    memory = math.exp(-1.0 / s.complaint_memory_days)
    state.complaints_w[...] = memory * state.complaints_w + complaints
    state.inbox_w[...] = memory * state.inbox_w + inbox
    pressure = complaint_pressure(state)
    strain_memory = math.exp(-1.0 / s.strain_memory_days)
    state.strain[...] = strain_memory * state.strain + (1.0 - strain_memory) * np.log(np.maximum(excess, 1.0))
    state.listing[...] = 0.5 ** (1.0 / s.listing_half_life_days) * state.listing + trap_hits

    span = math.log(s.keep_warm_volume / s.register_volume)
    activity = _clip(np.log(np.maximum(accepted, 1) / s.register_volume) / span, 0.0, 1.0)
    engagement = np.minimum(open_p / REFERENCE_OPEN_RATE, 1.0)
    complaint_gate = _clip(1.0 - (pressure - s.complaint_safe) / (s.complaint_limit - s.complaint_safe), 0.0, 1.0)
    throttle_gate = np.where(offered > 0, accepted / np.maximum(offered, 1), 1.0)
    r = state.reputation
    logistic = np.maximum(r, MIN_GROWTH_REPUTATION) * (1.0 - r)
    growth = params.reputation_rate * activity * engagement * complaint_gate * throttle_gate * logistic

    reference = np.maximum(state.sent_peak, cold)
    jump = np.where(state.sent_peak > 0, sent / reference - s.spike_allowance, 0.0)
    spike = s.spike_penalty * _clip(jump, 0.0, 2.0)
    complaint = s.complaint_penalty * _clip((pressure - s.complaint_limit) / s.complaint_limit, 0.0, 3.0)
    bounce_rate = bounced / np.maximum(sent, 1)  # bounced <= sent, so 0 when nothing was sent
    bounce = s.bounce_penalty * np.maximum(bounce_rate - BOUNCE_SAFE, 0.0)
    traps = s.trap_penalty * trap_hits
    escalated = s.strain_penalty * escalation(s, state.strain)
    fade = 1.0 - 0.1 ** (1.0 / s.idle_days_to_cold)
    idle = (1.0 - activity) * fade * np.maximum(r - s.cold_reputation, 0.0)

    state.reputation[...] = _clip(r + growth - spike - complaint - bounce - traps - escalated - idle, 0.0, 1.0)


def _update_enforcement(
    s: Scenario, state: State, sent: np.ndarray, bounced: np.ndarray, delivered: np.ndarray, complaints: np.ndarray
) -> None:
    """SES's account rates over a weighted window, every route counted; pause at the thresholds once volume is
    representative (1.4, 9.7)."""
    w = SES_DECAY
    state.ses_sent[...] = w * state.ses_sent + sent.sum(-1)
    state.ses_bounced[...] = w * state.ses_bounced + bounced.sum(-1)
    state.ses_delivered_fbl[...] = w * state.ses_delivered_fbl + (delivered * FEEDBACK_LOOP).sum(-1)
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
