"""Read a sender's daily statistics: a CSV table, or Amazon SES event-publishing records grouped by day and provider.

Standard library only (plus PyYAML, imported only for a ``.yaml`` mapping file), so the scheduler-side
path (``ipwarmup recommend``) stays free of PyTorch and gymnasium. Every malformed line is an error that
names its line number and the reason; nothing is skipped or guessed.

SES records are JSON lines as event publishing delivers them to Firehose (``eventType``), optionally
wrapped in an SNS envelope (``Type: Notification`` with the record as the ``Message`` string); SES
notifications' ``notificationType`` is read like ``eventType``. Counts are per recipient; the day is the
UTC date of the event's own timestamp (``delivery.timestamp``, ``bounce.timestamp`` ...; ``mail.timestamp``
for Send and Reject). Mapping to the statistics columns:

==============================================  ==========================================================
event                                           counts as
==============================================  ==========================================================
Send (``mail.destination``)                     ``first_attempts``
Reject (``mail.destination``)                   removed from ``first_attempts`` (SES never sent it); shown
Delivery (``delivery.recipients``)              ``delivered``
DeliveryDelay (``deliveryDelay.delayedRecipients``)  ``deferred``
Bounce, recipient status X.4.7                  ``expired`` (SES stopped retrying; not an attempt)
Bounce Permanent, status not X.7.x              ``bounced`` (hard bounce)
Bounce Transient / Undetermined / X.7.x         ``blocked`` (rejection by reputation, policy or content)
Complaint (``complaint.complainedRecipients``)  ``complaints``
Open (``mail.destination``, one provider)       ``opens`` (column left missing if the file has no Open)
Click, Rendering Failure, Subscription          not used; counted and reported
==============================================  ==========================================================

``sent`` (delivery attempts) is ``delivered + deferred + bounced + blocked`` of the day, as in the simulator.

Files are read line by line (memory does not grow with the file) under documented limits, each refused with
a one-line error naming the file and line: a statistics CSV is at most :data:`MAX_CSV_BYTES` with lines of
at most :data:`MAX_CSV_LINE` bytes; an event file at most :data:`MAX_EVENTS_BYTES` with lines of at most
:data:`MAX_EVENT_LINE` bytes; dates span at most ``deploy.runtime.MAX_SPAN_DAYS`` days; a provider mapping
is at most :data:`MAX_MAPPING_BYTES` and YAML aliases are refused. A UTF-8 byte order mark (Excel's "CSV
UTF-8") is accepted. A CSV row must be consistent: delivered, deferred, bounced, blocked and first attempts
each at most sent, delivered + bounced + blocked at most sent, complaints at most delivered.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.providers import FALLBACK_PROVIDER, PROVIDER_RECORDS
from core.util import load_json, read_regular_file, safe_yaml_load, shorten
from deploy.runtime import (
    COLUMNS,
    DASHBOARD_COLUMNS,
    MAX_COUNT,
    MAX_SPAN_DAYS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    HistoryError,
    check_date,
    dashboard_code,
)

DEFAULT_DOMAINS: dict[str, list[str]] = {p.name: list(p.recipient_domains) for p in PROVIDER_RECORDS
                                         if p.recipient_domains}
"""Recipient domains per provider (``core.providers``); ``name.*`` is ``name`` under any public suffix."""
USED_EVENTS = ("Send", "Reject", "Delivery", "DeliveryDelay", "Bounce", "Complaint", "Open")
IGNORED_EVENTS = ("Click", "Rendering Failure", "RenderingFailure", "Subscription")
BOUNCE_TYPES = ("Permanent", "Transient", "Undetermined")
MAX_CSV_BYTES = 256 << 20
"""A statistics CSV holds one row per provider and day: 256 MiB is far more than ten years of them."""
MAX_CSV_LINE = 64 << 10
MAX_EVENTS_BYTES = 16 << 30
"""SES event files grow with every recipient; they are streamed, so this bounds time, not memory."""
MAX_EVENT_LINE = 1 << 20
MAX_MAPPING_BYTES = 1 << 20
MAX_MAPPING_DOMAINS = 100_000
MAX_ADDRESS = 1000
BOM = b"\xef\xbb\xbf"


class StatsError(ValueError):
    """A statistics file or mapping is malformed; the message names the file, the line and the reason."""


class ProviderMap:
    """Recipient domain -> provider, by exact domain or ``name.*`` pattern; unmatched -> ``other``."""

    def __init__(self, domains: dict[str, list[str]], providers: Sequence[str]) -> None:
        self.providers = tuple(providers)
        for provider in domains:
            if provider not in self.providers:
                raise StatsError(f"provider mapping names unknown provider {provider!r} "
                                 f"(the policy knows {', '.join(self.providers)})")
        if FALLBACK_PROVIDER not in self.providers:
            raise StatsError(f"the policy has no {FALLBACK_PROVIDER!r} provider for unmatched domains")
        self.exact: dict[str, str] = {}
        self.patterns: list[tuple[str, str]] = []
        for provider, entries in domains.items():
            for entry in entries:
                entry = str(entry).strip().lower()
                if entry.endswith(".*"):
                    self.patterns.append((entry[:-2], provider))
                else:
                    self.exact[entry] = provider
        self.cache: dict[str, str] = {}

    @staticmethod
    def load(path: Path | None, providers: Sequence[str]) -> ProviderMap:
        """The default mapping, with a JSON/YAML file's ``{provider: [domains]}`` entries taking precedence."""
        domains = {p: list(d) for p, d in DEFAULT_DOMAINS.items()}
        if path is None:
            return ProviderMap(domains, providers)
        try:
            text = read_regular_file(path, MAX_MAPPING_BYTES, "provider mapping").decode("utf-8-sig")
            data = (safe_yaml_load(text, str(path)) if path.suffix.lower() in (".yaml", ".yml")
                    else load_json(text, str(path)))
        except UnicodeDecodeError:
            raise StatsError(f"{path}: the provider mapping is not UTF-8 text") from None
        except ValueError as exc:
            raise StatsError(str(exc)) from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise StatsError(f"{path}: the mapping must be an object of provider -> list of domains")
        overrides: dict[str, list[str]] = {}
        for provider, entries in data.items():
            for entry in entries:
                if not isinstance(entry, str) or not 0 < len(entry) <= 253:
                    raise StatsError(f"{path}: {shorten(provider)} lists {shorten(entry)}, not a domain name")
            overrides[str(provider)] = [e.strip().lower() for e in entries]
        if sum(len(v) for v in overrides.values()) > MAX_MAPPING_DOMAINS:
            raise StatsError(f"{path}: more than {MAX_MAPPING_DOMAINS:,} domains")
        taken = {d for v in overrides.values() for d in v}
        for provider in domains:  # a domain listed in the file moves to the file's provider
            domains[provider] = [d for d in domains[provider] if d not in taken]
        for provider, entries in overrides.items():
            domains.setdefault(provider, []).extend(entries)
        return ProviderMap(domains, providers)

    def provider(self, address: str) -> str:
        domain = address.rsplit("@", 1)[-1].strip().strip(">").lower()
        found = self.cache.get(domain)
        if found is None:
            found = self.exact.get(domain)
            if found is None:
                head, _, suffix = domain.partition(".")
                for name, provider in self.patterns:
                    if head == name and suffix and suffix.count(".") <= 1:
                        found = provider
                        break
            found = found or FALLBACK_PROVIDER
            if len(self.cache) >= MAX_MAPPING_DOMAINS:  # a file of millions of distinct domains: bounded memory
                self.cache.clear()
            self.cache[domain] = found
        return found


@dataclass
class EventSummary:
    """What an event file held, for the report: events by type, and those not used by the policy."""

    events: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    rejected: int = 0


def _timestamp(value: Any, where: str) -> dt.date:
    if not isinstance(value, str):
        raise ValueError(f"{where} is missing")
    try:
        if len(value) > 64:
            raise ValueError
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where} {shorten(value)} is not an ISO 8601 timestamp") from None
    try:
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.UTC)
        return check_date(stamp.date(), f"{where} {value!r} falls on")
    except (OverflowError, HistoryError):
        raise ValueError(f"{where} {value!r} is outside the dates statistics may carry "
                         "(1970-01-01..2999-12-31 UTC)") from None


def _addresses(items: Any, where: str, key: str | None = "emailAddress") -> list[str]:
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where} must be a non-empty list of recipients")
    out = []
    for item in items:
        if key is not None and not isinstance(item, dict):
            raise ValueError(f"{where} must hold objects with {key!r}, got {shorten(item)}")
        address = item.get(key) if key is not None else item
        if not isinstance(address, str) or "@" not in address or len(address) > MAX_ADDRESS:
            raise ValueError(f"{where} holds {shorten(address)}, not an email address")
        out.append(address)
    return out


def _section(record: dict[str, Any], name: str) -> dict[str, Any]:
    value = record.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"{name!r} object is missing")
    return value


def _is_expiry(status: Any) -> bool:
    return isinstance(status, str) and status.strip()[2:] == "4.7" and status.strip()[:1] in ("4", "5")


def _bounce_kind(bounce_type: str, status: Any) -> str:
    if _is_expiry(status):
        return "expired"
    policy = isinstance(status, str) and status.strip()[1:3] == ".7"
    return "bounced" if bounce_type == "Permanent" and not policy else "blocked"


def parse_events(lines: Iterable[str], mapping: ProviderMap, source: str = "events"
                 ) -> tuple[list[dict[str, Any]], EventSummary]:
    """Daily per-provider rows (the statistics columns) from SES JSON lines; any bad line raises StatsError."""
    counts: dict[tuple[dt.date, str], Counter[str]] = defaultdict(Counter)
    summary = EventSummary()
    seen_open = False
    span = _Span()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _json(line, "not valid JSON")
            envelope = isinstance(record, dict) and record.get("Type") == "Notification"
            if envelope and isinstance(record.get("Message"), str):
                record = _json(record["Message"], "SNS Message is not valid JSON")
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            kind = record.get("eventType", record.get("notificationType"))
            if not isinstance(kind, str):
                raise ValueError("no eventType")
            summary.events[kind] += 1
            if kind in IGNORED_EVENTS:
                summary.ignored[kind] += 1
                continue
            if kind not in USED_EVENTS:
                known = ", ".join(USED_EVENTS + IGNORED_EVENTS)
                raise ValueError(f"unknown eventType {kind!r} (SES publishes {known})")
            mail = _section(record, "mail")

            def add(day: dt.date, addresses: list[str], column: str, sign: int = 1) -> None:
                span.add(day)
                for address in addresses:
                    counts[(day, mapping.provider(address))][column] += sign

            if kind in ("Send", "Reject"):
                day = _timestamp(mail.get("timestamp"), "mail.timestamp")
                recipients = _addresses(mail.get("destination"), "mail.destination", key=None)
                add(day, recipients, "first_attempts", 1 if kind == "Send" else -1)
                summary.rejected += len(recipients) if kind == "Reject" else 0
            elif kind == "Delivery":
                section = _section(record, "delivery")
                add(_timestamp(section.get("timestamp"), "delivery.timestamp"),
                    _addresses(section.get("recipients"), "delivery.recipients", key=None), "delivered")
            elif kind == "DeliveryDelay":
                section = _section(record, "deliveryDelay")
                add(_timestamp(section.get("timestamp"), "deliveryDelay.timestamp"),
                    _addresses(section.get("delayedRecipients"), "deliveryDelay.delayedRecipients"), "deferred")
            elif kind == "Bounce":
                section = _section(record, "bounce")
                bounce_type = section.get("bounceType")
                if bounce_type not in BOUNCE_TYPES:
                    raise ValueError(f"bounce.bounceType {bounce_type!r} is not one of {', '.join(BOUNCE_TYPES)}")
                day = _timestamp(section.get("timestamp"), "bounce.timestamp")
                bounced = section.get("bouncedRecipients")
                addresses = _addresses(bounced, "bounce.bouncedRecipients")
                span.add(day)
                for address, item in zip(addresses, bounced or [], strict=True):
                    counts[(day, mapping.provider(address))][_bounce_kind(bounce_type, item.get("status"))] += 1
            elif kind == "Complaint":
                section = _section(record, "complaint")
                add(_timestamp(section.get("timestamp"), "complaint.timestamp"),
                    _addresses(section.get("complainedRecipients"), "complaint.complainedRecipients"), "complaints")
            elif kind == "Open":
                section = _section(record, "open")
                day = _timestamp(section.get("timestamp"), "open.timestamp")
                span.add(day)
                providers = {mapping.provider(a) for a in _addresses(mail.get("destination"), "mail.destination", None)}
                if len(providers) != 1:
                    raise ValueError(f"an Open of a message to several providers ({', '.join(sorted(providers))}) "
                                     "cannot be attributed to one of them")
                counts[(day, providers.pop())]["opens"] += 1
                seen_open = True
        except ValueError as exc:
            raise StatsError(f"{source} line {number}: {exc}") from None
    rows = []
    for (day, provider), c in sorted(counts.items()):
        if c["first_attempts"] < 0:
            raise StatsError(f"{source}: {provider} on {day} has more Reject than Send recipients")
        row: dict[str, Any] = {"date": day, "provider": provider}
        for column in ("delivered", "deferred", "bounced", "blocked", "complaints", "expired", "first_attempts"):
            row[column] = c[column]
        row["sent"] = c["delivered"] + c["deferred"] + c["bounced"] + c["blocked"]
        row["opens"] = c["opens"] if seen_open else None
        rows.append(row)
    return fill_providers(rows, mapping.providers, seen_open), summary


class _Span:
    """The first and last date seen so far; more than ``MAX_SPAN_DAYS`` apart is an error, at once."""

    def __init__(self) -> None:
        self.first: dt.date | None = None
        self.last: dt.date | None = None

    def add(self, day: dt.date) -> None:
        self.first = day if self.first is None else min(self.first, day)
        self.last = day if self.last is None else max(self.last, day)
        days = (self.last - self.first).days + 1
        if days > MAX_SPAN_DAYS:
            raise ValueError(f"dates from {self.first} to {self.last} span {days:,} days; at most {MAX_SPAN_DAYS:,} "
                             "are read")


def _json(text: str, problem: str) -> Any:
    """One JSON value; syntax errors, NaN/Infinity and nesting deeper than Python's stack are ValueErrors."""
    try:
        return load_json(text, problem, allow_nan=False)
    except ValueError as exc:
        raise ValueError(str(exc).replace(f"{problem}: not valid JSON", problem)) from None


def fill_providers(rows: list[dict[str, Any]], providers: Sequence[str], opens: bool) -> list[dict[str, Any]]:
    """Add zero rows for providers without events on a day that has events (their silence is a count of 0)."""
    present = {(r["date"], r["provider"]) for r in rows}
    for day in sorted({r["date"] for r in rows}):
        for provider in providers:
            if (day, provider) not in present:
                row: dict[str, Any] = {"date": day, "provider": provider, "sent": 0}
                row.update(dict.fromkeys(("delivered", "deferred", "bounced", "blocked", "complaints", "expired",
                                          "first_attempts"), 0))
                row["opens"] = 0 if opens else None
                rows.append(row)
    return sorted(rows, key=lambda r: (r["date"], providers.index(r["provider"])))


def _number(text: str, column: str) -> float:
    if column == "warmup_percentage":
        try:
            value = float(text) if len(text) <= 40 else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise ValueError(f"{column} must be a percentage in [0, 100], got {shorten(text)}")
        return value
    if len(text) > 20 and text.lstrip("+-").isdigit():
        raise ValueError(f"{column} must be at most {MAX_COUNT:,} emails, got {shorten(text)}")
    try:
        whole = int(text) if len(text) <= 20 else None
    except ValueError:
        whole = None
    if whole is None:
        raise ValueError(f"{column} must be a whole number of emails, got {shorten(text)}")
    if whole < 0:
        raise ValueError(f"{column} must not be negative, got {shorten(text)}")
    if whole > MAX_COUNT:
        raise ValueError(f"{column} must be at most {MAX_COUNT:,} emails, got {shorten(text)}")
    return float(whole)


def _consistent(row: dict[str, Any]) -> None:
    """Counts that cannot coexist in one day's row (each attempt has one outcome; complaints need delivery)."""
    sent = row["sent"]
    for column in ("delivered", "deferred", "bounced", "blocked", "first_attempts"):
        if row.get(column) is not None and row[column] > sent:
            raise ValueError(f"{column} ({row[column]:,.0f}) exceeds sent ({sent:,.0f})")
    outcomes = row["delivered"] + row["bounced"] + row["blocked"]
    if outcomes > sent:
        raise ValueError(f"delivered + bounced + blocked ({outcomes:,.0f}) exceeds sent ({sent:,.0f}): each attempt "
                         "ends one way")
    if row["complaints"] > row["delivered"]:
        raise ValueError(f"complaints ({row['complaints']:,.0f}) exceed delivered ({row['delivered']:,.0f})")


def parse_csv(lines: Iterable[str], providers: Sequence[str], source: str = "stats") -> list[dict[str, Any]]:
    """Rows from a statistics CSV (header: date, provider, the required and any optional columns)."""
    reader = csv.reader(_strip_bom(lines))
    try:
        try:
            header = [h.strip() for h in next(reader)]
            while not any(header):  # blank lines before the header
                header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise StatsError(f"{source}: the file is empty") from None
        known = ("date", "provider") + COLUMNS + tuple(DASHBOARD_COLUMNS)
        for name in header:
            if name not in known:
                raise StatsError(f"{source} line {reader.line_num}: unknown column {shorten(name)} "
                                 f"(known: {', '.join(known)})")
        missing = [c for c in ("date", "provider") + REQUIRED_COLUMNS if c not in header]
        if missing:
            raise StatsError(f"{source} line {reader.line_num}: missing required column(s) {', '.join(missing)}")
        if len(set(header)) != len(header):
            raise StatsError(f"{source} line {reader.line_num}: a column appears twice")
        rows: list[dict[str, Any]] = []
        seen: dict[tuple[dt.date, str], int] = {}
        span = _Span()
        for cells in reader:
            number = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            try:
                if len(cells) != len(header):
                    raise ValueError(f"{len(cells)} fields, the header has {len(header)}")
                raw = {h: c.strip() for h, c in zip(header, cells, strict=True)}
                try:
                    day = dt.date.fromisoformat(raw["date"]) if len(raw["date"]) <= 32 else None
                except ValueError:
                    day = None
                if day is None:
                    raise ValueError(f"date {shorten(raw['date'])} is not YYYY-MM-DD")
                try:
                    check_date(day)
                except HistoryError as exc:
                    raise ValueError(str(exc)) from None
                if raw["provider"] not in providers:
                    raise ValueError(f"unknown provider {shorten(raw['provider'])} (the policy knows "
                                     f"{', '.join(providers)})")
                key = (day, raw["provider"])
                if key in seen:
                    raise ValueError(f"{raw['provider']} on {day} already appeared on line {seen[key]}")
                span.add(day)
                seen[key] = number
                row: dict[str, Any] = {"date": day, "provider": raw["provider"]}
                for column in COLUMNS:
                    text = raw.get(column, "")
                    if text == "":
                        if column in REQUIRED_COLUMNS:
                            raise ValueError(f"required value {column!r} is empty")
                        row[column] = None
                        continue
                    row[column] = _number(text, column)
                for column, (owner, levels) in DASHBOARD_COLUMNS.items():  # words: HIGH, green, none
                    row[column] = raw.get(column) or None
                    if row[column] is not None and raw["provider"] == owner:
                        dashboard_code(row[column], levels, column)  # named with its line here, not later
                _consistent(row)
            except ValueError as exc:
                raise StatsError(f"{source} line {number}: {exc}") from None
            rows.append(row)
    except csv.Error as exc:
        raise StatsError(f"{source} line {reader.line_num}: not readable as CSV ({exc})") from None
    if not rows:
        raise StatsError(f"{source}: no statistics rows after the header")
    return rows


def _strip_bom(lines: Iterable[str]) -> Iterator[str]:
    """The lines, the first without a UTF-8 byte order mark (Excel's "CSV UTF-8" starts with one)."""
    first = True
    for line in lines:
        yield line.removeprefix("\ufeff") if first else line
        first = False


def read_lines(path: Path, max_line: int, max_bytes: int, what: str) -> Generator[str, None, None]:
    """The lines of a text file, read one at a time, UTF-8 (a leading byte order mark dropped); a line longer
    than ``max_line`` bytes, more than ``max_bytes`` in all, or bytes that are not UTF-8 raise StatsError."""
    try:
        handle = path.open("rb")
    except IsADirectoryError:
        raise StatsError(f"{path} is a folder, not {what}") from None
    except OSError as exc:
        raise StatsError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        total, number = 0, 0
        while True:
            try:
                raw = handle.readline(max_line + 1)
            except OSError as exc:
                raise StatsError(f"{path}: cannot read ({exc.strerror})") from None
            if not raw:
                return
            number += 1
            total += len(raw)
            if total > max_bytes:
                raise StatsError(f"{path}: more than {max_bytes:,} bytes, the limit for {what}")
            if len(raw) > max_line and not raw.endswith(b"\n"):
                raise StatsError(f"{path} line {number}: longer than {max_line:,} bytes, the limit for {what}")
            if number == 1:
                raw = raw.removeprefix(BOM)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise StatsError(f"{path} line {number}: not UTF-8 text") from None


def read_stats(path: Path, providers: Sequence[str], mapping_file: Path | None = None,
               mapping: ProviderMap | None = None) -> tuple[list[dict[str, Any]], EventSummary | None]:
    """CSV or SES JSON lines (told apart by the first non-blank character: ``{`` means JSON), streamed.

    SES recipients map to providers with ``mapping`` (already loaded), else ``mapping_file``, else the defaults.
    """
    path = Path(path)
    with contextlib.closing(read_lines(path, MAX_EVENT_LINE, MAX_EVENTS_BYTES, "a statistics file")) as lines:
        head: list[str] = []
        for line in lines:
            head.append(line)
            if line.strip():
                break
        if head and head[-1].lstrip().startswith("{"):
            mapping = mapping or ProviderMap.load(mapping_file, providers)
            rows, summary = parse_events(itertools.chain(head, lines), mapping, str(path))
            if not rows:
                raise StatsError(f"{path}: no events that carry statistics")
            return rows, summary
        return parse_csv(_csv_limits(itertools.chain(head, lines), path), providers, str(path)), None


def _csv_limits(lines: Iterable[str], path: Path) -> Iterator[str]:
    """A statistics CSV's tighter limits on the shared line reader: line length and total size."""
    total = 0
    for number, line in enumerate(lines, start=1):
        size = len(line.encode())
        total += size
        if size > MAX_CSV_LINE + 2:
            raise StatsError(f"{path} line {number}: longer than {MAX_CSV_LINE:,} bytes, the limit for a "
                             "statistics CSV")
        if total > MAX_CSV_BYTES:
            raise StatsError(f"{path}: more than {MAX_CSV_BYTES:,} bytes, the limit for a statistics CSV")
        yield line


__all__ = ["DEFAULT_DOMAINS", "OPTIONAL_COLUMNS", "EventSummary", "ProviderMap", "StatsError", "parse_csv",
           "parse_events", "read_stats"]
