"""What the sender sees the next morning, and how an action becomes tomorrow's per-provider share.

The observation is one flat float32 vector: ``PROVIDER_FEATURES`` for each provider (in
``PROVIDERS`` order), then ``GLOBAL_FEATURES``. :data:`LAYOUT` names every entry, so policies,
the exporter's policy card and the scheduler runtime decode it the same way. Hidden reputation is
never in it; iCloud's complaint rate is always 0 because iCloud has no feedback loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.dynamics import FBL, DayOutcome, State, _clip, ses_rates
from envs.scenario import PROVIDERS, TIERS

ACTION_DECADES = 4.0
"""The action spans 10^-4 (a = -1) to 100% (a = +1) of a provider's available mail (see action_to_share)."""
MIN_SHARE = 10.0**-ACTION_DECADES
MAX_DAY = 1000.0


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    low: float
    high: float
    description: str


PROVIDER_FEATURES: tuple[Feature, ...] = (
    Feature("warmup_share_log10", "log10(fraction)", -ACTION_DECADES, 0.0,
            "log10 of the share of the provider's available mail put on the new IP (the warm-up percentage / 100)"),
    Feature("sent_log10", "log10(1 + emails)", 0.0, 10.0, "attempts on the new IP: first attempts plus retries"),
    Feature("delivered_rate", "fraction of sent", 0.0, 1.0, "accepted by the provider (Delivery events)"),
    Feature("deferred_rate", "fraction of sent", 0.0, 1.0, "4xx deferrals (DeliveryDelay events)"),
    Feature("bounce_rate", "fraction of sent", 0.0, 1.0, "hard bounces, unknown users (permanent Bounce events)"),
    Feature("blocked_rate", "fraction of sent", 0.0, 1.0, "5xx rejections by reputation or content"),
    Feature("complaint_rate", "fraction of delivered", 0.0, 1.0, "feedback-loop complaints; always 0 for apple"),
    Feature("open_rate", "fraction of delivered", 0.0, 1.0, "opens per delivered email (junked mail is not opened)"),
    Feature("expired_log10", "log10(1 + emails)", 0.0, 10.0, "deferred or queued mail whose retry window closed"),
    Feature("queued_log10", "log10(1 + emails)", 0.0, 10.0, "mail waiting for retry or in the backlog"),
    Feature("demand_log10", "log10(1 + emails)", 0.0, 10.0,
            "mail available tomorrow for this provider: fresh demand plus the backlog"),
)
GLOBAL_FEATURES: tuple[Feature, ...] = (
    Feature("day", "days", 0.0, MAX_DAY, "days simulated in this episode (0 before the first)"),
    Feature("demand_total_log10", "log10(1 + emails)", 0.0, 10.0, "fresh mail per day, all providers"),
    Feature("ses_bounce_rate", "fraction", 0.0, 1.0, "SES dashboard bounce rate over its weighted window"),
    Feature("ses_complaint_rate", "fraction", 0.0, 1.0, "SES dashboard complaint rate over its weighted window"),
    *(Feature(f"audience_{tier}", "fraction of the list", 0.0, 1.0,
              f"share of the mailing list in engagement tier {tier!r} (last open), as the sender's ESP reports it")
      for tier in TIERS),
)
N_PROVIDER_FEATURES = len(PROVIDER_FEATURES)
OBS_SIZE = len(PROVIDERS) * N_PROVIDER_FEATURES + len(GLOBAL_FEATURES)


@dataclass(frozen=True)
class ObservationLayout:
    """Names and indices of the observation vector; ``index('gmail', 'sent_log10')`` and so on."""

    providers: tuple[str, ...] = PROVIDERS

    @property
    def names(self) -> list[str]:
        per = [f"{p}.{f.name}" for p in self.providers for f in PROVIDER_FEATURES]
        return per + [f.name for f in GLOBAL_FEATURES]

    def index(self, provider: str | None, feature: str) -> int:
        if provider is None:
            return len(self.providers) * N_PROVIDER_FEATURES + [f.name for f in GLOBAL_FEATURES].index(feature)
        return self.providers.index(provider) * N_PROVIDER_FEATURES + [f.name for f in PROVIDER_FEATURES].index(feature)

    def provider_block(self, obs: np.ndarray, feature: str) -> np.ndarray:
        """One per-provider feature from a batch of observations: [n, P]."""
        j = [f.name for f in PROVIDER_FEATURES].index(feature)
        per = obs[..., : len(self.providers) * N_PROVIDER_FEATURES].reshape(*obs.shape[:-1], len(self.providers), -1)
        return per[..., j]

    def global_value(self, obs: np.ndarray, feature: str) -> np.ndarray:
        return obs[..., self.index(None, feature)]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = [f.low for _ in self.providers for f in PROVIDER_FEATURES] + [f.low for f in GLOBAL_FEATURES]
        high = [f.high for _ in self.providers for f in PROVIDER_FEATURES] + [f.high for f in GLOBAL_FEATURES]
        return np.asarray(low, np.float32), np.asarray(high, np.float32)


LAYOUT = ObservationLayout()


def action_to_share(action: np.ndarray) -> np.ndarray:
    """Decode actions in [-1, 1] to the share of each provider's mail on the new IP (clipped).

    ``share = 10 ** (-4 * ((1 - a) / 2) ** 2)``: four decades, quadratic in log space so that steps
    are fine near full volume (where a few percent decide whether the least engaged tier is sent)
    and coarse near zero (where only the order of magnitude matters). The slope is zero at
    ``a = 1``, so a Gaussian policy whose mean drifts past the bound gains nothing by it.
    """
    a = _clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    return 10.0 ** (-ACTION_DECADES * ((1.0 - a) / 2.0) ** 2)


def share_to_action(share: np.ndarray) -> np.ndarray:
    """Inverse of :func:`action_to_share`; shares below 10^-4 map to -1, above 1 to +1."""
    s = _clip(np.asarray(share, dtype=np.float64), MIN_SHARE, 1.0)
    return (1.0 - 2.0 * np.sqrt(-np.log10(s) / ACTION_DECADES)).astype(np.float32)


def _rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0 where den is 0 (every numerator here is a part of its denominator, so it is 0 too)."""
    return num / np.maximum(den, 1)


def build_observation(
    outcome: DayOutcome,
    state: State,
    share: np.ndarray,
    demand: np.ndarray,
    next_available: np.ndarray,
    tier_share: np.ndarray,
) -> np.ndarray:
    """The [n, OBS_SIZE] float32 observation after a day: yesterday's stats, today's demand, the list's tiers.

    The list's engagement composition (``tier_share`` [n, K]) is known to any sender who orders mail
    engaged-first, and it is what tells how much of the list is worth mailing at all.
    """
    n = share.shape[0]
    out = np.empty((n, OBS_SIZE), np.float32)
    per = out[:, : len(PROVIDERS) * N_PROVIDER_FEATURES].reshape(n, len(PROVIDERS), N_PROVIDER_FEATURES)
    per[..., 0] = np.log10(_clip(share, MIN_SHARE, 1.0))
    sent = np.maximum(outcome.sent, 1)
    delivered = np.maximum(outcome.delivered, 1)
    per[..., 1] = np.log10(1.0 + outcome.sent)
    per[..., 2] = outcome.delivered / sent
    per[..., 3] = outcome.deferred / sent
    per[..., 4] = outcome.bounced / sent
    per[..., 5] = outcome.blocked / sent
    per[..., 6] = (outcome.complaints * FBL) / delivered
    per[..., 7] = outcome.opens / delivered
    per[..., 8] = np.log10(1.0 + outcome.expired)
    per[..., 9] = np.log10(1.0 + outcome.queued)
    per[..., 10] = np.log10(1.0 + next_available)
    bounce, complaint = ses_rates(state)
    glob = out[:, len(PROVIDERS) * N_PROVIDER_FEATURES :]
    glob[:, 0] = np.minimum(state.day, MAX_DAY)
    glob[:, 1] = np.log10(1.0 + demand.sum(-1))
    glob[:, 2] = _clip(bounce, 0.0, 1.0)
    glob[:, 3] = _clip(complaint, 0.0, 1.0)
    glob[:, 4 : 4 + len(TIERS)] = tier_share
    return out
