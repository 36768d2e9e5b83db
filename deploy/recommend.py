"""``ipwarmup recommend --policy DIR --stats FILE``: tomorrow's per-provider caps from the sender's own statistics.

Runs on the scheduler side: it imports only the runtime (numpy, onnxruntime) and the statistics readers,
never PyTorch or gymnasium. ``--stats`` is a CSV (see :mod:`deploy.runtime` for the columns) or Amazon SES
event-publishing JSON lines (see :mod:`deploy.ses_events`); ``--demand`` supplies tomorrow's mail per
provider when the statistics carry no ``demand`` column (SES events never do); ``--audience`` gives the
list's composition by last open (``opened_30d=0.45 opened_60d=0.25 opened_90d=0.15 older=0.15``, from the
ESP), without which the policy sees the training mean and the output says so. Errors are one line on
stderr and exit status 2.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.util import OneLineParser, fail, shorten
from deploy import runtime as rt
from deploy.ses_events import EventSummary, ProviderMap, StatsError, read_stats


def parse_demand(items: Sequence[str], providers: Sequence[str]) -> dict[str, float]:
    """``PROVIDER=EMAILS`` pairs; every provider must be given once, each a whole number in [0, MAX_COUNT]."""
    demand: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        shown = shorten(item)
        if not sep or name not in providers:
            raise StatsError(f"--demand {shown}: expected PROVIDER=EMAILS with PROVIDER one of {', '.join(providers)}")
        if name in demand:
            raise StatsError(f"--demand {shown}: {name} is given twice")
        try:
            whole = int(value) if len(value) <= 20 else None
        except ValueError:
            whole = None
        if whole is None and value.strip().lstrip("+-").isdigit():
            raise StatsError(f"--demand {shown}: must be at most {rt.MAX_COUNT:,} emails")
        if whole is None:
            raise StatsError(f"--demand {shown}: {shorten(value)} is not a whole number of emails")
        if whole < 0:
            raise StatsError(f"--demand {shown}: must not be negative")
        if whole > rt.MAX_COUNT:
            raise StatsError(f"--demand {shown}: must be at most {rt.MAX_COUNT:,} emails")
        demand[name] = float(whole)
    missing = [p for p in providers if p not in demand]
    if demand and missing:
        raise StatsError(f"--demand is missing {', '.join(missing)} (give every provider, 0 if none)")
    return demand


def parse_audience(items: Sequence[str]) -> dict[str, float] | None:
    """``TIER=FRACTION`` pairs, every tier of ``rt.AUDIENCE_TIERS`` once; None when none are given."""
    if not items:
        return None
    known = ", ".join(rt.AUDIENCE_TIERS)
    audience: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in rt.AUDIENCE_TIERS:
            raise StatsError(f"--audience {shorten(item)}: expected TIER=FRACTION with TIER one of {known}")
        if name in audience:
            raise StatsError(f"--audience {shorten(item)}: {name} is given twice")
        if len(value) > 40:  # no fraction needs 40 characters: refused as the text the user gave
            raise StatsError(f"--audience {shorten(item)}: {shorten(value)} is not a fraction in [0, 1]")
        try:
            audience[name] = float(value)
        except ValueError:
            raise StatsError(f"--audience {shorten(item)}: {shorten(value)} is not a number") from None
    try:
        rt.audience_vector(audience)
    except rt.AudienceError as exc:
        raise StatsError(f"--audience: {exc}") from None
    return audience


def format_table(rec: rt.Recommendation, summary: EventSummary | None) -> str:
    guard = rec.guard_caps
    lines = [f"Caps for {rec.date.isoformat()} (warm-up day {rec.day})", "",
             f"{'provider':<12}{'warm-up %':>12}{'cap (emails)':>16}" + (f"{'jump guard':>14}" if guard else "")]
    for p in rec.providers:
        cap = rec.caps[p]
        lines.append(f"{p:<12}{rec.warmup_percentage[p]:>12.3f}{'n/a' if cap is None else f'{cap:,}':>16}"
                     + (f"{guard[p]:>14,}" if guard else ""))
    total = rec.total_cap
    lines.append(f"{'total':<12}{'':>12}{'n/a' if total is None else f'{total:,}':>16}"
                 + (f"{sum(guard.values()):>14,}" if guard else ""))
    if total is None:
        lines += ["", "caps need tomorrow's demand: add a demand column or --demand PROVIDER=EMAILS ..."]
        if guard:
            lines.append("until then, send no provider more than its jump guard column (the warm-up % is the "
                         "policy's own and may exceed it)")
    audience = [f for f in rec.imputed if f.startswith("audience_")]
    others = [f for f in rec.imputed if not f.startswith("audience_")]
    if rec.ignored:
        lines += ["", "--audience ignored: this policy was trained on one fixed list and never saw the audience "
                  "vary (train on ipwarmup/Randomized-v1 for a policy that uses it); set to the training mean"]
    elif audience:
        lines += ["", "audience features imputed (set to the training mean): the list's composition was not "
                  "given; add --audience " + " ".join(f"{t}=FRACTION" for t in rt.AUDIENCE_TIERS)]
    if others:
        lines += ["", f"not in the statistics, set to the training mean: {', '.join(others)}"]
    if summary is not None:
        used = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.events.items()))
        lines += ["", f"SES events read: {used}"]
        if summary.rejected:
            lines.append(f"rejected by SES before sending (not counted as sent): {summary.rejected:,} recipients")
        if summary.ignored:
            ignored = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.ignored.items()))
            lines.append(f"not used by the policy: {ignored}")
    return "\n".join(lines)


def recommend(policy: Path, stats: Path, mapping: Path | None = None, demand: Sequence[str] = (),
              start: str | None = None, audience: Sequence[str] = ()) -> tuple[rt.Recommendation, EventSummary | None]:
    """Load the card, read the statistics, and ask the runtime for tomorrow's caps.

    Every argument is checked before the statistics are read: audience, start date, card, demand, mapping.
    """
    tiers = parse_audience(audience)  # before anything is read: a typo here costs nothing
    if start is not None:
        rt.parse_date(start, "--start")
    runtime = rt.load(policy)
    tomorrow = parse_demand(demand, runtime.providers) or None
    provider_map = ProviderMap.load(mapping, runtime.providers) if mapping is not None else None
    rows, summary = read_stats(stats, runtime.providers, mapping=provider_map)
    return runtime.recommend(rows, start=start, demand=tomorrow, audience=tiers), summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = OneLineParser(prog="ipwarmup recommend",
                           description="Tomorrow's per-provider caps from delivery statistics.")
    parser.add_argument("--policy", type=Path, required=True, help="exported policy folder or its policy.json")
    parser.add_argument("--stats", type=Path, required=True, help="statistics CSV or SES event JSON lines")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--mapping", type=Path, help="JSON/YAML {provider: [domains]} for SES recipients")
    parser.add_argument("--demand", nargs="+", default=[], metavar="PROVIDER=EMAILS",
                        help="tomorrow's mail per provider (default: the statistics' last demand values)")
    parser.add_argument("--start", help="warm-up start date YYYY-MM-DD (default: the first date in the statistics)")
    parser.add_argument("--audience", nargs="+", default=[], metavar="TIER=FRACTION",
                        help="the list's share per engagement tier by last open, from the ESP: "
                             f"{', '.join(rt.AUDIENCE_TIERS)} (all four, summing to 1; default: the training mean)")
    args = parser.parse_args(argv)
    try:
        rec, summary = recommend(args.policy, args.stats, args.mapping, args.demand, args.start, args.audience)
    except (rt.CardError, rt.HistoryError, StatsError) as exc:
        fail("ipwarmup recommend", exc)
    if args.json:
        out: dict[str, Any] = rec.as_dict()
        if summary is not None:
            out["ses_events"] = {"events": dict(summary.events), "ignored": dict(summary.ignored),
                                 "rejected_recipients": summary.rejected}
        print(json.dumps(out, indent=1))
    else:
        print(format_table(rec, summary))


if __name__ == "__main__":
    main()
