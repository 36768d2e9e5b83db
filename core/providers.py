"""Mailbox providers and audience engagement tiers as data records, in the fixed order every array uses.

Each number's source is named in ``shared/calibration/domain-facts.md`` section terms (``2.5``) or it is
an ``ASSUMPTION`` explained in ``docs/model.md``. Scenarios take their per-provider defaults from here;
changing a provider means changing its record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Provider:
    """One mailbox provider: who it is, how it treats a new IP by default, and what it shows the sender."""

    name: str
    audience_share: float
    """Share of a typical consumer list. ASSUMPTION."""
    warmup_days: float
    """Days to a HIGH reputation at full activity (2 to 6 weeks, 1.1; Microsoft 'a couple of weeks', 2.7)."""
    cold_capacity: float
    """Emails/day a cold IP gets accepted (Oracle per-ISP day 1, 2.5; iCloud ASSUMPTION)."""
    inbox_rate: float
    """Inbox placement of a trusted sender (Validity 2026 benchmark, 4.3; 'other' = the global rate)."""
    feedback_loop: bool
    """Whether complaints reach the sender (iCloud has no feedback loop, 3.4)."""
    recipient_domains: tuple[str, ...]
    """Recipient domains routed to this provider; ``name.*`` is ``name`` under any public suffix."""


PROVIDER_RECORDS: tuple[Provider, ...] = (
    Provider("gmail", 0.40, 14.0, 10_000.0, 0.898, True, ("gmail.com", "googlemail.com")),
    Provider("microsoft", 0.20, 21.0, 7_500.0, 0.774, True, ("outlook.*", "hotmail.*", "live.*", "msn.com")),
    Provider("yahoo", 0.15, 28.0, 5_000.0, 0.873, True, ("yahoo.*", "aol.*", "ymail.com")),
    Provider("apple", 0.10, 40.0, 5_000.0, 0.82, False, ("icloud.com", "me.com", "mac.com")),
    Provider("other", 0.15, 21.0, 10_000.0, 0.872, True, ()),
)
"""Every provider, in the order of every per-provider array, observation block and action entry."""

PROVIDERS: tuple[str, ...] = tuple(p.name for p in PROVIDER_RECORDS)
"""Provider names in array order."""
FALLBACK_PROVIDER = "other"
"""The provider that takes every recipient domain no record names."""
FEEDBACK_LOOP: np.ndarray = np.array([p.feedback_loop for p in PROVIDER_RECORDS])
"""[P] bool: providers whose complaints the sender sees."""
FEEDBACK_LOOP.flags.writeable = False


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
