"""Mailbox providers and audience engagement tiers as data records, in the fixed order every array uses.

Each number's source is named in ``docs/calibration/domain-facts.md`` section terms (``2.5``) or it is
an ``ASSUMPTION`` explained in ``docs/model.md``. Scenarios take their per-provider defaults from here;
changing a provider means changing its record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Escalation = Literal["block", "junk"]
Dashboard = Literal["postmaster", "snds"]


@dataclass(frozen=True)
class Provider:
    """One mailbox provider: who it is, how it treats a new IP by default, and what it shows the sender."""

    name: str
    audience_share: float
    """Share of a typical consumer list. ASSUMPTION."""
    warmup_days: float
    """Days to a HIGH reputation at full activity (2 to 6 weeks, 1.1; Microsoft 'a couple of weeks', 2.7)."""
    cold_capacity: float
    """Central emails/day a cold IP gets accepted before deferrals: the geometric middle of the published day-1
    range (tens to thousands per provider: SendGrid ~480/day in total, SparkPost and Braze 50-200, Oracle's
    large-sender plan 5,000-10,000 per ISP; 2.1-2.5, 9.1). Microsoft and Yahoo lower (Microsoft 4.7.650
    deferrals reported at 500-3,000/day, 9.2; AOL capped new senders first, 2.4); iCloud ASSUMPTION."""
    inbox_rate: float
    """Inbox placement of a trusted sender (Validity 2026 benchmark, 4.3; 'other' = the global rate)."""
    feedback_loop: bool
    """Whether complaints reach the sender (iCloud has no feedback loop, 3.4)."""
    escalation: Escalation
    """What sustained excess escalates to: a 5xx block (Microsoft: soft limit, then 550 S3150 two days later;
    openstreetmap issue 1247, 9.2) or the spam folder (Gmail/Yahoo bulking, 2.4, 9.2)."""
    dashboard: Dashboard | None
    """The reputation dashboard the provider offers senders: Gmail Postmaster Tools, Microsoft SNDS, or none."""
    recipient_domains: tuple[str, ...]
    """Recipient domains routed to this provider; ``name.*`` is ``name`` under any public suffix."""


PROVIDER_RECORDS: tuple[Provider, ...] = (
    Provider("gmail", 0.40, 14.0, 700.0, 0.898, True, "junk", "postmaster", ("gmail.com", "googlemail.com")),
    Provider("microsoft", 0.20, 21.0, 400.0, 0.774, True, "block", "snds",
             ("outlook.*", "hotmail.*", "live.*", "msn.com")),
    Provider("yahoo", 0.15, 28.0, 400.0, 0.873, True, "junk", None, ("yahoo.*", "aol.*", "ymail.com")),
    Provider("apple", 0.10, 40.0, 200.0, 0.82, False, "junk", None, ("icloud.com", "me.com", "mac.com")),
    Provider("other", 0.15, 21.0, 700.0, 0.872, True, "block", None, ()),
)
"""Every provider, in the order of every per-provider array, observation block and action entry."""

PROVIDERS: tuple[str, ...] = tuple(p.name for p in PROVIDER_RECORDS)
"""Provider names in array order."""
FALLBACK_PROVIDER = "other"
"""The provider that takes every recipient domain no record names."""
FEEDBACK_LOOP: np.ndarray = np.array([p.feedback_loop for p in PROVIDER_RECORDS])
"""[P] bool: providers whose complaints the sender sees."""
FEEDBACK_LOOP.flags.writeable = False
ESCALATES_TO_BLOCK: np.ndarray = np.array([p.escalation == "block" for p in PROVIDER_RECORDS])
"""[P] bool: providers that answer sustained excess with 5xx blocks rather than the spam folder."""
ESCALATES_TO_BLOCK.flags.writeable = False
POSTMASTER = next(i for i, p in enumerate(PROVIDER_RECORDS) if p.dashboard == "postmaster")
"""Index of the provider whose Postmaster Tools band the sender sees (Gmail)."""
SNDS = next(i for i, p in enumerate(PROVIDER_RECORDS) if p.dashboard == "snds")
"""Index of the provider whose SNDS colour the sender sees (Microsoft)."""
MACHINE_OPENS = PROVIDERS.index("apple")
"""Apple Mail Privacy Protection: opens there are inflated by machine opens (9.8)."""


def per_provider(field: str) -> tuple[float, ...]:
    """One numeric field of every provider record, in array order (a scenario default)."""
    return tuple(float(getattr(p, field)) for p in PROVIDER_RECORDS)


@dataclass(frozen=True)
class Tier:
    """An engagement tier of the mailing list, by the recipient's last open."""

    name: str
    description: str


TIER_RECORDS: tuple[Tier, ...] = (
    Tier("opened_30d", "last open within the last 30 days"),
    Tier("opened_60d", "last open 31 to 60 days ago"),
    Tier("opened_90d", "last open 61 to 90 days ago"),
    Tier("older", "last open more than 90 days ago, or never"),
)
"""Most engaged first (SparkPost's 30/60/90-day gates, 2.4); the dedicated IP takes them in this order."""
TIERS: tuple[str, ...] = tuple(t.name for t in TIER_RECORDS)
