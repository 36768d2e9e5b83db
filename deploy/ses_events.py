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
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.providers import FALLBACK_PROVIDER, PROVIDER_RECORDS
from deploy.runtime import COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

DEFAULT_DOMAINS: dict[str, list[str]] = {p.name: list(p.recipient_domains) for p in PROVIDER_RECORDS
                                         if p.recipient_domains}
"""Recipient domains per provider (``core.providers``); ``name.*`` is ``name`` under any public suffix."""
USED_EVENTS = ("Send", "Reject", "Delivery", "DeliveryDelay", "Bounce", "Complaint", "Open")
IGNORED_EVENTS = ("Click", "Rendering Failure", "RenderingFailure", "Subscription")
BOUNCE_TYPES = ("Permanent", "Transient", "Undetermined")


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
            text = path.read_text()
        except OSError as exc:
            raise StatsError(f"{path}: cannot read the provider mapping ({exc.strerror})") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:
            raise StatsError(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'}"
                             f" ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise StatsError(f"{path}: the mapping must be an object of provider -> list of domains")
        overrides = {str(p): [str(d).lower() for d in v] for p, v in data.items()}
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
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where} {value!r} is not an ISO 8601 timestamp") from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return stamp.date()


def _addresses(items: Any, where: str, key: str | None = "emailAddress") -> list[str]:
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where} must be a non-empty list of recipients")
    out = []
    for item in items:
        address = item.get(key) if key is not None and isinstance(item, dict) else item
        if not isinstance(address, str) or "@" not in address:
            raise ValueError(f"{where} holds {address!r}, not an email address")
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
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            envelope = isinstance(record, dict) and record.get("Type") == "Notification"
            if envelope and isinstance(record.get("Message"), str):
                try:
                    record = json.loads(record["Message"])
                except json.JSONDecodeError as exc:
                    raise ValueError(f"SNS Message is not valid JSON ({exc.msg})") from None
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
                for address, item in zip(addresses, bounced or [], strict=True):
                    counts[(day, mapping.provider(address))][_bounce_kind(bounce_type, item.get("status"))] += 1
            elif kind == "Complaint":
                section = _section(record, "complaint")
                add(_timestamp(section.get("timestamp"), "complaint.timestamp"),
                    _addresses(section.get("complainedRecipients"), "complaint.complainedRecipients"), "complaints")
            elif kind == "Open":
                section = _section(record, "open")
                day = _timestamp(section.get("timestamp"), "open.timestamp")
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
        value = float(text)
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise ValueError(f"{column} must be a percentage in [0, 100], got {text!r}")
        return value
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{column} must be a whole number of emails, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{column} must not be negative, got {text!r}")
    return float(value)


def parse_csv(lines: Iterable[str], providers: Sequence[str], source: str = "stats") -> list[dict[str, Any]]:
    """Rows from a statistics CSV (header: date, provider, the required and any optional columns)."""
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise StatsError(f"{source}: the file is empty") from None
    known = ("date", "provider") + COLUMNS
    for name in header:
        if name not in known:
            raise StatsError(f"{source} line 1: unknown column {name!r} (known: {', '.join(known)})")
    missing = [c for c in ("date", "provider") + REQUIRED_COLUMNS if c not in header]
    if missing:
        raise StatsError(f"{source} line 1: missing required column(s) {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise StatsError(f"{source} line 1: a column appears twice")
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[dt.date, str], int] = {}
    for cells in reader:
        number = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        try:
            if len(cells) != len(header):
                raise ValueError(f"{len(cells)} fields, the header has {len(header)}")
            raw = {h: c.strip() for h, c in zip(header, cells, strict=True)}
            try:
                day = dt.date.fromisoformat(raw["date"])
            except ValueError:
                raise ValueError(f"date {raw['date']!r} is not YYYY-MM-DD") from None
            if raw["provider"] not in providers:
                raise ValueError(f"unknown provider {raw['provider']!r} (the policy knows {', '.join(providers)})")
            key = (day, raw["provider"])
            if key in seen:
                raise ValueError(f"{raw['provider']} on {day} already appeared on line {seen[key]}")
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
        except ValueError as exc:
            raise StatsError(f"{source} line {number}: {exc}") from None
        rows.append(row)
    if not rows:
        raise StatsError(f"{source}: no statistics rows after the header")
    return rows


def read_stats(path: Path, providers: Sequence[str], mapping_file: Path | None = None
               ) -> tuple[list[dict[str, Any]], EventSummary | None]:
    """CSV or SES JSON lines (told apart by the first non-blank character: ``{`` means JSON)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise StatsError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise StatsError(f"{path}: not a text file") from None
    if text.lstrip().startswith("{"):
        rows, summary = parse_events(text.splitlines(), ProviderMap.load(mapping_file, providers), str(path))
        if not rows:
            raise StatsError(f"{path}: no events that carry statistics")
        return rows, summary
    return parse_csv(text.splitlines(), providers, str(path)), None


__all__ = ["DEFAULT_DOMAINS", "OPTIONAL_COLUMNS", "EventSummary", "ProviderMap", "StatsError", "parse_csv",
           "parse_events", "read_stats"]
