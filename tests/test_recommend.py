"""``ipwarmup recommend``: SES events and CSV statistics in, tomorrow's caps out; bad input named by line."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_helpers import START, audience, audience_args, exported, ses_events, simulate, stats_rows

from core.features import LAYOUT
from core.providers import PROVIDERS
from deploy import runtime as rt
from deploy.ses_events import ProviderMap, StatsError, parse_csv, parse_events

REPO = Path(__file__).resolve().parent.parent
EVENT_COLUMNS = ("sent", "delivered", "deferred", "bounced", "blocked", "complaints", "opens", "expired")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ipwarmup_cli", "recommend", *args], cwd=REPO, capture_output=True,
                          text=True, check=False)


class RampPolicy:
    """Ramps every provider from 1% to all of its mail in two days: deferrals, blocks and expiries follow."""

    def predict(self, obs: np.ndarray, state: object = None, episode_start: object = None,
                deterministic: bool = True) -> tuple[np.ndarray, object]:
        day = obs[:, LAYOUT.index(None, "day")]
        return np.repeat(np.clip(0.5 * day, 0.0, 1.0)[:, None], len(PROVIDERS), axis=1), state


def episode(seed: int = 0) -> tuple[list[dict], list[np.ndarray]]:
    """An 8-day episode of a cold IP pushed at 40,000 emails/day, 24 h retry window: every event type occurs."""
    _, infos, shares = simulate(RampPolicy(), seed=seed, noise=0.1, horizon=8, demand=40_000, retry_window_hours=24,
                                initial_reputation=(0.4, 0.4))
    return infos, shares


@pytest.mark.parametrize("seed", [0, 1])
def test_ses_events_aggregate_to_the_simulators_statistics(seed: int) -> None:
    infos, _ = episode(seed)
    rows, summary = parse_events(ses_events(infos), ProviderMap.load(None, PROVIDERS))
    assert len(rows) == len(infos) * len(PROVIDERS)
    retry_queue = np.zeros(len(PROVIDERS), np.int64)
    for d, info in enumerate(infos):
        for i, p in enumerate(PROVIDERS):
            row = next(r for r in rows if r["date"] == START + dt.timedelta(days=d) and r["provider"] == p)
            want = {c: int(info[c][i]) for c in EVENT_COLUMNS}
            want["complaints"] *= int(info["fbl"][i])  # iCloud's complaints are invisible
            want["first_attempts"] = int(info["sent"][i] - retry_queue[i])
            assert {c: row[c] for c in want} == want, (d, p)
        retry_queue = info["queued"]
    totals = {c: sum(r[c] for r in rows) for c in EVENT_COLUMNS}
    assert min(totals.values()) > 0, totals  # the episode exercised every kind of event
    assert not summary.ignored


def test_statistics_from_events_give_the_same_recommendation_as_the_simulators() -> None:
    """With the demand given, the events path reproduces every feature the statistics path computes."""
    _, folder = exported()
    runtime = rt.load(folder)
    infos, shares = episode(2)
    rows, _ = parse_events(ses_events(infos), ProviderMap.load(None, PROVIDERS))
    demand = infos[0]["demand_by_provider"]
    for row in rows:
        row["demand"] = int(demand[PROVIDERS.index(row["provider"])])
    direct = stats_rows(infos, shares, EVENT_COLUMNS + ("demand",))
    from_events = runtime.observations(rt.History.from_rows(rows, PROVIDERS))
    from_stats = runtime.observations(rt.History.from_rows(direct, PROVIDERS))
    np.testing.assert_allclose(from_events, from_stats, rtol=1e-6, atol=1e-6)


def test_rejects_and_unused_events_are_reported_not_dropped() -> None:
    mail = {"timestamp": "2025-03-01T10:00:00.000Z", "destination": ["a@gmail.com", "b@hotmail.com"]}
    lines = [
        json.dumps({"eventType": "Send", "mail": mail, "send": {}}),
        json.dumps({"eventType": "Reject", "mail": mail, "reject": {"reason": "Bad content"}}),
        json.dumps({"eventType": "Send", "mail": {**mail, "destination": ["c@gmail.com"]}, "send": {}}),
        json.dumps({"eventType": "Click", "mail": mail, "click": {"timestamp": "2025-03-01T11:00:00Z"}}),
    ]
    rows, summary = parse_events(lines, ProviderMap.load(None, PROVIDERS))
    gmail = next(r for r in rows if r["provider"] == "gmail")
    assert gmail["first_attempts"] == 1 and summary.rejected == 2
    assert summary.ignored == {"Click": 1}


def test_domains_map_to_providers_and_the_mapping_is_configurable(tmp_path: Path) -> None:
    default = ProviderMap.load(None, PROVIDERS)
    cases = {"x@GoogleMail.com": "gmail", "x@hotmail.co.uk": "microsoft", "x@live.fr": "microsoft",
             "x@msn.com": "microsoft", "x@yahoo.co.jp": "yahoo", "x@aol.com": "yahoo", "x@me.com": "apple",
             "x@mac.com": "apple", "x@example.org": "other", "x@live.example.org.uk": "other",
             "x@gmail.example.com": "other"}
    assert {a: default.provider(a) for a in cases} == cases
    (tmp_path / "map.yaml").write_text("microsoft: [corp.example.org]\nyahoo: [me.com]\n")
    custom = ProviderMap.load(tmp_path / "map.yaml", PROVIDERS)
    assert custom.provider("x@corp.example.org") == "microsoft"
    assert custom.provider("x@me.com") == "yahoo"
    assert custom.provider("x@gmail.com") == "gmail"
    (tmp_path / "bad.json").write_text('{"hotmail": ["hotmail.com"]}')
    with pytest.raises(StatsError, match="unknown provider 'hotmail'"):
        ProviderMap.load(tmp_path / "bad.json", PROVIDERS)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _episode_csv(path: Path) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """The exported policy's folder, and a 3-day simulated episode's infos and statistics, written to ``path``."""
    _, folder = exported()
    infos, shares = episode(3)
    rows = stats_rows(infos, shares, ("sent", "delivered", "deferred", "bounced", "blocked", "complaints", "opens",
                                      "expired", "queued", "demand", "warmup_percentage", "overflow",
                                      "overflow_delivered", "overflow_bounced", "overflow_complaints",
                                      "postmaster_band", "snds_colour"))
    _write_csv(path, rows)
    return folder, infos, rows


def test_cli_on_a_csv_prints_the_runtimes_caps(tmp_path: Path) -> None:
    folder, infos, rows = _episode_csv(tmp_path / "stats.csv")
    result = cli("--policy", str(folder), "--stats", str(tmp_path / "stats.csv"), "--json", *audience_args(infos[0]))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    want = rt.load(folder).recommend(rows, audience=audience(infos[0]))
    assert out["date"] == (START + dt.timedelta(days=len(infos))).isoformat()
    assert out["day"] == len(infos) + 1
    assert {p: v["cap"] for p, v in out["providers"].items()} == want.caps
    assert out["imputed"] == []
    assert out["audience"] == pytest.approx(audience(infos[0]))
    table = cli("--policy", str(folder / "policy.json"), "--stats", str(tmp_path / "stats.csv"),
                *audience_args(infos[0]))
    assert table.returncode == 0 and "gmail" in table.stdout and f"{want.total_cap:,}" in table.stdout
    assert "imputed" not in table.stdout and "training mean" not in table.stdout
    assert out["guard_caps"] == want.guard_caps and want.guard_caps is not None
    assert "jump guard" in table.stdout and f"{sum(want.guard_caps.values()):,}" in table.stdout


def test_cli_without_audience_says_the_audience_was_imputed(tmp_path: Path) -> None:
    folder, infos, rows = _episode_csv(tmp_path / "stats.csv")
    table = cli("--policy", str(folder), "--stats", str(tmp_path / "stats.csv"))
    assert table.returncode == 0, table.stderr
    assert "audience features imputed" in table.stdout and "--audience opened_30d=" in table.stdout
    assert "not in the statistics" not in table.stdout  # every daily statistic was given
    out = json.loads(cli("--policy", str(folder), "--stats", str(tmp_path / "stats.csv"), "--json").stdout)
    assert out["imputed"] == sorted(f"audience_{t}" for t in rt.AUDIENCE_TIERS) and out["audience"] is None


GOOD_AUDIENCE = ("opened_30d=0.45", "opened_60d=0.25", "opened_90d=0.15", "older=0.15")


@pytest.mark.parametrize(("audience", "message"), [
    (("opened_30d=0.45", "opened_60d=0.25", "opened_90d=0.15", "never=0.15"),
     "--audience 'never=0.15': expected TIER=FRACTION with TIER one of opened_30d, opened_60d, opened_90d, older"),
    (("opened_30d=0.45", "opened_60d=0.25", "opened_90d=0.15", "older"), "--audience 'older': expected TIER="),
    (("opened_30d=0.45", "opened_60d=0.25", "opened_90d=0.15", "older=lots"), "'lots' is not a number"),
    (("opened_30d=0.45", "opened_60d=0.25", "opened_90d=0.15"), "audience is missing older"),
    (GOOD_AUDIENCE + ("older=0.15",), "older is given twice"),
    (("opened_30d=45", "opened_60d=25", "opened_90d=15", "older=15"), "a percentage? 45% is 0.45"),
    (("opened_30d=0.45", "opened_60d=0.25", "opened_90d=0.15", "older=0.45"), "sum to 1.3, not 1"),
    (("opened_30d=nan", "opened_60d=0.25", "opened_90d=0.15", "older=0.15"), "between 0 and 1"),
    (("opened_30d=" + "1" * 400, "opened_60d=0", "opened_90d=0", "older=0"), "'111111"),  # echoed, not 'nan'
])
def test_cli_reports_a_bad_audience_in_one_line(tmp_path: Path, audience: tuple[str, ...], message: str) -> None:
    (tmp_path / "stats.csv").write_text(HEADER + GOOD)
    result = cli("--policy", str(exported()[1]), "--stats", str(tmp_path / "stats.csv"), "--audience", *audience)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    good = cli("--policy", str(exported()[1]), "--stats", str(tmp_path / "stats.csv"), "--audience", *GOOD_AUDIENCE)
    assert good.returncode == 0, good.stderr


def test_cli_on_ses_events_with_demand(tmp_path: Path) -> None:
    _, folder = exported()
    infos, _ = episode(4)
    (tmp_path / "events.jsonl").write_text("\n".join(ses_events(infos)) + "\n")
    demand = [f"{p}={int(d)}" for p, d in zip(PROVIDERS, infos[0]["demand_by_provider"], strict=True)]
    result = cli("--policy", str(folder), "--stats", str(tmp_path / "events.jsonl"), "--json", "--demand", *demand)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert all(isinstance(v["cap"], int) for v in out["providers"].values())
    assert out["ses_events"]["events"]["Send"] > 0
    # events carry no warm-up percentage for past days without a demand column: imputed and reported
    assert "gmail.warmup_share_log10" in out["imputed"]
    no_demand = cli("--policy", str(folder), "--stats", str(tmp_path / "events.jsonl"))
    assert no_demand.returncode == 0 and "n/a" in no_demand.stdout and "--demand" in no_demand.stdout


HEADER = "date,provider,sent,delivered,deferred,bounced,blocked,complaints,opens\n"
GOOD = "2025-03-01,gmail,100,90,5,3,2,0,20\n"


@pytest.mark.parametrize(("text", "message"), [
    (HEADER + GOOD + "2025-03-01,yahoo,100,ninety,5,3,2,0,20\n", "line 3: delivered must be a whole number"),
    (HEADER + GOOD + "2025-03-02,gmail,100,90,5,3\n", "line 3: 6 fields, the header has 9"),
    (HEADER + GOOD + "2025-03-01,gmail,100,90,5,3,2,0,20\n", "line 3: gmail on 2025-03-01 already appeared on line 2"),
    (HEADER + "2025-03-01,hotmail,100,90,5,3,2,0,20\n", "line 2: unknown provider 'hotmail'"),
    (HEADER + "2025-03-01,gmail,-1,90,5,3,2,0,20\n", "line 2: sent must not be negative"),
    (HEADER + "2025-03-01,gmail,100,90,5,3,2,,20\n", "line 2: required value 'complaints' is empty"),
    (HEADER + "1 March,gmail,100,90,5,3,2,0,20\n", "line 2: date '1 March' is not YYYY-MM-DD"),
    (HEADER.replace("opens", "clicks") + GOOD, "line 1: unknown column 'clicks'"),
    (HEADER.replace(",complaints", "").replace(",0,20", ",20") + GOOD.replace(",0,20", ",20"),
     "line 1: missing required column(s) complaints"),
])
def test_malformed_csv_is_reported_with_its_line(text: str, message: str) -> None:
    with pytest.raises(StatsError, match=re.escape(message)):
        parse_csv(text.splitlines(), PROVIDERS)


SEND = {"eventType": "Send", "mail": {"timestamp": "2025-03-01T10:00:00Z", "destination": ["a@gmail.com"]}}


@pytest.mark.parametrize(("record", "message"), [
    ('{"eventType": "Send", "mail": ', "line 2: not valid JSON"),
    (json.dumps({"mail": SEND["mail"]}), "line 2: no eventType"),
    (json.dumps({**SEND, "eventType": "Bounced"}), "line 2: unknown eventType 'Bounced'"),
    (json.dumps({"eventType": "Bounce", "mail": SEND["mail"], "bounce": {"bounceType": "Permanent",
                                                                         "timestamp": "2025-03-01T10:00:00Z"}}),
     "line 2: bounce.bouncedRecipients must be a non-empty list"),
    (json.dumps({"eventType": "Bounce", "mail": SEND["mail"], "bounce": {
        "bounceType": "Soft", "timestamp": "2025-03-01T10:00:00Z", "bouncedRecipients": [{"emailAddress": "a@b.c"}]}}),
     "line 2: bounce.bounceType 'Soft'"),
    (json.dumps({"eventType": "Delivery", "mail": SEND["mail"], "delivery": {"recipients": ["a@gmail.com"]}}),
     "line 2: delivery.timestamp is missing"),
    (json.dumps({"eventType": "Delivery", "mail": SEND["mail"],
                 "delivery": {"timestamp": "yesterday", "recipients": ["a@gmail.com"]}}),
     "line 2: delivery.timestamp 'yesterday' is not an ISO 8601 timestamp"),
    (json.dumps({"eventType": "Complaint", "mail": SEND["mail"], "complaint": {
        "timestamp": "2025-03-01T10:00:00Z", "complainedRecipients": [{"emailAddress": "nobody"}]}}),
     "line 2: complaint.complainedRecipients holds 'nobody'"),
    (json.dumps({"eventType": "Delivery", "mail": SEND["mail"]}), "line 2: 'delivery' object is missing"),
])
def test_bad_event_record_is_reported_with_its_line(record: str, message: str) -> None:
    lines = [json.dumps(SEND), record, json.dumps(SEND)]
    with pytest.raises(StatsError, match=re.escape(message)):
        parse_events(lines, ProviderMap.load(None, PROVIDERS))


@pytest.mark.parametrize(("name", "text", "message"), [
    ("stats.csv", HEADER + GOOD + "2025-03-01,yahoo,100,ninety,5,3,2,0,20\n",
     "stats.csv line 3: delivered must be a whole number of emails, got 'ninety'"),
    ("events.jsonl", json.dumps(SEND) + "\n" + '{"eventType": "Send", "mail": \n',
     "events.jsonl line 2: not valid JSON"),
])
def test_cli_reports_bad_input_in_one_line_without_traceback(tmp_path: Path, name: str, text: str,
                                                             message: str) -> None:
    (tmp_path / name).write_text(text)
    result = cli("--policy", str(exported()[1]), "--stats", str(tmp_path / name))
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_a_card_of_another_schema_version(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "policy"
    shutil.copytree(exported()[1], folder)
    card = json.loads((folder / "policy.json").read_text())
    card["schema_version"] = 99
    (folder / "policy.json").write_text(json.dumps(card))
    (tmp_path / "stats.csv").write_text(HEADER + GOOD)
    result = cli("--policy", str(folder), "--stats", str(tmp_path / "stats.csv"))
    assert result.returncode == 2 and "schema_version 99" in result.stderr and "Traceback" not in result.stderr
