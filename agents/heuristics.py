"""Adaptive heuristics practitioners run today, closed-loop on the observation alone.

* :class:`BrazeAutomated`: Braze's automated IP warming: follow a schedule, hold volume flat the
  next day on bad metrics (domain-facts 2.3).
* :class:`AIMD`: per-provider multiplicative back-off on deferrals and blocks, gentle growth
  otherwise, as MTA traffic shapers do (KumoMTA, Haraka adaptive-rate; domain-facts 3.6).
* :class:`SESManaged`: an SES-managed-like per-ISP warm-up level that grows while healthy and
  drops when metrics or volume drop (domain-facts 1.3, 4.1).

Thresholds are module constants with their source, so tests and docs quote the same numbers.
"""

from __future__ import annotations

import numpy as np

from agents.policy import Memory, P, Policy, account_rates, available, rate, sent, share, volume_to_action
from agents.schedules import Schedule, get_schedule
from core.actions import share_to_action
from core.providers import FEEDBACK_LOOP

# Braze automated IP warming holds the next day's volume when any of these hold (domain-facts 2.3).
BRAZE_MIN_DELIVERED = 0.90  # "Delivery rate drops less than or equal to 90%"
BRAZE_MIN_OPEN = 0.10  # "Open rate less than 10%"
BRAZE_MAX_BOUNCE = 0.05  # "Bounces greater than 5%"
BRAZE_MAX_COMPLAINT = 0.001  # "Spam complaint rates greater than 0.1%"


class BrazeAutomated(Policy):
    """Braze automated warming over Braze's moderate schedule: advance one schedule day when healthy, else hold.

    Braze does not publish the automated tool's curve; its moderate table is the middle of its three
    published ones (ASSUMPTION). Memory per env: the schedule day to send next.
    """

    name = "braze-automated"

    def __init__(self, schedule: Schedule | None = None) -> None:
        super().__init__()
        self.schedule = schedule or get_schedule("braze-moderate")

    def initial_memory(self, n: int) -> Memory:
        return {"step": np.zeros(n)}

    @staticmethod
    def bad_metrics(obs: np.ndarray) -> np.ndarray:
        """Yesterday's account-wide metrics breach one of Braze's hold rules [n]; never on a day with no mail."""
        r = account_rates(obs)
        bad = (r["delivered"] <= BRAZE_MIN_DELIVERED) | (r["bounce"] > BRAZE_MAX_BOUNCE)
        bad |= (r["complaint"] > BRAZE_MAX_COMPLAINT) | (r["open"] < BRAZE_MIN_OPEN)
        return bad & (r["sent"] > 0)

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        step = self.memory["step"]
        step[:] = np.where(starts, 1.0, step + ~self.bad_metrics(obs))
        avail = available(obs)
        return volume_to_action(self.schedule.volume(step, avail), avail)


# AIMD traffic shaping per provider (domain-facts 3.6).
AIMD_START = 500.0
"""Emails per provider on day 1: 'several hundred' (SES dedicated-ip.md, 1.1)."""
AIMD_CONGESTED = 0.05
"""Deferred + blocked share of attempts that counts as a throttling signal. ASSUMPTION."""
AIMD_BACKOFF = 1.5
"""Divide the share by this on a throttling signal (Haraka adaptive-rate: delay x1.5 on 421/4.7.28)."""
AIMD_GROWTH = 1.25
"""Multiply the share by this on a clean day: inside the safe +20-40%/day band (4.2, stylized fact 3)."""


class AIMD(Policy):
    """Per-provider AIMD on yesterday's share (read from the observation, so no memory is needed)."""

    name = "aimd"

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        congested = (rate(obs, "deferred_rate") + rate(obs, "blocked_rate") > AIMD_CONGESTED) & (sent(obs) > 0)
        new_share = share(obs) * np.where(congested, 1.0 / AIMD_BACKOFF, AIMD_GROWTH)
        action = share_to_action(np.clip(new_share, 0.0, 1.0))
        avail = available(obs)
        first = volume_to_action(np.full_like(avail, AIMD_START), avail)
        return np.where(starts[:, None], first, action)


# SES-managed-like per-ISP controller (domain-facts 1.3: adaptive per ISP; 4.1: level drops with volume).
SES_MANAGED_START = 1_000.0
"""Warm-up level per provider on day 1: SES's 'about 1,000 emails every day to each provider' (1.1)."""
SES_MANAGED_GROWTH = 1.4
"""Level growth per healthy, fully used day (SendGrid's table grows x1.40/day, 2.1). ASSUMPTION for SES."""
SES_MANAGED_CUT = 0.5
"""Level multiplier on an unhealthy day. ASSUMPTION."""
SES_MANAGED_MAX_DEFERRED = 0.10
SES_MANAGED_MAX_BOUNCE = 0.05  # SES review threshold (1.4)
SES_MANAGED_MAX_COMPLAINT = 0.001  # SES review threshold (1.4)
SES_MANAGED_USED = 0.8
"""Below this fraction of its level actually sent, a provider's level falls to what was sent (volume drop)."""


class SESManaged(Policy):
    """A warm-up level (emails/day) per provider that grows while healthy and drops with metrics or volume.

    Memory per env: the level per provider. Each day, per provider: unhealthy (deferrals+blocks >
    10%, bounces > 5% or complaints > 0.1%) -> level x0.5; healthy and at least 80% of the level
    used -> level x1.4; healthy but volume dropped below 80% of the level -> level = what was sent
    (never below the start level). The rest of the mail overflows to the shared pool.
    """

    name = "ses-managed"

    def initial_memory(self, n: int) -> Memory:
        return {"level": np.full((n, P), SES_MANAGED_START)}

    @staticmethod
    def unhealthy(obs: np.ndarray) -> np.ndarray:
        """Per provider [n, P]: yesterday breached a deferral, bounce or complaint limit."""
        bad = rate(obs, "deferred_rate") + rate(obs, "blocked_rate") > SES_MANAGED_MAX_DEFERRED
        bad |= rate(obs, "bounce_rate") > SES_MANAGED_MAX_BOUNCE
        bad |= (rate(obs, "complaint_rate") > SES_MANAGED_MAX_COMPLAINT) & FEEDBACK_LOOP
        return bad & (sent(obs) > 0)

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        level = self.memory["level"]
        used = sent(obs)
        grown = np.where(used >= SES_MANAGED_USED * level, level * SES_MANAGED_GROWTH,
                         np.maximum(used, SES_MANAGED_START))
        updated = np.where(self.unhealthy(obs), np.maximum(level * SES_MANAGED_CUT, 1.0), grown)
        level[:] = np.where(starts[:, None], SES_MANAGED_START, updated)
        return volume_to_action(level, available(obs))
