"""Published fixed warm-up schedules as data, and the open-loop policy that follows one.

Every schedule is a table of total (or per-ISP) volume by day from ``agents/data/schedules.csv``
(the calibration file, with its source column), or knots / a growth rule from
``agents/data/schedules.yaml``. One :class:`Schedule` class interpolates any of them, continues
past the table by the source's own rule ("double daily", "x2 every 3 days"), splits the total
across providers by their share of the available mail, and caps each provider at what it has.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from agents.policy import Policy, available, day, volume_to_action
from core.providers import PROVIDERS

DATA = Path(__file__).parent / "data"
MAX_VOLUME = 1e12
"""Upper bound on any schedule's daily volume, so a long continuation never overflows to inf."""


@dataclass(frozen=True)
class Schedule:
    """Volume by sending day (day 1 = the first), per column; columns are 'all' or ISP groups."""

    name: str
    source: str
    days: np.ndarray  # [K] table days, increasing
    values: np.ndarray  # [K, C] volume (or share of demand, for kind 'share') per column
    columns: tuple[str, ...]  # 'all', or ISP names; providers not named fall into 'other'
    kind: Literal["volume", "share"] = "volume"
    first_day: int = 1
    days_per_step: int = 1
    max_daily: float = math.inf
    growth: float = 1.0
    growth_every: int = 1

    def table_day(self, send_day: np.ndarray) -> np.ndarray:
        """The table's own day label for sending day ``send_day`` (1-based)."""
        d = np.maximum(np.asarray(send_day, np.float64), 1.0)
        return np.ceil(d / self.days_per_step) - 1.0 + self.first_day

    def value(self, send_day: np.ndarray) -> np.ndarray:
        """Table value per column [n, C]: interpolated within the table, the continuation rule past it."""
        t = np.atleast_1d(self.table_day(send_day))
        inside = np.stack([np.interp(t, self.days, self.values[:, c]) for c in range(len(self.columns))], -1)
        last = self.days[-1]
        steps = np.ceil(np.maximum(t - last, 0.0) / self.growth_every)
        factor = np.exp(np.minimum(steps * math.log(self.growth), math.log(MAX_VOLUME)))
        beyond = np.minimum(self.values[-1] * factor[:, None], MAX_VOLUME)
        return np.where((t > last)[:, None], beyond, inside)

    def volume(self, send_day: np.ndarray, avail: np.ndarray) -> np.ndarray:
        """Emails per provider [n, P] on ``send_day`` [n], given the mail available per provider [n, P].

        Each column's total is split over its providers in proportion to their available mail and
        capped at it; with nothing available the volume is 0 (never NaN).
        """
        avail = np.maximum(np.atleast_2d(np.asarray(avail, np.float64)), 0.0)
        days = np.broadcast_to(np.asarray(send_day, np.float64), avail.shape[:1])
        col = self.value(days)
        if self.kind == "share":  # the cap holds while the warm-up runs; then the IP carries the whole stream
            warming = (np.atleast_1d(self.table_day(days)) <= self.days[-1])[:, None]
            col = col * np.minimum(avail.sum(-1, keepdims=True), np.where(warming, self.max_daily, MAX_VOLUME))
        else:
            col = np.minimum(col, self.max_daily)
        out = np.zeros_like(avail)
        for c, members in enumerate(self.groups()):
            group = avail[:, members]
            total = group.sum(-1, keepdims=True)
            out[:, members] = np.where(total > 0, col[:, c : c + 1] * group / np.maximum(total, 1e-12), 0.0)
        return np.minimum(out, avail)

    def groups(self) -> list[np.ndarray]:
        """Provider indices per column: 'all' takes every provider; unnamed providers join 'other'."""
        if self.columns == ("all",):
            return [np.arange(len(PROVIDERS))]
        named = set(self.columns)
        return [np.array([i for i, p in enumerate(PROVIDERS)
                          if p == col or (col == "other" and p not in named)]) for col in self.columns]


def _expand_rule(start: float, hold_days: int, steps: list[list[float]], days: int) -> tuple[np.ndarray, np.ndarray]:
    """A growth rule as a table: hold each level ``hold_days``, then grow by the first step whose bound is above it."""
    level, values = float(start), []
    for d in range(days):
        if d > 0 and d % hold_days == 0:
            level *= next(f for bound, f in steps if level < float(bound))
        values.append(level)
    return np.arange(1, days + 1, dtype=np.float64), np.asarray(values)[:, None]


@cache
def _table_rows() -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {}
    with open(DATA / "schedules.csv", newline="") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["schedule"], []).append(row)
    return rows


def _from_table(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str]:
    rows = _table_rows()[name]
    columns = tuple(dict.fromkeys(r["provider"] for r in rows))
    days = np.array(sorted({float(r["day"]) for r in rows}))
    values = np.zeros((days.size, len(columns)))
    for r in rows:
        values[np.searchsorted(days, float(r["day"])), columns.index(r["provider"])] = float(r["volume"])
    return days, values, columns, rows[0]["source"]


def _build(name: str, spec: dict[str, Any]) -> Schedule:
    columns: tuple[str, ...] = ("all",)
    if "table" in spec:
        days, values, columns, table_source = _from_table(spec["table"])
        source = f"{spec['source']} [table: {table_source}]"
    elif "rule" in spec:
        rule = spec["rule"]
        days, values = _expand_rule(rule["start"], rule["hold_days"], rule["steps"], rule["days"])
        source = spec["source"]
    else:
        knots = np.asarray(spec["points"], np.float64)
        days, values, source = knots[:, 0], knots[:, 1:], spec["source"]
    cont = spec.get("continue", {})
    return Schedule(
        name=name,
        source=" ".join(source.split()),
        days=days,
        values=values * float(spec.get("scale", 1.0)),
        columns=columns,
        kind=spec.get("kind", "volume"),
        first_day=int(spec.get("first_day", 1)),
        days_per_step=int(spec.get("days_per_step", 1)),
        max_daily=float(spec.get("max_daily", math.inf)),
        growth=float(cont.get("factor", 1.0)),
        growth_every=int(cont.get("every", 1)),
    )


@cache
def schedules() -> dict[str, Schedule]:
    """Every fixed schedule by baseline name, built from ``agents/data``."""
    with open(DATA / "schedules.yaml") as f:
        specs = yaml.safe_load(f)
    return {name: _build(name, spec) for name, spec in specs.items()}


def get_schedule(name: str) -> Schedule:
    return schedules()[name]


class SchedulePolicy(Policy):
    """Follow a fixed schedule open-loop: tomorrow's volume from the day and the available mail alone."""

    def __init__(self, schedule: Schedule) -> None:
        super().__init__()
        self.schedule = schedule
        self.name = schedule.name

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        avail = available(obs)
        return volume_to_action(self.schedule.volume(day(obs) + 1, avail), avail)
