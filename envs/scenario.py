"""Scenario configuration: every number the simulator uses, with its source.

A :class:`Scenario` is a frozen, validated dataclass. Each field's docstring names its source in
``docs/calibration/domain-facts.md`` (section numbers) or says ``ASSUMPTION``; ``docs/model.md``
explains the assumptions and ``docs/sensitivity.md`` measures what the conclusions owe to each. Named
scenarios are versioned (``-v1``): change a number or an equation, bump the version.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from core.providers import PROVIDERS, TIERS, per_provider
from core.util import did_you_mean, is_finite_number, is_whole_number, shorten
from envs.profiles import HELDOUT_PROFILES, TRAIN_MAX_MICROSOFT_SHARE

VERSION = 1
"""The dynamics' version: every registered id ends in ``-v{VERSION}``."""

Overflow = Literal["shared_pool", "warm_pool", "none", "mixed"]
AudienceOrder = Literal["engaged_first", "random"]
Enforcement = Literal["ses", "none"]


class ScenarioError(ValueError):
    """A scenario name or parameter is invalid; the message says which and why."""


@dataclass(frozen=True)
class Scenario:
    """One warm-up situation: the sender's audience, the providers, the overflow route and the rules of the game."""

    name: str = "custom"
    horizon: int = 60
    """Days per episode: the 45-day SES plan plus a 15-day post-warm-up period (1.1)."""
    demand: float = 40_000.0
    """Fresh emails per day the new IP should carry when warm. NewIP: at most 50,000 (SES, 1.1)."""
    provider_share: tuple[float, ...] = per_provider("audience_share")
    """Share of the audience per provider (``core.providers``). ASSUMPTION (typical consumer list)."""

    # --- the audience
    list_quality: float = 0.8
    """0..1; sets the share of never-engaged ("older") recipients: 0.55 - 0.5 * quality. ASSUMPTION."""
    tier_complaint_rate: tuple[float, ...] = (0.0002, 0.0004, 0.0010, 0.0035)
    """Complaints per inboxed email by tier. ASSUMPTION anchored on Return Path's 0.17% average (4.3)."""
    tier_unknown_user_rate: tuple[float, ...] = (0.003, 0.008, 0.02, 0.06)
    """Hard bounces (unknown users) per first attempt by tier (Return Path: ~1% for good senders, 8-11% for
    poor ones, 9.5). ASSUMPTION on the split."""
    tier_open_rate: tuple[float, ...] = (0.35, 0.20, 0.10, 0.03)
    """Real opens per inboxed email by tier. ASSUMPTION (Braze: > 25% open means good placement, 2.3)."""
    tier_trap_rate: tuple[float, ...] = (0.0, 0.0, 1e-6, 3e-5)
    """Spam-trap hits per first attempt by tier: ~0 for recently engaged addresses, rising for addresses idle
    6+ months (SES: drop recipients with no engagement 'in several months'; traps are old addresses, 9.5).
    No published rate: ASSUMPTION (about one hit per 33,000 oldest-tier emails)."""
    tier_rate_spread: float = 0.3
    """Log-normal sigma of each episode's tier rates around the values above: the sender does not know its
    list's exact complaint, bounce, trap and open propensities. ASSUMPTION."""
    audience_order: AudienceOrder = "engaged_first"
    """The new IP takes the most engaged recipients first, as every ESP advises (4.3)."""

    # --- the providers (per-episode draws around these centres model the sender's uncertainty)
    warmup_days: tuple[float, ...] = per_provider("warmup_days")
    """Days from a cold to a HIGH reputation at full activity: 2 to 6 weeks (1.1; Microsoft 'a couple of weeks',
    2.7; AcelleMail's per-ISP table puts Gmail fastest and iCloud slowest, 2.7)."""
    warmup_days_spread: float = 0.25
    """Log-normal sigma of each episode's provider pace around ``warmup_days``. ASSUMPTION."""
    cold_capacity: tuple[float, ...] = per_provider("cold_capacity")
    """Central emails/day a cold IP gets accepted per provider (``core.providers``; 2.1-2.5, 9.1)."""
    cold_capacity_spread: float = 0.5
    """Log-normal sigma of each episode's cold acceptance: 95% of draws within x0.37 to x2.7 of the centre. The
    Randomized family spans the whole ~200x published range (50-10,000/day, 9.1). ASSUMPTION on the form."""
    warm_capacity: float = 2_000_000.0
    """Emails/day per provider a fully reputable IP gets accepted (Salesforce: > 2 M/day draws deferrals, 2.6)."""
    spike_allowance: float = 1.6
    """Accepted volume may exceed the recent peak by this factor before throttling (Google: doubling hurts,
    3.1; +20-40%/day is safe, 4.2). ASSUMPTION between 1.4 and 2.0."""
    volume_memory: float = 0.9
    """Daily fade of the recent-peak volume a provider judges spikes against (SES managed: 'when sending volume
    to an ISP drops, the warmup percentage also drops', 1.3). ASSUMPTION on the rate."""
    capacity_noise: float = 0.1
    """Log-normal sigma of the day's throttle limit (provider load). ASSUMPTION."""
    inbox_rate: tuple[float, ...] = per_provider("inbox_rate")
    """Inbox placement of a reputable sender (Validity 2026 benchmark, 4.3; 'other' = global)."""
    inbox_rate_spread: float = 0.03
    """SD of each episode's inbox rate around the benchmark (providers differ by sender, 9.9). ASSUMPTION."""
    inbox_noise: float = 0.03
    """SD of the day-to-day inbox rate (2-4 points, 9.9 INFERENCE)."""
    engagement_noise: float = 0.15
    """Log-normal sigma of the day's open and complaint propensity (campaign to campaign). ASSUMPTION."""
    machine_open_share: tuple[float, float] = (0.3, 0.6)
    """Range of the share of Apple inboxed mail opened by Mail Privacy Protection (MPP affected 41-53% of opens,
    Apple clients ~57% of opens, 9.8), drawn per episode: Apple's open rate says little about placement."""

    # --- reputation
    cold_reputation: float = 0.4
    """Reputation of an IP with no history (Postmaster: between LOW and MEDIUM, 3.1). ASSUMPTION."""
    high_reputation: float = 0.8
    """Reputation at which a provider counts the IP warm (Postmaster HIGH, 3.1). ASSUMPTION."""
    initial_reputation: tuple[float, float] = (0.4, 0.4)
    """Range the episode's initial reputation is drawn from (Rewarm: what is left after 30+ idle days)."""
    register_volume: float = 100.0
    """Accepted emails/day below which a provider hardly registers the IP: no reputation is earned (SNDS shows
    nothing under 100 messages/day, 3.3; Postmaster needs 'hundreds', 9.3)."""
    keep_warm_volume: float = 1_000.0
    """Accepted emails/day per provider at which reputation is earned at the full pace and kept (SES: 'around
    1,000 emails every day to each email provider', 1.1)."""
    idle_days_to_cold: float = 30.0
    """Idle days after which 90% of earned reputation is gone (SendGrid, Braze: 30 days, 4.1)."""
    complaint_safe: float = 0.001
    """Complaint rate below which reputation grows freely (Gmail < 0.1%, 3.1)."""
    complaint_limit: float = 0.003
    """Complaint rate that drives junk placement and, sustained, blocks (Gmail/Yahoo 0.3%, 3.1-3.2)."""
    complaint_memory_days: float = 7.0
    """Providers judge an exponentially weighted complaint rate with this mean age (Gmail: 7 consecutive days
    below 0.3% for mitigation, 3.1). ASSUMPTION on the form."""
    spike_penalty: float = 0.04
    """Reputation lost per unit of volume ratio (today's first attempts over the sender's own recent peak) above the
    spike allowance ('immediately doubling previously sent volumes ... reputation drops', Google 3.1); on a new IP's
    first day the reference is its cold acceptance ('Start with a low sending volume', 3.1). ASSUMPTION on the size."""
    complaint_penalty: float = 0.06
    """Reputation lost per day per multiple of the complaint limit exceeded. ASSUMPTION."""
    bounce_penalty: float = 1.0
    """Reputation lost per day per unit of hard-bounce rate above 2% (SES best < 2%, 1.4). ASSUMPTION."""
    trap_penalty: float = 0.01
    """Reputation lost per spam-trap hit ('even a small number of spamtrap hits can have a very negative
    effect', SES, 9.5). ASSUMPTION on the size."""
    escalation_start: float = 3.0
    """Sustained excess (fresh mail offered / the day's acceptance limit, geometrically weighted over recent days)
    above which a provider escalates (9.2 INFERENCE: an excess that repeats for about 2 days escalates to blocks
    or the spam folder). ASSUMPTION: a gentle ramp that meets a low limit is deferred, not punished."""
    escalation_full: float = 10.0
    """Sustained excess at which escalation is complete (a whole stream on a cold IP: 10-100x its limit). ASSUMPTION."""
    strain_memory_days: float = 2.0
    """Mean age of that weighted excess (Microsoft: soft limit, then a hard block ~2 days later, 9.2)."""
    strain_penalty: float = 0.1
    """Reputation lost per day at full escalation. ASSUMPTION."""
    listing_half_life_days: float = 7.0
    """Half-life of the blocklist-like memory of trap hits (Spamhaus CSS records expire 3 days after the spamming
    stops; ISP blocks last 2 days to a week, 4.1, 9.4). ASSUMPTION."""
    listing_threshold: float = 3.0
    """Weighted trap hits from which a blocklist-like listing blocks mail, fully at twice as many (listings need
    repeated hits and ongoing evidence, 9.5). ASSUMPTION."""

    # --- routes and retries
    retry_window_hours: float = 72.0
    """Deferred mail is retried this long, then bounces (72 h at SendGrid/SparkPost/Braze, 3.5)."""
    overflow: Overflow = "shared_pool"
    """Where mail not put on the new IP goes (SES first dedicated IP: the shared pool, 1.1). ``mixed`` draws one
    of the three routes per episode, with equal odds: a training family that meets every route the suite has."""
    pool_quality: tuple[float, float] = (0.8, 0.95)
    """Range of the overflow route's inbox placement as a share of a reputable dedicated IP's, drawn per episode:
    a shared pool is an average sender (Validity global rate, 4.3, 9.6) that the agent cannot change. ASSUMPTION."""
    pool_headroom: float = 0.5
    """warm_pool only: share of the new IP's demand the warm IPs can absorb each day (they have finite headroom,
    which is why the IP is added). Mail beyond it waits and expires after the retry window. ASSUMPTION."""

    # --- enforcement (account-wide: every route counts)
    enforcement: Enforcement = "ses"
    """SES pauses the account at bounce >= 10% or complaint >= 0.5%, over all mail the account sends (1.4, 9.7)."""
    pause_bounce_rate: float = 0.10
    pause_complaint_rate: float = 0.005
    representative_volume: float = 1_000.0
    """Emails in the weekly window before SES judges rates ('representative volume', 1.4). ASSUMPTION."""

    # --- the dashboards the sender steers by
    postmaster_min_volume: float = 500.0
    """Gmail emails/day below which Postmaster Tools shows no IP reputation ('up to the order of hundreds', 9.3;
    third-party reports 100-1,000). ASSUMPTION within that range."""
    snds_min_volume: float = 100.0
    """Microsoft emails/day below which SNDS shows nothing (3.3)."""

    # --- the objective
    reward_complaint_cost: float = 300.0
    """Reward units lost per complaint, in inboxed emails. ASSUMPTION: at SES's review rate (0.1%) complaints
    cost 30% of the day's value, at its pause rate (0.5%) more than all of it (docs/model.md)."""
    reward_bounce_cost: float = 5.0
    reward_block_cost: float = 1.0
    reward_lost_cost: float = 1.0
    reward_deferral_cost: float = 0.1
    reward_pause_penalty: float = 30.0
    """One-off penalty when SES pauses the account, in days of full value. ASSUMPTION."""
    reward_ready_value: float = 10.0
    """At the end of the episode, days of full value for an IP that is ready (carries its whole stream with a
    HIGH reputation at every provider), pro rata by provider share. ASSUMPTION: the post-period it will serve."""

    randomize: bool = False
    """Draw per-episode provider speeds, cold acceptance, list quality, demand and provider mix (Randomized)."""
    anchor_share: float = 0.0
    """Randomized only: share of episodes drawn from this scenario's own prior around its published values (as
    NewIP-v1 draws them, clipped to the family's ranges) instead of the family's uniform ranges. A training
    choice, not a fact about providers: it weights the family toward the published centres (docs/training.md);
    0 keeps it uniform. Ignored by a fixed scenario and a held-out profile."""
    profile: str | None = None
    """Name of a held-out profile (``envs.HELDOUT_PROFILES``) to fix the episode to."""

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def retry_days(self) -> int:
        """Days a deferred email is retried; a 12 h window still gets one retry the next day."""
        return max(1, math.ceil(self.retry_window_hours / 24.0))

    def tier_share(self, list_quality: float | None = None) -> tuple[float, ...]:
        """Audience composition by tier for a list quality (engaged tiers keep a 45:25:15 ratio)."""
        q = self.list_quality if list_quality is None else list_quality
        older = 0.55 - 0.5 * q
        engaged = 1.0 - older
        return (engaged * 45 / 85, engaged * 25 / 85, engaged * 15 / 85, older)

    def replace(self, **overrides: Any) -> Scenario:
        """A validated copy with ``overrides``; unknown names get a 'did you mean' hint."""
        known = {f.name for f in dataclasses.fields(self)}
        for key in overrides:
            if key not in known:
                raise ScenarioError(f"unknown scenario parameter {key!r}{did_you_mean(key, known)}")
        coerced = {k: _coerce(k, v, getattr(self, k)) for k, v in overrides.items()}
        return dataclasses.replace(self, **coerced)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Accept lists for tuple fields and ints for float fields; reject the rest early."""
    if isinstance(default, tuple):
        try:
            return tuple(float(v) for v in value)
        except (TypeError, ValueError, OverflowError):
            raise ScenarioError(f"scenario parameter {name!r} must be a sequence of numbers, "
                                f"got {shorten(value)}") from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"scenario parameter {name!r} must be true or false, got {shorten(value)}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        if not is_finite_number(value):
            raise ScenarioError(f"scenario parameter {name!r} must be a finite number, got {shorten(value)}")
        return float(value)
    return value


PER_PROVIDER = ("provider_share", "warmup_days", "cold_capacity", "inbox_rate")
PER_TIER = ("tier_complaint_rate", "tier_unknown_user_rate", "tier_open_rate", "tier_trap_rate")
RANGES = ("initial_reputation", "machine_open_share", "pool_quality")
NON_NEGATIVE = ("capacity_noise", "spike_penalty", "complaint_penalty", "bounce_penalty", "trap_penalty",
                "strain_penalty", "keep_warm_volume", "register_volume", "tier_rate_spread", "warmup_days_spread",
                "cold_capacity_spread", "inbox_rate_spread", "inbox_noise", "engagement_noise", "pool_headroom",
                "reward_complaint_cost", "reward_bounce_cost", "reward_block_cost", "reward_lost_cost",
                "reward_deferral_cost", "reward_pause_penalty", "reward_ready_value", "representative_volume",
                "postmaster_min_volume", "snds_min_volume")
POSITIVE = ("idle_days_to_cold", "complaint_memory_days", "strain_memory_days", "listing_half_life_days",
            "listing_threshold")


def _validate(s: Scenario) -> None:
    def fail(msg: str) -> None:
        raise ScenarioError(f"scenario {s.name!r}: {msg}")

    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        default = f.default
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            fail(f"{f.name} must be a number, got {shorten(value)}")
        if isinstance(default, str) and not isinstance(value, str):
            fail(f"{f.name} must be a string, got {shorten(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            fail(f"{f.name} must be finite, got {shorten(value)}")
        if isinstance(value, tuple) and not all(isinstance(v, float) and math.isfinite(v) for v in value):
            fail(f"{f.name} must hold finite numbers, got {shorten(value)}")
    for name in PER_PROVIDER:
        if len(getattr(s, name)) != len(PROVIDERS):
            fail(f"{name} needs one value per provider {PROVIDERS}, got {len(getattr(s, name))}")
    for name in PER_TIER:
        values = getattr(s, name)
        if len(values) != len(TIERS):
            fail(f"{name} needs one value per tier {TIERS}, got {len(values)}")
        if not all(0.0 <= v <= 1.0 for v in values):
            fail(f"{name} values must lie in [0, 1], got {values}")
    for name in RANGES:
        value = getattr(s, name)
        if len(value) != 2 or not 0.0 <= value[0] <= value[1] <= 1.0:
            fail(f"{name} must be a range (low, high) inside [0, 1], got {value}")
    for name in NON_NEGATIVE:
        if getattr(s, name) < 0:
            fail(f"{name} must be non-negative, got {getattr(s, name)}")
    for name in POSITIVE:
        if getattr(s, name) <= 0:
            fail(f"{name} must be positive, got {getattr(s, name)}")
    if not is_whole_number(s.horizon, 1, 1000):
        fail(f"horizon must be a whole number of days in [1, 1000], got {shorten(s.horizon)}")
    if not 1.0 <= s.demand <= 1e8:
        fail(f"demand must be in [1, 1e8] emails/day, got {s.demand}")
    if any(v < 0 for v in s.provider_share) or not math.isclose(sum(s.provider_share), 1.0, abs_tol=1e-6):
        fail(f"provider_share must be non-negative and sum to 1, got {s.provider_share}")
    if not 0.0 <= s.anchor_share <= 1.0:
        fail(f"anchor_share must be in [0, 1], got {s.anchor_share}")
    microsoft = s.provider_share[PROVIDERS.index("microsoft")]
    if s.anchor_share > 0 and s.randomize and microsoft > TRAIN_MAX_MICROSOFT_SHARE:
        fail(f"anchor_share draws around this scenario's provider_share, whose Microsoft share must lie inside the "
             f"training family (at most {TRAIN_MAX_MICROSOFT_SHARE}), got {s.provider_share}")
    if not 0.0 <= s.list_quality <= 1.0:
        fail(f"list_quality must be in [0, 1], got {s.list_quality}")
    if any(v <= 0 for v in s.warmup_days):
        fail(f"warmup_days must be positive, got {s.warmup_days}")
    if any(v <= 0 for v in s.cold_capacity) or s.warm_capacity < max(s.cold_capacity):
        fail("cold_capacity must be positive and warm_capacity at least the largest of them")
    if not all(0.0 < v <= 1.0 for v in s.inbox_rate):
        fail(f"inbox_rate values must lie in (0, 1], got {s.inbox_rate}")
    if not 0.0 < s.cold_reputation < s.high_reputation < 1.0:
        fail(f"need 0 < cold_reputation < high_reputation < 1, got {s.cold_reputation}, {s.high_reputation}")
    if s.spike_allowance <= 1.0:
        fail(f"spike_allowance must exceed 1, got {s.spike_allowance}")
    if not 0.0 <= s.volume_memory < 1.0:
        fail(f"volume_memory must be in [0, 1), got {s.volume_memory}")
    if not 0.0 < s.complaint_safe < s.complaint_limit < 1.0:
        fail("need 0 < complaint_safe < complaint_limit < 1")
    if not 1.0 < s.escalation_start < s.escalation_full:
        fail(f"need 1 < escalation_start < escalation_full, got {s.escalation_start}, {s.escalation_full}")
    if not 1.0 <= s.register_volume < s.keep_warm_volume:
        fail(f"need 1 <= register_volume < keep_warm_volume, got {s.register_volume}, {s.keep_warm_volume}")
    if not 1.0 <= s.retry_window_hours <= 24 * 30:
        fail(f"retry_window_hours must be in [1, 720], got {s.retry_window_hours}")
    if s.overflow not in ("shared_pool", "warm_pool", "none", "mixed"):
        fail(f"overflow must be 'shared_pool', 'warm_pool', 'none' or 'mixed', got {shorten(s.overflow)}")
    if s.audience_order not in ("engaged_first", "random"):
        fail(f"audience_order must be 'engaged_first' or 'random', got {shorten(s.audience_order)}")
    if s.enforcement not in ("ses", "none"):
        fail(f"enforcement must be 'ses' or 'none', got {shorten(s.enforcement)}")
    if not 0 < s.pause_bounce_rate <= 1 or not 0 < s.pause_complaint_rate <= 1:
        fail("pause rates must be in (0, 1]")
    if s.profile is not None and s.profile not in HELDOUT_PROFILES:
        fail(f"unknown profile {shorten(s.profile)}; known: {', '.join(sorted(HELDOUT_PROFILES))}")


NEW_IP = Scenario(name=f"NewIP-v{VERSION}")
"""SES's first dedicated IP: overflow to the shared pool, demand a single standard IP can carry."""

ADD_IP = Scenario(
    name=f"AddIP-v{VERSION}",
    demand=50_000.0,  # the new IP's quarter of a 200,000/day stream, within SES's 50,000/day per IP (1.1)
    overflow="warm_pool",
    initial_reputation=(0.5, 0.5),  # same domain and SPF record: 'inherit some of the domain's reputation' (2.7)
)
"""A new IP joins a pool of warm IPs whose finite headroom absorbs part of the overflow."""

SELF_HOSTED = Scenario(
    name=f"SelfHosted-v{VERSION}",
    demand=30_000.0,
    overflow="none",
    enforcement="none",
    retry_window_hours=120.0,  # Postfix maximal_queue_lifetime 5d (3.5)
)
"""A self-hosted MTA with one IP: mail not sent waits in the queue and expires after the window."""

REWARM = Scenario(
    name=f"Rewarm-v{VERSION}",
    initial_reputation=(0.4, 0.6),  # what 30+ idle days leave of a warm IP's reputation (4.1); hidden
)
"""An IP that was warm, then idle 30+ days (SES 'restart warm-up'); what is left of it is hidden."""

RANDOMIZED = Scenario(name=f"Randomized-v{VERSION}", randomize=True)
"""Per-episode draws of provider speeds, cold acceptance, list quality, demand and provider mix (families.py)."""

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (NEW_IP, ADD_IP, SELF_HOSTED, REWARM, RANDOMIZED)}


def get_scenario(name: str, /, **overrides: Any) -> Scenario:
    """The named scenario (with or without the ``ipwarmup/`` prefix), with validated overrides."""
    if not isinstance(name, str):
        raise ScenarioError(f"a scenario is named by a string such as 'NewIP-v1', got {shorten(name)}")
    key = name.removeprefix("ipwarmup/")
    if key not in SCENARIOS:
        suffix = did_you_mean(key, SCENARIOS, prefix="ipwarmup/")
        raise ScenarioError(f"unknown scenario {name!r}{suffix} (known: {', '.join(SCENARIOS)})")
    return SCENARIOS[key].replace(**overrides) if overrides else SCENARIOS[key]


__all__ = [
    "PROVIDERS",
    "TIERS",
    "Scenario",
    "ScenarioError",
    "SCENARIOS",
    "VERSION",
    "get_scenario",
]
