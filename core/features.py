"""The observation's feature table and the one computation of features from daily per-provider counts.

The observation is one flat float32 vector: :data:`PROVIDER_FEATURES` for each provider (in provider order),
then :data:`GLOBAL_FEATURES`. The simulator (``envs.observation``) and the scheduler-side runtime
(``deploy.runtime``) both call :func:`provider_features` and :func:`global_features`, and the exported
policy card copies the table's text, so a feature is defined in exactly one place. Hidden reputation is
never a feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.actions import ACTION_DECADES, MIN_SHARE, clip
from core.providers import PROVIDERS, TIER_RECORDS, TIERS

MAX_DAY = 1000.0
"""The ``day`` feature saturates here (the longest horizon a scenario accepts)."""
MAX_FRAME_STACK = int(MAX_DAY)
"""The most days one observation may stack, a run's or an exported card's: more than the longest horizon holds
only padding."""
SES_WINDOW_DAYS = 7.0
"""Mean age of the exponentially weighted window SES's dashboard rates are modelled over. ASSUMPTION."""
SES_DECAY = math.exp(-1.0 / SES_WINDOW_DAYS)
"""Daily weight decay of that window."""


@dataclass(frozen=True)
class Feature:
    """One observation entry: what it means, its unit and bounds, and how it is computed from statistics."""

    name: str
    unit: str
    low: float
    high: float
    description: str
    computed_as: str


PROVIDER_FEATURES: tuple[Feature, ...] = (
    Feature("warmup_share_log10", "log10(fraction)", -ACTION_DECADES, 0.0,
            "log10 of the share of the provider's available mail put on the new IP (the warm-up percentage / 100)",
            "log10(clip(warmup_percentage / 100, 1e-4, 1))"),
    Feature("sent_log10", "log10(1 + emails)", 0.0, 10.0, "attempts on the new IP: first attempts plus retries",
            "log10(1 + sent)"),
    Feature("delivered_rate", "fraction of sent", 0.0, 1.0, "accepted by the provider (Delivery events)",
            "delivered / sent (0 when sent = 0)"),
    Feature("deferred_rate", "fraction of sent", 0.0, 1.0, "4xx deferrals (DeliveryDelay events)",
            "deferred / sent (0 when sent = 0)"),
    Feature("bounce_rate", "fraction of sent", 0.0, 1.0, "hard bounces, unknown users (permanent Bounce events)",
            "bounced / sent (0 when sent = 0)"),
    Feature("blocked_rate", "fraction of sent", 0.0, 1.0, "5xx rejections by reputation or content",
            "blocked / sent (0 when sent = 0)"),
    Feature("complaint_rate", "fraction of delivered", 0.0, 1.0,
            "feedback-loop complaints; always 0 for a provider without a feedback loop (apple)",
            "complaints / delivered for providers with a feedback loop, else 0 (0 when delivered = 0)"),
    Feature("open_rate", "fraction of delivered", 0.0, 1.0, "opens per delivered email (junked mail is not opened)",
            "opens / delivered (0 when delivered = 0)"),
    Feature("expired_log10", "log10(1 + emails)", 0.0, 10.0, "deferred or queued mail whose retry window closed",
            "log10(1 + expired)"),
    Feature("queued_log10", "log10(1 + emails)", 0.0, 10.0, "mail waiting for retry or in the backlog",
            "log10(1 + queued)"),
    Feature("demand_log10", "log10(1 + emails)", 0.0, 10.0,
            "mail available tomorrow for this provider: fresh demand plus the backlog",
            "log10(1 + demand + backlog)"),
)
GLOBAL_FEATURES: tuple[Feature, ...] = (
    Feature("day", "days", 0.0, MAX_DAY, "days simulated in this episode (0 before the first)",
            "min(days since the warm-up start, counting the first day as 1, 1000)"),
    Feature("demand_total_log10", "log10(1 + emails)", 0.0, 10.0, "fresh mail per day, all providers",
            "log10(1 + sum of demand over providers)"),
    Feature("ses_bounce_rate", "fraction", 0.0, 1.0, "SES dashboard bounce rate over its weighted window",
            f"sum_t w^(age_t) bounced_t / max(sum_t w^(age_t) first_attempts_t, 1), "
            f"w = exp(-1/{SES_WINDOW_DAYS:g}), all providers"),
    Feature("ses_complaint_rate", "fraction", 0.0, 1.0, "SES dashboard complaint rate over its weighted window",
            f"sum_t w^(age_t) complaints_t / max(sum_t w^(age_t) delivered_t, 1), w = exp(-1/{SES_WINDOW_DAYS:g}), "
            "providers with a feedback loop only"),
    Feature("gmail_postmaster_band", "band / 3", 0.0, 1.0,
            "Gmail Postmaster Tools IP reputation published this morning (for the day before yesterday): BAD 0, "
            "LOW 1/3, MEDIUM 2/3, HIGH 1; 0 when not shown",
            "{BAD: 0, LOW: 1/3, MEDIUM: 2/3, HIGH: 1}[postmaster_band] on the gmail row; 0 when not shown; "
            "NaN when not given"),
    Feature("gmail_postmaster_shown", "0/1", 0.0, 1.0,
            "1 when Postmaster Tools shows an IP reputation (Gmail volume above its threshold), else 0",
            "1 if the gmail row has a postmaster_band, 0 if it says none; NaN when the column is not given"),
    Feature("microsoft_snds_colour", "colour / 2", 0.0, 1.0,
            "Microsoft SNDS colour published this morning (for the day before yesterday): green 0, yellow 1/2, "
            "red 1; 0 when not shown",
            "{green: 0, yellow: 0.5, red: 1}[snds_colour] on the microsoft row; 0 when not shown; NaN when not given"),
    Feature("microsoft_snds_shown", "0/1", 0.0, 1.0,
            "1 when SNDS shows a colour (Microsoft volume of at least 100 messages), else 0",
            "1 if the microsoft row has an snds_colour, 0 if it says none; NaN when the column is not given"),
    *(Feature(f"audience_{t.name}", "fraction of the list", 0.0, 1.0,
              f"share of the mailing list in engagement tier {t.name!r} ({t.description}), as the sender's ESP "
              "reports it",
              f"audience[{t.name!r}]: given once per warm-up (the same on every day), not a daily statistic; "
              "NaN when not given")
      for t in TIER_RECORDS),
)
N_PROVIDER_FEATURES = len(PROVIDER_FEATURES)
N_GLOBAL_FEATURES = len(GLOBAL_FEATURES)
AUDIENCE_FEATURES: tuple[str, ...] = tuple(f"audience_{t}" for t in TIERS)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in PROVIDER_FEATURES + GLOBAL_FEATURES}


def feature_names(providers: Sequence[str]) -> list[str]:
    """The flat observation's entry names: ``provider.feature`` per provider, then the global ones."""
    return [f"{p}.{f.name}" for p in providers for f in PROVIDER_FEATURES] + [f.name for f in GLOBAL_FEATURES]


@dataclass(frozen=True)
class ObservationLayout:
    """Names and indices of the observation vector; ``index('gmail', 'sent_log10')`` and so on."""

    providers: tuple[str, ...] = PROVIDERS

    @property
    def size(self) -> int:
        return len(self.providers) * N_PROVIDER_FEATURES + N_GLOBAL_FEATURES

    @property
    def names(self) -> list[str]:
        return feature_names(self.providers)

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

    def provider_count(self, obs: np.ndarray, feature: str) -> np.ndarray:
        """A per-provider ``log10(1 + emails)`` feature decoded back to emails [n, P] (float64, >= 0)."""
        return np.maximum(10.0 ** self.provider_block(np.asarray(obs, np.float64), feature) - 1.0, 0.0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = [f.low for _ in self.providers for f in PROVIDER_FEATURES] + [f.low for f in GLOBAL_FEATURES]
        high = [f.high for _ in self.providers for f in PROVIDER_FEATURES] + [f.high for f in GLOBAL_FEATURES]
        return np.asarray(low, np.float32), np.asarray(high, np.float32)


LAYOUT = ObservationLayout()
OBS_SIZE = LAYOUT.size


def feature_table() -> str:
    """The observation as a Markdown table (index, feature, unit, range, meaning): the env's docstring and
    ``docs/spaces.md`` print this, so the documentation cannot drift from the code."""
    n = len(LAYOUT.providers)
    lines = ["| index | feature | unit | range | meaning |", "|---|---|---|---|---|"]
    for j, f in enumerate(PROVIDER_FEATURES):
        lines.append(f"| {N_PROVIDER_FEATURES} p + {j} | {f.name} | {f.unit} | [{f.low:g}, {f.high:g}] | "
                     f"{f.description} |")
    for j, f in enumerate(GLOBAL_FEATURES):
        lines.append(f"| {n * N_PROVIDER_FEATURES + j} | {f.name} | {f.unit} | [{f.low:g}, {f.high:g}] | "
                     f"{f.description} |")
    return "\n".join(lines)


def rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0 where den = 0; a NaN numerator (an unreported count) stays NaN. Never divides by 0."""
    return np.where(den > 0, num / np.maximum(den, 1), 0.0)


def provider_features(
    share: np.ndarray,
    sent: np.ndarray,
    delivered: np.ndarray,
    deferred: np.ndarray,
    bounced: np.ndarray,
    blocked: np.ndarray,
    fbl_complaints: np.ndarray,
    opens: np.ndarray,
    expired: np.ndarray,
    queued: np.ndarray,
    available: np.ndarray,
) -> np.ndarray:
    """The per-provider block ``[..., P, N_PROVIDER_FEATURES]`` (float64) from one day's counts ``[..., P]``.

    ``fbl_complaints`` are the complaints the sender sees (0 where a provider has no feedback loop);
    ``available`` is tomorrow's mail for the provider (fresh demand plus backlog). NaN counts give NaN features.
    """
    out = np.empty((*np.shape(sent), N_PROVIDER_FEATURES))
    out[..., 0] = np.log10(clip(share, MIN_SHARE, 1.0))
    out[..., 1] = np.log10(1.0 + sent)
    out[..., 2] = rate(delivered, sent)
    out[..., 3] = rate(deferred, sent)
    out[..., 4] = rate(bounced, sent)
    out[..., 5] = rate(blocked, sent)
    out[..., 6] = rate(fbl_complaints, delivered)
    out[..., 7] = rate(opens, delivered)
    out[..., 8] = np.log10(1.0 + expired)
    out[..., 9] = np.log10(1.0 + queued)
    out[..., 10] = np.log10(1.0 + available)
    return out


def ses_rate(weighted_events: np.ndarray, weighted_base: np.ndarray) -> np.ndarray:
    """An SES dashboard rate from exponentially weighted sums (:data:`SES_DECAY`), in [0, 1]."""
    return clip(weighted_events / np.maximum(weighted_base, 1.0), 0.0, 1.0)


POSTMASTER_BANDS: tuple[str, ...] = ("BAD", "LOW", "MEDIUM", "HIGH")
"""Gmail Postmaster Tools' IP reputation categories, worst first (3.1)."""
SNDS_COLOURS: tuple[str, ...] = ("green", "yellow", "red")
"""Microsoft SNDS colours, best first (3.3)."""


def dashboard_features(code: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(value in [0, 1], shown 0/1) from a dashboard code: 0..levels-1, -1 when not shown, NaN when unknown."""
    code = np.asarray(code, np.float64)
    shown = np.where(np.isnan(code), np.nan, (code >= 0).astype(np.float64))
    value = np.where(code >= 0, code / (levels - 1), np.where(np.isnan(code), np.nan, 0.0))
    return value, shown


def global_features(
    day: np.ndarray,
    demand_total: np.ndarray,
    ses_bounce_rate: np.ndarray,
    ses_complaint_rate: np.ndarray,
    audience: np.ndarray,
    postmaster_band: np.ndarray | float = math.nan,
    snds_colour: np.ndarray | float = math.nan,
) -> np.ndarray:
    """The global block ``[..., N_GLOBAL_FEATURES]`` (float64); ``audience`` is ``[..., K]`` tier fractions.

    ``postmaster_band`` (0 BAD .. 3 HIGH) and ``snds_colour`` (0 green .. 2 red) are the dashboards' codes, -1 on a
    day they show nothing and NaN when the sender did not report them (the runtime then imputes the training mean).
    """
    day = np.asarray(day, np.float64)
    out = np.empty((*day.shape, N_GLOBAL_FEATURES))
    out[..., 0] = np.minimum(day, MAX_DAY)
    out[..., 1] = np.log10(1.0 + demand_total)
    out[..., 2] = ses_bounce_rate
    out[..., 3] = ses_complaint_rate
    out[..., 4], out[..., 5] = dashboard_features(np.broadcast_to(postmaster_band, day.shape), len(POSTMASTER_BANDS))
    out[..., 6], out[..., 7] = dashboard_features(np.broadcast_to(snds_colour, day.shape), len(SNDS_COLOURS))
    out[..., 8 : 8 + len(TIERS)] = audience
    return out
