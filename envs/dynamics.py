"""Provider and audience dynamics: one day of sending, batched over envs and providers.

Arrays of shape ``[n_envs, n_providers]`` and no gymnasium import, so one implementation serves the single
env, the vector env, SB3's VecEnv and the oracle's look-ahead. The per-cell arithmetic runs compiled in
:mod:`envs.day_kernel`; this module holds the state, the model's constants, the dashboards and SES's account.
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

import functools
import math
from dataclasses import dataclass, fields

import numpy as np

from core.features import SES_DECAY, ses_rate
from core.guard import JumpGuard
from core.providers import ESCALATES_TO_BLOCK, FEEDBACK_LOOP, MACHINE_OPENS, POSTMASTER, PROVIDERS, SNDS
from envs.day_kernel import DRAWS_PER_CELL, N_OUTPUTS, DayRules, simulate_cells, standard_normals, throttle_limits
from envs.families import EpisodeParams, low_cold_capacity, median_cold_capacity, resolved_scenario
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
MIN_PRESSURE_BASE = 1_000.0
"""Floor of the complaint pressure's inboxed-mail denominator: a handful of emails makes no complaint storm."""
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
    spike_excess: np.ndarray  # first attempts above the spike allowance (1.6 x the recent peak or cold acceptance)
    available: np.ndarray  # fresh demand + backlog the share applied to
    postmaster_band: np.ndarray  # [n] int64 Gmail Postmaster IP reputation published this morning: 0 BAD .. 3 HIGH
    snds_colour: np.ndarray  # [n] int64 Microsoft SNDS colour published this morning: 0 green, 1 yellow, 2 red
    paused: np.ndarray  # [n] bool, SES paused the account at the end of the day


COUNT_FIELDS = ("sent", "delivered", "inbox", "junk", "deferred", "bounced", "blocked", "complaints", "opens",
                "expired", "first_attempts", "overflow", "overflow_delivered", "overflow_inbox", "overflow_bounced",
                "overflow_complaints", "trap_hits", "queued", "spike_excess")
"""The [n, P] integer count fields of :class:`DayOutcome`."""


def day_rules(scenario: Scenario) -> DayRules:
    """The scalars of one day for the compiled kernel: the scenario's and this module's constants, read at each
    call (so a patched constant, as in ``benchmarks/sensitivity.py --constants``, takes effect)."""
    constants = tuple(float(globals()[name.upper()]) for name in DayRules._fields[SCENARIO_RULES:DERIVED_RULES])
    return _day_rules(scenario, constants)


@functools.lru_cache(maxsize=64)
def _day_rules(s: Scenario, constants: tuple[float, ...]) -> DayRules:
    scenario_values = (float(getattr(s, name)) for name in DayRules._fields[1:SCENARIO_RULES])
    return DayRules._make((s.audience_order == "random", *scenario_values, *constants,
                           math.log(s.escalation_start), math.log(s.escalation_full)))


SCENARIO_RULES = DayRules._fields.index("block_reputation")
DERIVED_RULES = DayRules._fields.index("log_escalation_start")
"""DayRules fields before ``SCENARIO_RULES`` are the scenario's, then this module's constants, then derived."""


def first_day_allowance(scenario: Scenario) -> np.ndarray:
    """Emails per provider [P] a new IP may send on its first day without a jump the model punishes (spike
    allowance x cold acceptance), at the prior's median cold acceptance: what a schedule's day 1 should stay
    under. An episode's own cold acceptance is drawn around it, so this is a guide, not a guarantee."""
    return np.floor(resolved_scenario(scenario).spike_allowance * median_cold_capacity(scenario))


def jump_guard(scenario: Scenario) -> JumpGuard:
    """The jump guard for a policy trained on ``scenario``: the model's spike allowance over the larger of the
    sender's last day and the low end of the prior's cold acceptance (``core/guard.py``)."""
    return JumpGuard(resolved_scenario(scenario).spike_allowance, low_cold_capacity(scenario))


def throttle_limit(scenario: Scenario, reputation: np.ndarray, peak: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """Emails/day a provider accepts before deferring [n, P]: min(reputation ceiling, spike limit)."""
    out = np.empty(np.shape(reputation))
    throttle_limits(day_rules(scenario), reputation, peak, cold, out)
    return out


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


def simulate_day(
    scenario: Scenario,
    params: EpisodeParams,
    state: State,
    share: np.ndarray,
    rng: np.random.Generator | None,
) -> DayOutcome:
    """Advance ``state`` by one day in place, the new IP taking ``share`` [n, P] in [0, 1] of the mail.

    With ``rng=None`` every draw is its expected value (rounded) and there is no noise: the oracle's
    deterministic look-ahead.
    """
    band, colour = dashboards(scenario, state)  # published this morning from yesterday's view
    p, st = params, state
    n = share.shape[0]
    normals = _NO_DRAWS
    if rng is not None:
        normals = np.empty((n, P, DRAWS_PER_CELL))
        standard_normals(rng, normals)
    counts = np.empty((n, P, N_OUTPUTS), np.int64)
    simulate_cells(
        day_rules(scenario), np.ascontiguousarray(share, np.float64), p.demand, p.pool_headroom, p.tier_share,
        p.tier_complaint_rate, p.tier_open_rate, p.tier_unknown_user_rate, p.tier_trap_rate, p.cold_capacity,
        p.inbox_rate, p.pool_inbox_rate, p.reputation_rate, p.machine_open_share, ESCALATES_TO_BLOCK, MACHINE_OPENS,
        st.reputation, st.peak, st.sent_peak, st.complaints_w, st.inbox_w, st.strain, st.listing, st.retry,
        st.backlog, normals, rng is None, counts, np.empty(st.retry.shape[-1] + 1, np.int64),
    )
    outcome = {name: counts[..., k] for k, name in enumerate((*COUNT_FIELDS, "available"))}
    accepted, attempts = outcome["delivered"], outcome["sent"]
    st.postmaster_reputation[...] = st.reputation[:, POSTMASTER]
    st.postmaster_volume[...] = accepted[:, POSTMASTER]
    st.snds_spam_share[...] = ((accepted - outcome["inbox"] + outcome["blocked"])[:, SNDS]
                               / np.maximum(attempts[:, SNDS], 1))
    st.snds_volume[...] = attempts[:, SNDS]
    _update_enforcement(scenario, st, outcome["first_attempts"] + outcome["overflow"],
                        outcome["bounced"] + outcome["overflow_bounced"],
                        accepted + outcome["overflow_delivered"],
                        outcome["complaints"] + outcome["overflow_complaints"])
    st.day += 1
    return DayOutcome(**outcome, postmaster_band=band, snds_colour=colour, paused=st.paused.copy())


_NO_DRAWS = np.zeros((1, 1, 1))
"""Passed to the kernel in expected-value mode, which reads no draws."""


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
