"""Scenario configuration: every number the simulator uses, with its source.

A :class:`Scenario` is a frozen, validated dataclass. Each field's comment names its source in
``shared/calibration/domain-facts.md`` (section numbers) or says ``ASSUMPTION``; ``docs/model.md``
explains the assumptions. Named scenarios are versioned (``-v0``): change a number, bump the
version.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from core.providers import PROVIDERS, TIERS, per_provider
from core.util import did_you_mean
from envs.profiles import HELDOUT_PROFILES

Overflow = Literal["shared_pool", "warm_pool", "none"]
AudienceOrder = Literal["engaged_first", "random"]
Enforcement = Literal["ses", "none"]


class ScenarioError(ValueError):
    """A scenario name or parameter is invalid; the message says which and why."""


@dataclass(frozen=True)
class Scenario:
    """One warm-up situation: the sender's audience, the providers and the rules of the game."""

    name: str = "custom"
    horizon: int = 60
    """Days per episode: the 45-day SES plan plus a 15-day post-warm-up period (1.1)."""
    demand: float = 40_000.0
    """Emails per day the new IP should carry when warm. NewIP: at most 50,000 (SES, 1.1)."""
    provider_share: tuple[float, ...] = per_provider("audience_share")
    """Share of the audience per provider (``core.providers``). ASSUMPTION (typical consumer list)."""
    list_quality: float = 0.8
    """0..1; sets the share of never-engaged ("older") recipients: 0.55 - 0.5 * quality. ASSUMPTION."""
    tier_complaint_rate: tuple[float, ...] = (0.0002, 0.0004, 0.0010, 0.0035)
    """Complaints per inboxed email by tier. ASSUMPTION anchored on Return Path's 0.17% average (4.3)."""
    tier_unknown_user_rate: tuple[float, ...] = (0.003, 0.008, 0.02, 0.06)
    """Hard bounces (unknown users) per first attempt by tier. ASSUMPTION (SES best < 2%, 1.4)."""
    tier_open_rate: tuple[float, ...] = (0.35, 0.20, 0.10, 0.03)
    """Opens per inboxed email by tier. ASSUMPTION (Braze: > 25% open means good placement, 2.3)."""
    audience_order: AudienceOrder = "engaged_first"
    """The new IP takes the most engaged recipients first, as every ESP advises (4.3)."""

    warmup_days: tuple[float, ...] = per_provider("warmup_days")
    """Days to HIGH reputation per provider at full activity: 2 to 6 weeks (1.1; Microsoft 'a couple
    of weeks', 2.7; AcelleMail's per-ISP table puts Gmail fastest and iCloud slowest, 2.7)."""
    cold_capacity: tuple[float, ...] = per_provider("cold_capacity")
    """Emails/day a cold IP gets accepted per provider (Oracle per-ISP day 1, 2.5; iCloud ASSUMPTION)."""
    warm_capacity: float = 2_000_000.0
    """Emails/day per provider a fully trusted IP gets accepted (Salesforce: > 2 M/day draws
    deferrals, 2.6)."""
    spike_allowance: float = 1.6
    """Accepted volume may exceed the recent peak by this factor before throttling (Google: doubling
    hurts, 3.1; +20-40%/day is safe, 4.2). ASSUMPTION between 1.4 and 2.0."""
    volume_memory: float = 0.9
    """Daily fade of the recent-peak volume a provider judges spikes against. ASSUMPTION."""
    capacity_noise: float = 0.1
    """Log-normal sigma of the day's throttle limit (provider load). ASSUMPTION."""
    cold_reputation: float = 0.4
    """Reputation of an IP with no history (Postmaster: between LOW and MEDIUM, 3.1). ASSUMPTION."""
    high_reputation: float = 0.8
    """Reputation at which a provider counts the IP warm (Postmaster HIGH, 3.1). ASSUMPTION."""
    initial_reputation: tuple[float, float] = (0.4, 0.4)
    """Range the episode's initial reputation is drawn from (Rewarm: what is left after 30+ idle days)."""
    keep_warm_volume: float = 1_000.0
    """Emails/day per provider that keep an IP warm (SES, 1.1)."""
    idle_days_to_cold: float = 30.0
    """Idle days after which 90% of earned reputation is gone (SendGrid, Braze: 30 days, 4.1)."""
    inbox_rate: tuple[float, ...] = per_provider("inbox_rate")
    """Inbox placement of a trusted sender (Validity 2026 benchmark, 4.3; 'other' = global)."""
    complaint_safe: float = 0.001
    """Complaint rate below which reputation grows freely (Gmail < 0.1%, 3.1)."""
    complaint_limit: float = 0.003
    """Complaint rate that drives junk placement and, sustained, blocks (Gmail/Yahoo 0.3%, 3.1-3.2)."""
    complaint_memory_days: float = 7.0
    """Providers judge an exponentially weighted complaint rate with this mean age (Gmail: 7
    consecutive days below 0.3% for mitigation, 3.1). ASSUMPTION on the form."""
    spike_penalty: float = 0.08
    """Reputation lost per unit of volume ratio above the spike allowance. ASSUMPTION."""
    complaint_penalty: float = 0.06
    """Reputation lost per day per multiple of the complaint limit exceeded. ASSUMPTION."""
    bounce_penalty: float = 1.0
    """Reputation lost per day per unit of hard-bounce rate above 2% (SES best < 2%, 1.4). ASSUMPTION."""
    retry_window_hours: float = 72.0
    """Deferred mail is retried this long, then bounces (72 h at SendGrid/SparkPost/Braze, 3.5)."""
    overflow: Overflow = "shared_pool"
    """Where mail not put on the new IP goes (SES first dedicated IP: shared pool, 1.1)."""
    enforcement: Enforcement = "ses"
    """SES pauses the account at bounce >= 10% or complaint >= 0.5% (1.4)."""
    pause_bounce_rate: float = 0.10
    pause_complaint_rate: float = 0.005
    representative_volume: float = 1_000.0
    """Emails in the weekly window before SES judges rates ('representative volume', 1.4). ASSUMPTION."""

    reward_complaint_cost: float = 300.0
    """Reward units lost per complaint, in inboxed emails. ASSUMPTION: at SES's review rate (0.1%) complaints
    cost 30% of the day's value, at its pause rate (0.5%) more than all of it (docs/model.md)."""
    reward_bounce_cost: float = 5.0
    reward_block_cost: float = 1.0
    reward_lost_cost: float = 1.0
    reward_deferral_cost: float = 0.1
    reward_pause_penalty: float = 30.0
    """One-off penalty when SES pauses the account, in days of full value. ASSUMPTION."""

    randomize: bool = False
    """Draw per-episode provider speeds, list quality, demand and provider mix (Randomized-v0)."""
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
        except (TypeError, ValueError):
            raise ScenarioError(f"scenario parameter {name!r} must be a sequence of numbers, got {value!r}") from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"scenario parameter {name!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _validate(s: Scenario) -> None:
    def fail(msg: str) -> None:
        raise ScenarioError(f"scenario {s.name!r}: {msg}")

    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        default = f.default
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            fail(f"{f.name} must be a number, got {value!r}")
        if isinstance(default, str) and not isinstance(value, str):
            fail(f"{f.name} must be a string, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            fail(f"{f.name} must be finite, got {value!r}")
        if isinstance(value, tuple) and not all(isinstance(v, float) and math.isfinite(v) for v in value):
            fail(f"{f.name} must hold finite numbers, got {value!r}")
    n = len(PROVIDERS)
    for name in ("provider_share", "warmup_days", "cold_capacity", "inbox_rate"):
        if len(getattr(s, name)) != n:
            fail(f"{name} needs one value per provider {PROVIDERS}, got {len(getattr(s, name))}")
    for name in ("tier_complaint_rate", "tier_unknown_user_rate", "tier_open_rate"):
        values = getattr(s, name)
        if len(values) != len(TIERS):
            fail(f"{name} needs one value per tier {TIERS}, got {len(values)}")
        if not all(0.0 <= v <= 1.0 for v in values):
            fail(f"{name} values must lie in [0, 1], got {values}")
    if not isinstance(s.horizon, int) or isinstance(s.horizon, bool) or not 1 <= s.horizon <= 1000:
        fail(f"horizon must be a whole number of days in [1, 1000], got {s.horizon!r}")
    if not 1.0 <= s.demand <= 1e8:
        fail(f"demand must be in [1, 1e8] emails/day, got {s.demand}")
    if any(v < 0 for v in s.provider_share) or not math.isclose(sum(s.provider_share), 1.0, abs_tol=1e-6):
        fail(f"provider_share must be non-negative and sum to 1, got {s.provider_share}")
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
    lo, hi = s.initial_reputation
    if not 0.0 <= lo <= hi <= 1.0:
        fail(f"initial_reputation must be a range inside [0, 1], got {s.initial_reputation}")
    if s.spike_allowance <= 1.0:
        fail(f"spike_allowance must exceed 1, got {s.spike_allowance}")
    for name in ("volume_memory",):
        if not 0.0 <= getattr(s, name) < 1.0:
            fail(f"{name} must be in [0, 1), got {getattr(s, name)}")
    if not 0.0 < s.complaint_safe < s.complaint_limit < 1.0:
        fail("need 0 < complaint_safe < complaint_limit < 1")
    for name in ("capacity_noise", "spike_penalty", "complaint_penalty", "bounce_penalty", "keep_warm_volume",
                 "reward_complaint_cost", "reward_bounce_cost", "reward_block_cost", "reward_lost_cost",
                 "reward_deferral_cost", "reward_pause_penalty", "representative_volume"):
        if getattr(s, name) < 0:
            fail(f"{name} must be non-negative, got {getattr(s, name)}")
    if s.idle_days_to_cold <= 0 or s.complaint_memory_days <= 0:
        fail("idle_days_to_cold and complaint_memory_days must be positive")
    if not 1.0 <= s.retry_window_hours <= 24 * 30:
        fail(f"retry_window_hours must be in [1, 720], got {s.retry_window_hours}")
    if s.overflow not in ("shared_pool", "warm_pool", "none"):
        fail(f"overflow must be 'shared_pool', 'warm_pool' or 'none', got {s.overflow!r}")
    if s.audience_order not in ("engaged_first", "random"):
        fail(f"audience_order must be 'engaged_first' or 'random', got {s.audience_order!r}")
    if s.enforcement not in ("ses", "none"):
        fail(f"enforcement must be 'ses' or 'none', got {s.enforcement!r}")
    if not 0 < s.pause_bounce_rate <= 1 or not 0 < s.pause_complaint_rate <= 1:
        fail("pause rates must be in (0, 1]")
    if s.profile is not None:
        if s.profile not in HELDOUT_PROFILES:
            fail(f"unknown profile {s.profile!r}; known: {', '.join(sorted(HELDOUT_PROFILES))}")


NEW_IP = Scenario(name="NewIP-v0")
"""SES's first dedicated IP: overflow to the shared pool, demand a single standard IP can carry."""

ADD_IP = Scenario(
    name="AddIP-v0",
    demand=150_000.0,
    overflow="warm_pool",
    initial_reputation=(0.5, 0.5),  # same domain and SPF record: 'inherit some of the domain's reputation' (2.7)
)
"""A new IP joins a pool of warm IPs that absorb the overflow; it should carry its 1/4 share of 600k/day."""

SELF_HOSTED = Scenario(
    name="SelfHosted-v0",
    demand=30_000.0,
    overflow="none",
    enforcement="none",
    retry_window_hours=120.0,  # Postfix maximal_queue_lifetime 5d (3.5)
)
"""A self-hosted MTA with one IP: mail not sent waits in the queue and expires after the window."""

REWARM = Scenario(
    name="Rewarm-v0",
    initial_reputation=(0.4, 0.6),  # what 30+ idle days leave of a warm IP's reputation (4.1); hidden
)
"""An IP that was warm, then idle 30+ days (SES 'restart warm-up'); what is left of it is hidden."""

RANDOMIZED = Scenario(name="Randomized-v0", randomize=True)
"""Per-episode draws of provider speeds, list quality, demand and provider mix (see families.py)."""

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (NEW_IP, ADD_IP, SELF_HOSTED, REWARM, RANDOMIZED)}


def get_scenario(name: str, /, **overrides: Any) -> Scenario:
    """The named scenario (with or without the ``ipwarmup/`` prefix), with validated overrides."""
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
    "get_scenario",
]
