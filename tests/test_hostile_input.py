"""Every bad input is one line naming the file, line and problem, with exit status 2 (issue 11's fourteen cases
and their kind): huge numbers, dates at the calendar's ends, oversized fields, wrongly typed JSON, crafted cards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_helpers import exported

from core.providers import PROVIDERS
from deploy import runtime as rt
from deploy.ses_events import StatsError, parse_csv

ROOT = Path(__file__).resolve().parent.parent
HEADER = "date,provider,sent,delivered,deferred,bounced,blocked,complaints\n"
ROW = "2025-03-01,gmail,100,90,5,3,2,0\n"
SEND = {"eventType": "Send", "mail": {"timestamp": "2025-03-01T10:00:00Z", "destination": ["a@gmail.com"]}}
BIG = "9" * 400


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script in a fresh interpreter (end to end, for a few cases)."""
    return subprocess.run([sys.executable, "-m", "ipwarmup_cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    """The console script in this process (the same ``main``, faster): exit status, stdout and stderr."""
    import ipwarmup_cli

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        try:
            ipwarmup_cli.main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return call


def assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str, limit: int = 400) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert len(lines[0]) < limit, f"message not cut short: {len(lines[0])} characters"
    return lines[0]


def recommend(run: Any, tmp_path: Path, name: str, text: str, *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(text)
    return run("recommend", "--policy", str(exported()[1]), "--stats", str(path), *extra)


def event(**fields: Any) -> str:
    return json.dumps({**SEND, **fields})


@pytest.mark.parametrize(("name", "text", "extra", "fragments"), [
    # 1. a 400-digit count, in the CSV and in --demand
    ("stats.csv", HEADER + ROW.replace(",100,", f",{BIG},"), (), ("stats.csv line 2", "sent must be at most")),
    ("stats.csv", HEADER + ROW, ("--demand", *[f"{p}=1" for p in PROVIDERS[1:]], f"gmail={BIG}"),
     ("--demand", "must be at most")),
    # 2. demand and backlog near 1e308
    ("stats.csv", HEADER.replace("\n", ",demand,backlog\n") + ROW.replace("\n", f",1{'0' * 307},1{'0' * 307}\n"), (),
     ("line 2", "must be at most 1,000,000,000,000 emails")),
    # 3. a last date of 9999-12-31 (CSV and SES), and --start 0001-01-01
    ("stats.csv", HEADER + ROW.replace("2025-03-01", "9999-12-31"), (), ("line 2", "9999-12-31 is outside")),
    ("events.jsonl", event(mail={**SEND["mail"], "timestamp": "9999-12-31T10:00:00Z"}) + "\n", (),
     ("line 1", "mail.timestamp", "outside")),
    ("stats.csv", HEADER + ROW, ("--start", "0001-01-01"), ("--start 0001-01-01 is outside",)),
    # 4. an SES timestamp that leaves the calendar when converted to UTC
    ("events.jsonl", event(mail={**SEND["mail"], "timestamp": "9999-12-31T23:00-05:00"}) + "\n", (),
     ("line 1", "outside the dates")),
    # 5. a CSV field over 128 KB
    ("stats.csv", HEADER + ROW.replace("gmail", "g" * 200_000), (), ("stats.csv line 2", "longer than")),
    # 6. SES bounce recipients given as strings
    ("events.jsonl", json.dumps(SEND) + "\n" + json.dumps({
        "eventType": "Bounce", "mail": SEND["mail"], "bounce": {"bounceType": "Permanent",
                                                               "timestamp": "2025-03-01T10:00:00Z",
                                                               "bouncedRecipients": ["a@gmail.com"]}}) + "\n", (),
     ("line 2", "bounce.bouncedRecipients must hold objects")),
    # 7. a deeply nested JSON line
    ("events.jsonl", '{"eventType": ' + "[" * 100_000 + "]" * 100_000 + "}\n", (), ("line 1", "nested too deeply")),
    # and their kind: a 5,000-digit value is cut short, a BOM-less binary file, a NUL byte, a NaN in JSON
    ("stats.csv", HEADER + ROW.replace(",90,", f",{'7' * 5000},"), (), ("line 2", "delivered must be at most",
                                                                          "(5002 chars)")),
    ("stats.csv", HEADER + ROW.replace("gmail", "gm\0ail"), (), ("line 2",)),
    ("events.jsonl", event(mail={**SEND["mail"], "destination": [float("nan")]}) + "\n", (), ("line 1", "NaN")),
    ("stats.csv", HEADER + ROW.replace("2025-03-01", "2025-02-30"), (), ("line 2", "is not YYYY-MM-DD")),
    ("stats.csv", HEADER.replace("\n", ",postmaster_band\n") + ROW.replace("\n", f",{'X' * 5000}\n"), (),
     ("line 2", "postmaster_band must be one of", "(5002 chars)")),
])
def test_bad_statistics_are_one_line_with_exit_2(run: Any, tmp_path: Path, name: str, text: str,
                                                 extra: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    assert_one_line(recommend(run, tmp_path, name, text, *extra), *fragments)


def test_the_console_script_reports_bad_statistics_in_one_line(tmp_path: Path) -> None:
    """End to end in a fresh interpreter: a 400-digit count and a date at the calendar's end."""
    path = tmp_path / "stats.csv"
    path.write_text(HEADER + ROW.replace(",100,", f",{BIG},"))
    assert_one_line(cli("recommend", "--policy", str(exported()[1]), "--stats", str(path)), "sent must be at most")
    path.write_text(HEADER + ROW.replace("2025-03-01", "9999-12-31"))
    assert_one_line(cli("recommend", "--policy", str(exported()[1]), "--stats", str(path)), "9999-12-31 is outside")


def test_demand_plus_backlog_near_the_float_limit_through_the_api() -> None:
    runtime = rt.load(exported()[1])
    rows = [dict(date="2025-03-01", provider=p, sent=10, delivered=10, deferred=0, bounced=0, blocked=0,
                 complaints=0, backlog=1e12) for p in PROVIDERS]
    with pytest.raises(rt.HistoryError, match="demand for gmail must be at most"):
        runtime.recommend(rows, demand={p: 1.7e308 for p in PROVIDERS})
    with pytest.raises(rt.HistoryError, match="backlog must be at most"):
        runtime.recommend([{**r, "backlog": 1.7e308} for r in rows])
    with pytest.raises(rt.HistoryError, match="non-negative number, got 10000"):
        runtime.recommend([{**r, "sent": 10**400} for r in rows])  # too large for a float
    with pytest.raises(rt.HistoryError, match="demand names unknown provider 'hotmail'"):
        runtime.recommend(rows, demand={"hotmail": 5})
    rec = runtime.recommend(rows, demand={p: 1e12 for p in PROVIDERS})  # the largest accepted values work
    assert all(isinstance(c, int) for c in rec.caps.values())


@pytest.mark.parametrize(("rows", "message"), [
    ([{"date": "9999-12-31", "provider": "gmail"}], "9999-12-31 is outside"),
    ([{"date": "1500-01-01", "provider": "gmail"}], "1500-01-01 is outside"),
])
def test_dates_at_the_ends_of_the_calendar_are_refused_by_the_runtime(rows: list[dict], message: str) -> None:
    full = [{**r, "sent": 1, "delivered": 1, "deferred": 0, "bounced": 0, "blocked": 0, "complaints": 0} for r in rows]
    with pytest.raises(rt.HistoryError, match=message):
        rt.History.from_rows(full, PROVIDERS)
    with pytest.raises(rt.HistoryError, match="warm-up start 0001-01-02 is outside 1970-01-01..2999-12-31"):
        rt.History.from_rows([{**full[0], "date": "2025-01-01"}], PROVIDERS, start="0001-01-02")
    with pytest.raises(rt.HistoryError, match="at most 3,660 days"):
        rt.History.from_rows([{**full[0], "date": "2025-01-01"}], PROVIDERS, start="2010-01-01")


@pytest.mark.parametrize(("text", "message"), [
    (HEADER + "2025-03-01,gmail,100,101,0,0,0,0\n", "line 2: delivered (101) exceeds sent (100)"),
    (HEADER + "2025-03-01,gmail,100,90,5,5,6,0\n", "line 2: delivered + bounced + blocked (101) exceeds sent (100)"),
    (HEADER + "2025-03-01,gmail,100,90,5,3,2,91\n", "line 2: complaints (91) exceed delivered (90)"),
    (HEADER.replace("\n", ",first_attempts\n") + "2025-03-01,gmail,100,90,5,3,2,0,101\n",
     "line 2: first_attempts (101) exceeds sent (100)"),
])
def test_cross_column_checks(text: str, message: str) -> None:
    with pytest.raises(StatsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        parse_csv(text.splitlines(keepends=True), PROVIDERS)


def test_a_utf8_byte_order_mark_is_accepted(run: Any, tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a BOM: it was rejected as an unknown column '\\ufeffdate'."""
    path = tmp_path / "stats.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + ROW).encode())
    result = run("recommend", "--policy", str(exported()[1]), "--stats", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["day"] == 2


def test_duplicate_demand_flags_are_refused(run: Any, tmp_path: Path) -> None:
    demand = [f"{p}=100" for p in PROVIDERS]
    assert_one_line(recommend(run, tmp_path, "stats.csv", HEADER + ROW, "--demand", *demand, "gmail=200"),
                    "--demand 'gmail=200': gmail is given twice")


# --------------------------------------------------------------------------------------------- crafted cards


def _card_folder(tmp_path: Path, edit: Any) -> Path:
    folder = tmp_path / "policy"
    shutil.copytree(exported()[1], folder)
    card = json.loads((folder / rt.CARD_FILE).read_text())
    edit(card)
    (folder / rt.CARD_FILE).write_text(json.dumps(card))
    return folder


def _features_as_strings(card: dict) -> None:
    card["observation"]["features"] = [f["name"] for f in card["observation"]["features"]]


def _string_var(card: dict) -> None:
    card["observation"]["features"][-1]["var"] = "0.5"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c.update(onnx="policy.onnx"), "onnx must be an object"),
    (lambda c: c.update(feedback_loop=1), "feedback_loop must map every provider"),
    (_features_as_strings, "observation.features must be a list of objects"),
    (_string_var, "has var '0.5', not a finite number >= 0"),
    (lambda c: c.update(frame_stack=10**9), "frame_stack must be a whole number in [1, 1000]"),
    (lambda c: c.update(providers="gmail"), "providers must be a list"),
    (lambda c: c["onnx"].update(file=["policy.onnx"]), "must be a file name in the card's own folder"),
])
def test_crafted_card_fields_are_one_line(run: Any, tmp_path: Path, edit: Any, message: str) -> None:
    folder = _card_folder(tmp_path, edit)
    with pytest.raises(rt.CardError) as caught:
        rt.load(folder)
    assert message in str(caught.value)
    (tmp_path / "stats.csv").write_text(HEADER + ROW)
    assert_one_line(run("recommend", "--policy", str(folder), "--stats", str(tmp_path / "stats.csv")), message)


def test_a_100k_deep_card_and_a_folder_named_policy_json_are_one_line(run: Any, tmp_path: Path) -> None:
    (tmp_path / "stats.csv").write_text(HEADER + ROW)
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / rt.CARD_FILE).write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line(run("recommend", "--policy", str(deep), "--stats", str(tmp_path / "stats.csv")),
                    "nested too deeply")
    odd = tmp_path / "odd"
    (odd / rt.CARD_FILE).mkdir(parents=True)
    assert_one_line(run("recommend", "--policy", str(odd), "--stats", str(tmp_path / "stats.csv")),
                    "policy.json is a folder, not a policy card")


# --------------------------------------------------------------------------------------------- export, metrics


def test_export_out_naming_an_existing_file_is_one_line_before_any_work(tmp_path: Path) -> None:
    folder, _ = exported()
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("export", str(folder), "--out", str(tmp_path / "notes.txt"))
    assert_one_line(result, "notes.txt' exists and is a file")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def _run_with_metrics(tmp_path: Path, tail: str) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(exported()[0], folder)
    (folder / "metrics.csv").write_text("timesteps,time,return,inboxed_share,complaint_rate,bounce_rate,paused\n"
                                     "128,1.0,2.5,0.5,0.001,0.01,0.0\n" + tail)
    return folder


def test_a_non_numeric_last_row_of_metrics_is_one_line(run: Any, tmp_path: Path) -> None:
    folder = _run_with_metrics(tmp_path, "256,1.0,oops,0.5,0.001,0.01,0.0\n")
    assert_one_line(run("export", str(folder), "--out", str(tmp_path / "out")), "metrics.csv line 3",
                    "return 'oops' is not a number")
    assert not (tmp_path / "out").exists()


def test_a_torn_last_line_of_metrics_is_ignored(tmp_path: Path) -> None:
    """A kill mid-write leaves a line without its end: the rows before it are the training's KPIs."""
    from training.export import export_run

    folder = _run_with_metrics(tmp_path, "256,1.0,3.")
    card = export_run(folder, tmp_path / "out", days=2).card
    assert card["kpis"]["training_evaluation"]["timesteps"] == 128


def test_a_long_value_is_cut_short_in_messages() -> None:
    with pytest.raises(StatsError) as caught:
        parse_csv((HEADER + ROW.replace("gmail", "x" * 5000)).splitlines(keepends=True), PROVIDERS)
    assert len(str(caught.value)) < 300 and "(5002 chars)" in str(caught.value)
    assert np.all([len(line) < 300 for line in str(caught.value).splitlines()])


def test_every_recommend_argument_is_checked_even_when_unused(run: Any, tmp_path: Path) -> None:
    """A --mapping that cannot be read is refused with CSV statistics too (it would be used with SES events)."""
    result = recommend(run, tmp_path, "stats.csv", HEADER + ROW, "--mapping", str(tmp_path / "missing.yaml"))
    assert_one_line(result, "missing.yaml does not exist")
