"""The scheduler-side runtime: a policy card + ONNX file turn daily delivery statistics into tomorrow's caps.

Imports only numpy, onnxruntime, the standard library and ``core`` (a test checks it in a fresh interpreter),
so a production scheduler can run it without PyTorch, stable-baselines3 or gymnasium. The observation is
recomputed here from the sender's own statistics through :func:`core.features.provider_features` and
:func:`core.features.global_features`, the functions the simulator's observation builder calls too.

Statistics (per calendar day and provider; counts are emails, i.e. recipients):

=====================  ========  ====================================================================
column                 required  meaning
=====================  ========  ====================================================================
date, provider         yes       the UTC day and the provider name (one of the card's providers)
sent                   yes       delivery attempts on the new IP that day (first attempts + retries)
delivered              yes       accepted by the provider (SES Delivery events)
deferred               yes       4xx temporary failures (SES DeliveryDelay events)
bounced                yes       hard bounces, unknown users (SES permanent Bounce events)
blocked                yes       5xx rejections by reputation or policy
complaints             yes       feedback-loop complaints (ignored for providers without a loop)
opens                  no        opens of delivered mail
expired                no        mail whose retry window closed that day
queued                 no        mail waiting for a retry or in a backlog at the end of the day
backlog                no        unsent mail waiting at the end of the day (self-hosted, no overflow)
demand                 no        fresh mail per day for the provider, on all routes
warmup_percentage      no        the share (0-100) of the provider's mail put on the new IP that day
first_attempts         no        mail put on the new IP for the first time that day (SES Send events)
=====================  ========  ====================================================================

Missing optional values: ``backlog`` counts as 0 (SES and ESPs send overflow through other IPs);
``queued`` is derived as ``deferred - expired + backlog`` (exact without a backlog); ``first_attempts``
as ``sent`` minus yesterday's retry queue (``queued - backlog``; 0 on the first day of the warm-up);
``warmup_percentage`` as ``first_attempts / (demand + yesterday's backlog)``. A feature that still
cannot be computed is passed to the ONNX graph as NaN, which the graph replaces by the training-time
mean (a normalized 0); :class:`Recommendation` lists every such feature in ``imputed``. Days between
the warm-up start and the last date with no row for a provider count as days without sending.

The audience (the mailing list's composition by last open, as the sender's ESP reports it) is not a daily
statistic: it is given once per warm-up, as ``recommend(..., audience={tier: fraction})`` with the tiers
of :data:`AUDIENCE_TIERS`:

=====================  ====================================================================
tier                   share of the list whose last open was
=====================  ====================================================================
opened_30d             within the last 30 days
opened_60d             31 to 60 days ago
opened_90d             61 to 90 days ago
older                  more than 90 days ago, or never
=====================  ====================================================================

Every tier must be given, each a fraction in [0, 1], summing to 1 within :data:`AUDIENCE_SUM_TOLERANCE`
(they are then divided by their sum); anything else raises :class:`AudienceError`. Without an audience
the four ``audience_*`` features enter the graph as NaN (the training mean) and are listed in ``imputed``.

Limits (each refused with a one-line error, never a traceback, a hang or gigabytes of memory): counts are
whole numbers in [0, :data:`MAX_COUNT`]; dates lie in [:data:`MIN_DATE`, :data:`MAX_DATE`]; the statistics
span at most :data:`MAX_SPAN_DAYS` days from the warm-up start; a policy card is at most
:data:`MAX_CARD_BYTES` and names its ONNX graph, a regular file of at most :data:`MAX_ONNX_BYTES` in the
card's own folder, by a bare file name; the graph holds all its tensors (no external data files).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from core.actions import MIN_SHARE, action_to_share
from core.features import (
    GLOBAL_FEATURES,
    MAX_FRAME_STACK,
    POSTMASTER_BANDS,
    SES_DECAY,
    SNDS_COLOURS,
    feature_names,
    global_features,
    provider_features,
    rate,
    ses_rate,
)
from core.guard import GuardedSends, JumpGuard
from core.providers import POSTMASTER, PROVIDERS, SNDS, TIERS
from core.util import is_finite_number, is_whole_number, load_json, read_regular_file, shorten

LEARNED_VARIANCE = 1e-5
"""Training variance of an audience feature below which the policy never saw lists differ (fixed-list scenarios:
about 1e-8). The narrowest tier of a varied list has a variance near 1.6e-4, and a short run samples few lists."""
SCHEMA_VERSION = 4  # 4: the jump guard; 3: simulator v1 (67 features: dashboards, account-wide SES rates)
"""Version of the policy card and of the ONNX graph's interface; a runtime refuses any other."""
RECURRENT_SCHEMA_VERSION = 5
"""A recurrent policy's card (``memory: "lstm"``): its graph reads every day of the warm-up so far, day 0 first,
and keeps no state between calls. Feed-forward cards keep :data:`SCHEMA_VERSION`, so runtimes that predate memory
refuse the recurrent card instead of feeding its graph one day."""
MEMORY_LSTM = "lstm"
CARD_FILE = "policy.json"
ONNX_FILE = "policy.onnx"
INPUT_NAME = "observations"
ACTION_OUTPUT = "action"
SHARE_OUTPUT = "share"
METADATA_PREFIX = "ipwarmup."

REQUIRED_COLUMNS: tuple[str, ...] = ("sent", "delivered", "deferred", "bounced", "blocked", "complaints")
OPTIONAL_COLUMNS: tuple[str, ...] = ("opens", "expired", "queued", "backlog", "demand", "warmup_percentage",
                                     "first_attempts", "overflow", "overflow_delivered", "overflow_bounced",
                                     "overflow_complaints")
OVERFLOW_COLUMNS: tuple[str, ...] = ("overflow", "overflow_delivered", "overflow_bounced", "overflow_complaints")
"""What the overflow route (shared pool, other IPs) sent, delivered, hard-bounced and drew as complaints that day:
SES computes its bounce and complaint rates per account, whatever IP sent the mail. Missing, they count as 0 (the
rates then cover the new IP alone)."""
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
DASHBOARD_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "postmaster_band": (PROVIDERS[POSTMASTER], POSTMASTER_BANDS),
    "snds_colour": (PROVIDERS[SNDS], SNDS_COLOURS),
}
"""Optional dashboard columns: the provider whose row carries it and its values, worst/best first; ``none``
means the dashboard showed nothing that day (too little volume). Each row holds the dashboard's value for its
own date (Postmaster and SNDS date their data); the policy sees it the morning after the next day, as published."""
NOT_SHOWN = "none"
AUDIENCE_TIERS: tuple[str, ...] = TIERS
"""Engagement tiers of the list by last open, most engaged first (``core.providers.TIERS``)."""
AUDIENCE_SUM_TOLERANCE = 0.01
"""How far the audience fractions may sum from 1: room for percentages rounded to whole numbers."""


MAX_COUNT = 10**12
"""Largest count (emails per provider and day) or demand accepted: more mail than exists, yet far from overflow."""
MIN_DATE = dt.date(1970, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)
"""Statistics dates outside [MIN_DATE, MAX_DATE] are refused (a typo, not a warm-up)."""
MAX_SPAN_DAYS = 3660
"""At most ten years of daily statistics from the warm-up start to the last date (arrays are per day)."""
MAX_GUARD_ALLOWANCE = 10.0
"""Largest jump guard allowance a card may carry: the model's is 1.6; a larger one is no guard at all."""
MAX_CARD_BYTES = 16 << 20
MAX_ONNX_BYTES = 256 << 20
MAX_PROVIDERS = 64


class CardError(ValueError):
    """The policy card or ONNX file is unusable or they do not belong together; the message says why."""


class HistoryError(ValueError):
    """The statistics given to :meth:`Runtime.recommend` are inconsistent; the message says which."""


class AudienceError(HistoryError):
    """The audience (list composition by tier) is malformed; the message says how."""


def audience_vector(audience: Mapping[str, float] | None) -> np.ndarray:
    """The audience features in :data:`AUDIENCE_TIERS` order (float64 [K]); all NaN when ``audience`` is None.

    Refuses unknown or missing tiers, values outside [0, 1] or not numbers, and fractions that do not sum
    to 1 within :data:`AUDIENCE_SUM_TOLERANCE`; accepted fractions are divided by their sum.
    """
    if audience is None:
        return np.full(len(AUDIENCE_TIERS), np.nan)
    if not isinstance(audience, Mapping):
        raise AudienceError(f"audience must be a mapping {{tier: fraction}}, got {type(audience).__name__}")
    known = ", ".join(AUDIENCE_TIERS)
    unknown = [str(k) for k in audience if k not in AUDIENCE_TIERS]
    if unknown:
        raise AudienceError(f"unknown audience tier {unknown[0]!r}; the tiers are {known}")
    missing = [t for t in AUDIENCE_TIERS if t not in audience]
    if missing:
        raise AudienceError(f"audience is missing {', '.join(missing)} (give every tier: {known}; 0 if empty)")
    values = np.empty(len(AUDIENCE_TIERS))
    for i, tier in enumerate(AUDIENCE_TIERS):
        value = audience[tier]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise AudienceError(f"audience {tier}: {value!r} is not a number") from None
        if not 0.0 <= number <= 1.0:  # also refuses NaN
            hint = f" (a percentage? {number:g}% is {number / 100:g})" if 1.0 < number <= 100.0 else ""
            raise AudienceError(f"audience {tier}: {value!r} is not a fraction of the list between 0 and 1{hint}")
        values[i] = number
    total = float(values.sum())
    if abs(total - 1.0) > AUDIENCE_SUM_TOLERANCE:
        raise AudienceError(f"audience fractions sum to {total:.6g}, not 1 (within {AUDIENCE_SUM_TOLERANCE:g}): "
                            "give each tier's share of the whole list")
    return values / total


def check_date(day: dt.date, what: str = "date") -> dt.date:
    """``day`` itself, if it lies in [:data:`MIN_DATE`, :data:`MAX_DATE`]; else :class:`HistoryError`."""
    if not MIN_DATE <= day <= MAX_DATE:
        raise HistoryError(f"{what} {day.isoformat()} is outside {MIN_DATE.isoformat()}..{MAX_DATE.isoformat()}")
    return day


def parse_date(value: Any, what: str = "date") -> dt.date:
    if isinstance(value, dt.datetime):
        return check_date(value.date(), what)
    if isinstance(value, dt.date):
        return check_date(value, what)
    text = str(value).strip() if isinstance(value, str) else None
    try:
        if text is None or len(text) > 32:
            raise ValueError
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise HistoryError(f"{what} {shorten(value)} is not an ISO date (YYYY-MM-DD)") from None
    return check_date(day, what)


def check_count(value: Any, what: str, limit: float = MAX_COUNT) -> float:
    """``value`` as a float, if it is a finite number in [0, limit]; else :class:`HistoryError` naming ``what``."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise HistoryError(f"{what} must be a non-negative number, got {shorten(value)}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise HistoryError(f"{what} must be a non-negative number, got {shorten(value)}")
    if number > limit:
        raise HistoryError(f"{what} must be at most {limit:,.0f}, got {shorten(value)}")
    return number


@dataclass
class History:
    """Daily statistics as arrays ``[days, providers]`` from the warm-up start to the last reported day.

    Row ``i`` is warm-up day ``i + 1`` (``start + i``). NaN marks a value that was not reported; absent
    (date, provider) rows hold zero counts and NaN optional values.
    """

    start: dt.date
    providers: tuple[str, ...]
    values: dict[str, np.ndarray]

    @property
    def days(self) -> int:
        return int(self.values["sent"].shape[0])

    @property
    def last_date(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @staticmethod
    def from_rows(rows: Iterable[Mapping[str, Any]], providers: Sequence[str],
                  start: dt.date | str | None = None) -> History:
        """Build from mappings with ``date``, ``provider`` and the columns; None or NaN means not reported."""
        providers = tuple(providers)
        parsed: dict[tuple[dt.date, int], Mapping[str, Any]] = {}
        for row in rows:
            if not isinstance(row, Mapping):
                raise HistoryError(f"a statistics row must be a mapping, got {type(row).__name__}")
            day = parse_date(row.get("date"))
            name = row.get("provider")
            if not isinstance(name, str) or name not in providers:
                raise HistoryError(f"unknown provider {shorten(name)} on {day}; the policy knows "
                                   f"{', '.join(providers)}")
            key = (day, providers.index(str(name)))
            if key in parsed:
                raise HistoryError(f"two rows for {name} on {day}")
            parsed[key] = row
        first = min((d for d, _ in parsed), default=None)
        begin = parse_date(start, "warm-up start") if start is not None else first
        if begin is None:
            raise HistoryError("no statistics and no warm-up start date given")
        if first is not None and first < begin:
            raise HistoryError(f"statistics for {first} predate the warm-up start {begin}")
        last = max((d for d, _ in parsed), default=begin - dt.timedelta(days=1))
        n_days = (last - begin).days + 1
        if n_days > MAX_SPAN_DAYS:
            raise HistoryError(f"the statistics span {n_days:,} days, from {begin} to {last}; at most "
                               f"{MAX_SPAN_DAYS:,} days from the warm-up start are read (check the dates and --start)")
        values: dict[str, np.ndarray] = {c: np.zeros((n_days, len(providers))) for c in REQUIRED_COLUMNS}
        values.update({c: np.full((n_days, len(providers)), np.nan) for c in OPTIONAL_COLUMNS})
        for (day, p), row in parsed.items():
            i = (day - begin).days
            for column in COLUMNS:
                value = row.get(column)
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    if column in REQUIRED_COLUMNS:
                        raise HistoryError(f"{providers[p]} on {day}: required value {column!r} is missing")
                    continue
                values[column][i, p] = check_count(value, f"{providers[p]} on {day}: {column}",
                                                   100.0 if column == "warmup_percentage" else MAX_COUNT)
        for column, (owner, levels) in DASHBOARD_COLUMNS.items():
            values[column] = np.full(n_days, np.nan)
            for (day, p), row in parsed.items():
                value = row.get(column)
                if value is None or value == "" or providers[p] != owner:
                    continue
                values[column][(day - begin).days] = dashboard_code(value, levels,
                                                                    f"{providers[p]} on {day}: {column}")
        return History(begin, providers, values)


def dashboard_code(value: Any, levels: tuple[str, ...], what: str) -> float:
    """A dashboard value as its code: the index in ``levels`` (case-insensitive), -1 for ``none``."""
    text = str(value).strip().lower()
    names = [level.lower() for level in levels]
    if text == NOT_SHOWN:
        return -1.0
    if text not in names:
        raise HistoryError(f"{what} must be one of {', '.join(levels)} or {NOT_SHOWN}, got {shorten(value)}")
    return float(names.index(text))


@dataclass
class Recommendation:
    """Tomorrow's per-provider caps (emails; None without a demand figure) and warm-up percentages."""

    date: dt.date
    day: int
    providers: tuple[str, ...]
    warmup_percentage: dict[str, float]
    caps: dict[str, int | None]
    action: list[float]
    imputed: list[str] = field(default_factory=list)
    audience: dict[str, float] | None = None
    """The list composition the policy saw (after dividing by its sum), None when it was imputed."""
    ignored: list[str] = field(default_factory=list)
    """Inputs given but not used: the audience, for a policy trained on one fixed list (imputed instead)."""
    guard_caps: dict[str, int] | None = None
    """The most first attempts per provider the card's jump guard allows tomorrow (None: no guard). ``caps`` and
    the warm-up percentages respect it where tomorrow's mail is known; where it is not (no demand figure), the
    percentage is the graph's and only this cap holds the guard."""

    @property
    def total_cap(self) -> int | None:
        caps = list(self.caps.values())
        return None if any(c is None for c in caps) else int(sum(c for c in caps if c is not None))

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "day": self.day,
            "providers": {p: {"warmup_percentage": self.warmup_percentage[p], "cap": self.caps[p]}
                          for p in self.providers},
            "total_cap": self.total_cap,
            "action": self.action,
            "imputed": self.imputed,
            "audience": self.audience,
            "ignored": self.ignored,
            "guard_caps": self.guard_caps,
        }


def derived_columns(history: History, fbl: np.ndarray) -> dict[str, np.ndarray]:
    """Fill the optional columns that follow from the others (see the module docstring); NaN stays NaN."""
    v = dict(history.values)
    backlog = np.where(np.isnan(v["backlog"]), 0.0, v["backlog"])
    # np.maximum propagates NaN, so an underivable value stays unknown.
    queued = np.where(np.isnan(v["queued"]), np.maximum(v["deferred"] - v["expired"] + backlog, 0.0), v["queued"])
    retry_left = np.vstack([np.zeros((1, queued.shape[1])), queued[:-1] - backlog[:-1]])
    first = np.where(np.isnan(v["first_attempts"]), np.maximum(v["sent"] - retry_left, 0.0), v["first_attempts"])
    prev_backlog = np.vstack([np.zeros((1, backlog.shape[1])), backlog[:-1]])
    available = v["demand"] + prev_backlog
    estimate = np.where(np.isnan(available), np.nan, rate(first, available))
    share = np.where(np.isnan(v["warmup_percentage"]), estimate, v["warmup_percentage"] / 100.0)
    v.update(backlog=backlog, queued=queued, first_attempts=first, share=share,
             fbl_complaints=v["complaints"] * fbl)
    return v


def last_first_attempts(history: History, fbl: np.ndarray) -> np.ndarray:
    """The last day's first attempts per provider [P] (the jump guard's reference): the reported or derived
    column, else that day's attempts less the day before's deferrals (a lower bound); 0 before the first day."""
    if not history.days:
        return np.zeros(len(history.providers))
    first = derived_columns(history, fbl)["first_attempts"][-1]
    # Without expired/queued, the retries are at most the day before's deferrals: a lower bound, the guard's side.
    retried = history.values["deferred"][-2] if history.days > 1 else np.zeros(len(history.providers))
    lower = np.maximum(history.values["sent"][-1] - retried, 0.0)
    return np.nan_to_num(np.where(np.isnan(first), lower, first), nan=0.0)


_STACKED = ("share", "sent", "delivered", "deferred", "bounced", "blocked", "fbl_complaints", "opens", "expired",
            "queued", "demand", "backlog")


def observations(history: History, fbl: np.ndarray, frames: int, demand_hint: np.ndarray | None = None,
                 audience: Mapping[str, float] | None = None) -> np.ndarray:
    """The raw observations ``[frames, n_features]`` (float32, NaN = unknown) of the last ``frames`` days.

    Frame ``-1`` is the last reported day; before warm-up day 1 comes the day-0 observation the simulator
    shows at reset (nothing sent, share 10^-4, day 1's demand or ``demand_hint`` before any day is
    reported); earlier frames are all NaN (the graph's zero padding). ``audience`` ({tier: fraction}, see
    :func:`audience_vector`) fills the audience features of every frame; without it they are NaN.
    """
    return _observations(history, fbl, frames, demand_hint, audience_vector(audience))


def ses_sums(daily: np.ndarray) -> np.ndarray:
    """SES's exponentially weighted sums ``[days + 1, columns]`` of ``daily`` ``[days, columns]``: row t after day t
    (row 0: nothing sent). The recursion the simulator runs, in memory linear in the history (a recurrent card reads
    every day of it)."""
    sums = np.zeros((len(daily) + 1, daily.shape[1]))
    for t, day in enumerate(daily):
        sums[t + 1] = SES_DECAY * sums[t] + day
    return sums


def _observations(history: History, fbl: np.ndarray, frames: int, demand_hint: np.ndarray | None,
                  tiers: np.ndarray) -> np.ndarray:
    """:func:`observations` for an already validated audience vector (``audience_vector``'s output)."""
    v = derived_columns(history, fbl)
    d, n_p = history.days, len(history.providers)
    first_day = max(d - frames + 1, 0)  # warm-up day of the first frame (0 = the reset observation)
    cols = np.stack([v[c][max(first_day - 1, 0):] for c in _STACKED])  # [column, frame, provider]
    if first_day == 0:  # the reset observation: nothing sent yet
        reset = np.zeros((len(_STACKED), 1, n_p))
        reset[0] = MIN_SHARE
        reset[10] = v["demand"][0] if d else (np.nan if demand_hint is None else demand_hint)
        cols = np.concatenate([reset, cols], axis=1)
    share, sent, delivered, deferred, bounced, blocked, complaints, opens, expired, queued, demand, backlog = cols
    k = cols.shape[1]
    per = provider_features(share, sent, delivered, deferred, bounced, blocked, complaints, opens, expired, queued,
                            demand + backlog)

    # SES's weighted window over every day from the start to each frame's day, summed as the simulator does.
    frame_days = np.arange(first_day, d + 1)
    route = {c: np.nan_to_num(v[c]) for c in OVERFLOW_COLUMNS}  # account-wide: every route counts
    sums = ses_sums(np.stack([(v["first_attempts"] + route["overflow"]).sum(-1),
                              (v["bounced"] + route["overflow_bounced"]).sum(-1),
                              ((v["delivered"] + route["overflow_delivered"]) * fbl).sum(-1),
                              (v["fbl_complaints"] + route["overflow_complaints"] * fbl).sum(-1)], axis=-1))[frame_days]
    g = per.shape[1] * per.shape[2]  # first global feature
    obs = np.empty((frames, g + len(GLOBAL_FEATURES)), np.float32)
    obs[: frames - k] = np.nan
    real = obs[frames - k:]
    real[:, :g] = per.reshape(k, -1)
    # A dashboard's value for day t is published the morning after day t + 1: frame day f shows day f - 1's.
    published = {}
    for column in DASHBOARD_COLUMNS:
        by_day = np.concatenate([[-1.0, -1.0], v[column]])  # frame days 0 and 1: nothing published yet
        if d and np.isnan(v[column]).all():
            by_day[2:] = np.nan  # the sender does not report this dashboard: the training mean stands in
        published[column] = by_day[frame_days]
    real[:, g:] = global_features(frame_days, demand.sum(-1), ses_rate(sums[:, 1], sums[:, 0]),
                                  ses_rate(sums[:, 3], sums[:, 2]), np.broadcast_to(tiers, (k, len(tiers))),
                                  published["postmaster_band"], published["snds_colour"])
    return obs


# ONNX protobuf field numbers (onnx/onnx.proto) of every message that can hold a tensor, for the scan below.
_TENSOR_HOLDERS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node", 11: "attribute"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_EXTERNAL_DATA, _DATA_LOCATION = 13, 14  # TensorProto.external_data, TensorProto.data_location (1 = EXTERNAL)


def _fields(data: bytes | memoryview) -> Any:
    """(field number, wire type, value) of one protobuf message; ValueError if it is malformed."""
    view, i, n = memoryview(data), 0, len(data)

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("truncated varint")
            byte = view[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < n:
        key = varint()
        field_number, wire = key >> 3, key & 7
        if wire == 0:
            yield field_number, wire, varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > n:
                raise ValueError("truncated fixed field")
            i += size
            yield field_number, wire, None
        elif wire == 2:
            length = varint()
            if i + length > n:
                raise ValueError("truncated field")
            yield field_number, wire, view[i:i + length]
            i += length
        else:
            raise ValueError(f"unsupported wire type {wire}")


def external_data_tensor(data: bytes) -> str | None:
    """Why a serialized ONNX model reads tensors from other files (external data), or None if it does not.

    onnxruntime resolves external data paths relative to the current folder when a model is loaded from
    bytes, so a crafted graph could read any file there; exported graphs hold every tensor themselves.
    """
    stack: list[tuple[str, memoryview, int]] = [("model", memoryview(data), 0)]
    while stack:
        kind, message, depth = stack.pop()
        if depth > 64:
            return "graphs nested more than 64 deep"
        for number, wire, value in _fields(message):
            if kind == "tensor" and (number == _EXTERNAL_DATA or (number == _DATA_LOCATION and value == 1)):
                return "a tensor stored in an external data file"
            child = _TENSOR_HOLDERS[kind].get(number)
            if child is not None and wire == 2:
                stack.append((child, value, depth + 1))
    return None


def _session(model: bytes, shown: Path) -> ort.InferenceSession:
    """An onnxruntime session for a serialized graph (already read and hashed: what was checked is what runs)."""
    try:
        external = external_data_tensor(model)
    except ValueError as exc:
        raise CardError(f"{shown} is not a loadable ONNX model ({exc})") from None
    if external is not None:
        raise CardError(f"{shown} uses {external}; a policy graph must hold all its tensors")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a 64-unit MLP: threads cost more than they save
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types; each becomes one line
        raise CardError(f"{shown} is not a loadable ONNX model ({type(exc).__name__})") from None


class Runtime:
    """A loaded policy card and its ONNX graph: observations in, actions and shares out."""

    def __init__(self, card: dict[str, Any], session: ort.InferenceSession, card_path: Path) -> None:
        self.card = card
        self.card_path = card_path
        self.session = session
        self.providers: tuple[str, ...] = tuple(card["providers"])
        self.frame_stack = int(card["frame_stack"])
        self.recurrent = card.get("memory") == MEMORY_LSTM
        """A recurrent graph: it reads every day from the warm-up's day 0, not the last ``frame_stack``."""
        self.fbl = np.array([bool(card["feedback_loop"][p]) for p in self.providers])
        self.n_features = len(card["observation"]["features"])
        self.guard = guard_of_card(card, card_path)
        audience_var = [f.get("var", 1.0) for f in card["observation"]["features"] if f["name"].startswith("audience_")]
        self.learned_audience = bool(audience_var) and min(audience_var) > LEARNED_VARIANCE
        """False for a policy trained on one fixed list: it never saw the audience vary, so a real list's
        composition would land far outside its training range; recommend() then ignores it (see ``ignored``)."""

    def frames(self, history: History) -> int:
        """How many days the graph reads: the last ``frame_stack``, or a recurrent graph's every day since day 0."""
        return history.days + 1 if self.recurrent else self.frame_stack

    def act(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Actions and shares ``[n, P]`` for raw observation histories ``[n, frames, n_features]``."""
        x = np.ascontiguousarray(frames, dtype=np.float32)
        action, share = self.session.run((ACTION_OUTPUT, SHARE_OUTPUT), {INPUT_NAME: x})
        return action, share

    def observations(self, history: History, demand_hint: np.ndarray | None = None,
                     audience: Mapping[str, float] | None = None) -> np.ndarray:
        """The graph input for one history: ``[frames, n_features]`` (:meth:`frames`)."""
        return observations(history, self.fbl, self.frames(history), demand_hint, audience)

    def recommend(self, history: History | Iterable[Mapping[str, Any]], *,
                  start: dt.date | str | None = None, demand: Mapping[str, float] | None = None,
                  audience: Mapping[str, float] | None = None) -> Recommendation:
        """Tomorrow's caps from the statistics so far (rows or a :class:`History`).

        ``start`` is the warm-up's first day (default: the first date in the statistics); ``demand`` gives
        tomorrow's mail per provider (default: each provider's demand on the last day, if reported);
        ``audience`` the list's composition ``{tier: fraction}`` over :data:`AUDIENCE_TIERS` (default:
        unknown, the training mean, reported in ``imputed``).
        """
        tiers = audience_vector(audience)  # validate before reading the statistics
        if demand is not None:
            if not isinstance(demand, Mapping):
                raise HistoryError(f"demand must be a mapping {{provider: emails}}, got {type(demand).__name__}")
            unknown = [str(p) for p in demand if p not in self.providers]
            if unknown:
                raise HistoryError(f"demand names unknown provider {shorten(unknown[0])}; the policy knows "
                                   f"{', '.join(self.providers)}")
            demand = {p: check_count(v, f"demand for {p}") for p, v in demand.items()}
        ignored = []
        if audience is not None and not self.learned_audience:
            ignored = [f"audience_{t}" for t in AUDIENCE_TIERS]
            audience, tiers = None, audience_vector(None)
        if not isinstance(history, History):
            history = History.from_rows(history, self.providers, start)
        if history.providers != self.providers:
            raise HistoryError(f"history providers {history.providers} differ from the card's {self.providers}")
        hint = None if demand is None else np.array([float(demand.get(p, math.nan)) for p in self.providers])
        obs = _observations(history, self.fbl, self.frames(history), hint, tiers)
        action, _ = self.act(obs[None])
        available = self._available(history, demand)
        guard_caps = None
        if self.guard is not None:
            last = last_first_attempts(history, self.fbl)
            action, _ = self.guard.limit(action, np.nan_to_num(available, nan=0.0)[None], last[None])
            guard_caps = {p: int(c) for p, c in zip(self.providers, self.guard.caps(last[None])[0], strict=True)}
        share = action_to_share(action)  # float64 like the simulator; the graph's float32 share can floor 1 lower
        names = feature_names(self.providers)
        real = ~np.all(np.isnan(obs), axis=1)
        imputed = sorted({names[j] for j in np.flatnonzero(np.isnan(obs[real]).any(axis=0))})
        tomorrow = history.last_date + dt.timedelta(days=1)
        caps = {p: None if math.isnan(available[i]) else int(math.floor(float(share[0, i]) * available[i]))
                for i, p in enumerate(self.providers)}
        return Recommendation(
            date=tomorrow,
            day=history.days + 1,
            providers=self.providers,
            warmup_percentage={p: round(100.0 * float(share[0, i]), 6) for i, p in enumerate(self.providers)},
            caps=caps,
            action=[float(a) for a in action[0]],
            imputed=imputed,
            audience=None if audience is None else {t: float(x) for t, x in zip(AUDIENCE_TIERS, tiers, strict=True)},
            ignored=ignored,
            guard_caps=guard_caps,
        )

    def _available(self, history: History, demand: Mapping[str, float] | None) -> np.ndarray:
        """Tomorrow's mail per provider [P] (demand, given or the last day's, plus the backlog); NaN if unknown."""
        providers = len(self.providers)
        backlog = history.values["backlog"][-1] if history.days else np.zeros(providers)
        last_demand = history.values["demand"][-1] if history.days else np.full(providers, math.nan)
        given = np.array([float(demand[p]) if demand is not None and p in demand else math.nan
                          for p in self.providers])
        available = np.where(np.isnan(given), last_demand, given)
        return available + np.nan_to_num(backlog, nan=0.0)


def _check_card(card: Any, path: Path) -> None:
    """Every card field the runtime reads, type-checked, so a crafted card is refused in one line."""
    if not isinstance(card, dict):
        raise CardError(f"{path} is not a policy card (a JSON object)")
    version = card.get("schema_version")
    if version not in (SCHEMA_VERSION, RECURRENT_SCHEMA_VERSION):
        raise CardError(f"{path} has schema_version {shorten(version)}; this runtime reads schema_version "
                        f"{SCHEMA_VERSION} (and {RECURRENT_SCHEMA_VERSION} for a recurrent policy; re-export the "
                        "policy with this version of ipwarmup)")
    memory = card.get("memory")
    if (version == RECURRENT_SCHEMA_VERSION) != (memory == MEMORY_LSTM) or memory not in (None, MEMORY_LSTM):
        raise CardError(f"{path}: schema_version {version} goes with memory "
                        f"{MEMORY_LSTM if version == RECURRENT_SCHEMA_VERSION else None!r}, got {shorten(memory)}")
    for key in ("providers", "frame_stack", "observation", "feedback_loop", "onnx", "jump_guard"):
        if key not in card:
            raise CardError(f"{path} has no {key!r} entry")
    providers = card["providers"]
    if (not isinstance(providers, list) or not 1 <= len(providers) <= MAX_PROVIDERS
            or not all(isinstance(p, str) and 0 < len(p) <= 64 for p in providers)
            or len(set(providers)) != len(providers)):
        raise CardError(f"{path}: providers must be a list of distinct provider names, got {shorten(providers)}")
    frames = card["frame_stack"]
    if not is_whole_number(frames, 1, MAX_FRAME_STACK):
        raise CardError(f"{path}: frame_stack must be a whole number in [1, {MAX_FRAME_STACK}], got {shorten(frames)}")
    if memory is not None and frames != 1:
        raise CardError(f"{path}: a recurrent policy reads one frame a day, got frame_stack {frames}")
    fbl = card["feedback_loop"]
    if not isinstance(fbl, dict) or set(fbl) != set(providers) or not all(isinstance(v, bool) for v in fbl.values()):
        raise CardError(f"{path}: feedback_loop must map every provider to true or false, got {shorten(fbl)}")
    observation = card["observation"]
    features = observation.get("features") if isinstance(observation, dict) else None
    if not isinstance(features, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str)
                                                 for f in features):
        raise CardError(f"{path}: observation.features must be a list of objects with a name")
    for f in features:
        for key in ("mean", "var"):
            if key in f and not (is_finite_number(f[key]) and (key == "mean" or f[key] >= 0)):
                raise CardError(f"{path}: feature {shorten(f['name'])} has {key} {shorten(f[key])}, not a "
                                f"{'finite number' if key == 'mean' else 'finite number >= 0'}")
    guard_of_card(card, path)
    onnx = card["onnx"]
    if not isinstance(onnx, dict) or not isinstance(onnx.get("sha256"), str) or "file" not in onnx:
        raise CardError(f"{path}: onnx must be an object with the graph's file name and sha256, got {shorten(onnx)}")


def guard_of_card(card: dict[str, Any], path: Path) -> JumpGuard | None:
    """The card's jump guard (``null``: the policy was trained and exported without one)."""
    entry = card["jump_guard"]
    if entry is None:
        return None
    providers = card["providers"]
    problem = CardError(f"{path}: jump_guard must be null or {{allowance: a number in (1, {MAX_GUARD_ALLOWANCE:g}], "
                        f"base: {{provider: emails/day in [1, {MAX_COUNT:.0e}]}} for every provider}}, "
                        f"got {shorten(entry)}")
    if not isinstance(entry, dict) or not isinstance(entry.get("base"), dict):
        raise problem
    allowance: Any = entry.get("allowance")
    base = entry["base"]
    if (not is_finite_number(allowance) or not 1 < allowance <= MAX_GUARD_ALLOWANCE or set(base) != set(providers)
            or not all(is_finite_number(v) and 1 <= v <= MAX_COUNT for v in base.values())):
        raise problem
    return JumpGuard(float(allowance), np.array([float(base[p]) for p in providers]))  # valid by the checks above


def _onnx_path(card_path: Path, name: Any) -> Path:
    """The graph a card names: a bare file name, resolving to a file in the card's own folder."""
    if (not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0")
            or Path(name).is_absolute() or len(name) > 255):
        raise CardError(f"{card_path}: onnx.file {shorten(name)} must be a file name in the card's own folder "
                        "(no folders, no '..', no absolute paths)")
    path = card_path.parent / name
    try:
        real, folder = path.resolve(strict=True), card_path.parent.resolve(strict=True)
    except (OSError, RuntimeError):
        raise CardError(f"{path} does not exist") from None
    if real.parent != folder:
        raise CardError(f"{path} is a link to {real}, outside the card's folder; export the graph next to its card")
    return path


def _check_features(card: dict[str, Any], path: Path) -> None:
    """The card's features must be exactly the ones this runtime computes, in the same order."""
    expected = feature_names(card["providers"])
    names = [f.get("name") for f in card["observation"].get("features", [])]
    if names != expected:
        first = next(i for i, (a, b) in enumerate(zip(names + [None], expected + [None], strict=False)) if a != b)
        raise CardError(f"{path} lists observation features this runtime does not compute the same way "
                        f"(entry {first}: {names[first] if first < len(names) else None!r}, "
                        f"expected {expected[first] if first < len(expected) else None!r})")


def load(card_path: str | Path, onnx_path: str | Path | None = None) -> Runtime:
    """Load and cross-check a policy card (file or folder) and its ONNX graph; refuse any mismatch.

    ``onnx_path`` overrides the card's graph (the caller's choice, so it may lie elsewhere); by default the
    graph is the file the card names in its own folder.
    """
    card_path = Path(card_path)
    if card_path.is_dir():
        card_path = card_path / CARD_FILE
    try:
        card = load_json(read_regular_file(card_path, MAX_CARD_BYTES, "policy card"), str(card_path))
    except ValueError as exc:
        raise CardError(str(exc)) from None
    _check_card(card, card_path)
    onnx_file = Path(onnx_path) if onnx_path is not None else _onnx_path(card_path, card["onnx"]["file"])
    try:
        model = read_regular_file(onnx_file, MAX_ONNX_BYTES, "ONNX graph")
    except ValueError as exc:
        raise CardError(str(exc)) from None
    digest = hashlib.sha256(model).hexdigest()
    if digest != card["onnx"]["sha256"]:
        raise CardError(f"{onnx_file} does not match {card_path}: its sha256 is {digest[:12]}..., the card "
                        f"expects {shorten(card['onnx']['sha256'], 20)} (export them together)")
    session = _session(model, onnx_file)
    meta = session.get_modelmeta().custom_metadata_map
    checks = {
        "schema_version": str(card["schema_version"]),
        "providers": json.dumps(list(card["providers"])),
        "frame_stack": str(card["frame_stack"]),
        "features": json.dumps(feature_names(card["providers"])),
        "memory": card.get("memory"),  # absent from a feed-forward graph
    }
    for key, value in checks.items():
        found = meta.get(METADATA_PREFIX + key)
        if found != value:
            raise CardError(f"{onnx_file} was exported with {key} {shorten(found)} but {card_path} says "
                            f"{shorten(value)}")
    _check_features(card, card_path)
    inputs = session.get_inputs()
    expected_shape = ["days" if card.get("memory") else card["frame_stack"], len(feature_names(card["providers"]))]
    if [i.name for i in inputs] != [INPUT_NAME] or list(inputs[0].shape[1:]) != expected_shape:
        raise CardError(f"{onnx_file} has inputs {shorten([(i.name, i.shape) for i in inputs])}, not "
                        f"{INPUT_NAME} [batch, {expected_shape[0]}, {expected_shape[1]}]")
    return Runtime(card, session, card_path)


class RuntimePolicy:
    """An exported policy behind SB3's ``predict`` on simulator observations ``[n, n_features]``.

    Keeps the last ``frame_stack`` raw observations per env (NaN-padded after an episode start, which the
    graph turns into the zero frames VecFrameStack shows), or for a recurrent graph every observation since the
    episode started, so it acts like ``agents.ppo.RunPolicy`` (to float32 rounding).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.buffer: np.ndarray | None = None
        self.episodes: list[list[np.ndarray]] = []
        """A recurrent graph's input: each env's observations since its episode started."""
        self.guard = None if runtime.guard is None else GuardedSends(runtime.guard)

    def reset(self, seed: int | None = None) -> None:
        """Forget the frame and send history (evaluation calls this per episode; the policy has no randomness)."""
        self.buffer = None
        self.episodes = []
        if self.guard is not None:
            self.guard.reset()

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        action = self._act_episodes(batch, episode_start) if self.runtime.recurrent else self._act_frames(batch,
                                                                                                     episode_start)
        if self.guard is not None:
            action = self.guard.observed(action, batch, episode_start)
        return (action[0] if single else action), state

    def _act_frames(self, batch: np.ndarray, episode_start: np.ndarray | None) -> np.ndarray:
        n, size = batch.shape
        k = self.runtime.frame_stack
        if self.buffer is None or self.buffer.shape[0] != n:
            self.buffer = np.full((n, k, size), np.nan, np.float32)
        elif episode_start is not None:
            self.buffer[np.asarray(episode_start, bool)] = np.nan
        self.buffer[:, :-1] = self.buffer[:, 1:]
        self.buffer[:, -1] = batch
        return self.runtime.act(self.buffer)[0]

    def _act_episodes(self, batch: np.ndarray, episode_start: np.ndarray | None) -> np.ndarray:
        """A recurrent graph reads each env's whole episode so far; envs whose episodes are as long go together."""
        n = len(batch)
        if len(self.episodes) != n:
            self.episodes = [[] for _ in range(n)]
        elif episode_start is not None:
            for i in np.flatnonzero(episode_start):
                self.episodes[i] = []
        for episode, observation in zip(self.episodes, batch, strict=True):
            episode.append(observation)
        action = np.empty((n, len(self.runtime.providers)), np.float32)
        lengths = np.array([len(e) for e in self.episodes])
        for length in np.unique(lengths):
            rows = np.flatnonzero(lengths == length)
            action[rows] = self.runtime.act(np.stack([np.stack(self.episodes[i]) for i in rows]))[0]
        return action


def load_card_policy(path: str | Path, env: Any = None) -> RuntimePolicy:
    """``agents.load_policy`` for a policy card (``policy.json`` or its folder); ``env`` is unused."""
    return RuntimePolicy(load(path))
