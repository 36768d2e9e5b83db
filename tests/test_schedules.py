"""Each fixed schedule reproduces its published numbers, splits by provider, caps at demand, and
behaves as documented past its table and with no demand."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs
from agents.schedules import DATA, MAX_VOLUME, SchedulePolicy, get_schedule, schedules
from core.actions import action_to_share
from core.features import OBS_SIZE

BIG = np.full((1, len(envs.PROVIDERS)), 1e13)  # demand large enough that no cap applies
SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_CSV = SHARED / "calibration" / "schedules.csv"
DOCS = Path(__file__).resolve().parents[1] / "docs"

# (baseline, sending day, published total for that day) straight from domain-facts section 2.
PUBLISHED = [
    ("sendgrid-automated", 1, 20 * 24), ("sendgrid-automated", 14, 1_587 * 24),
    ("sendgrid-automated", 42, 19_601_056 * 24),
    ("sendgrid-manual", 1, 50), ("sendgrid-manual", 10, 1_000_000), ("sendgrid-manual", 17, 12_000_000),
    ("sparkpost", 1, 200), ("sparkpost", 9, 100_000), ("sparkpost", 14, 5_000_000),
    ("braze-conservative", 1, 50), ("braze-conservative", 13, 2_000), ("braze-conservative", 21, 8_000),
    ("braze-moderate", 11, 50_000), ("braze-moderate", 21, 1_000_000),
    ("braze-aggressive", 5, 5_000), ("braze-aggressive", 17, 4_000_000),
    ("oracle-responsys", 1, 32_500), ("oracle-responsys", 4, 37_500), ("oracle-responsys", 7, 50_000),
    ("salesforce-weekly", 1, 50_000), ("salesforce-weekly", 7, 50_000), ("salesforce-weekly", 8, 100_000),
    ("salesforce-weekly", 35, 800_000), ("salesforce-weekly", 36, 1_600_000),
    ("ipost", 1, 1_000), ("ipost", 3, 1_000), ("ipost", 4, 2_000), ("ipost", 19, 64_000), ("ipost", 22, 96_000),
    ("geometric-1.5", 1, 50), ("geometric-1.5", 3, 112.5),
]
# Past the table: the documented continuation rule.
CONTINUED = [
    ("sendgrid-manual", 18, 24_000_000), ("sendgrid-manual", 19, 48_000_000),
    ("braze-conservative", 22, 16_000), ("braze-conservative", 24, 16_000), ("braze-conservative", 25, 32_000),
    ("braze-aggressive", 18, 8_000_000), ("braze-moderate", 22, 1_200_000),
    ("salesforce-weekly", 100, 1_600_000), ("oracle-responsys", 8, 100_000), ("oracle-responsys", 11, 200_000),
    ("sendgrid-automated", 43, 19_601_056 * 24 * 1.4),
]


@pytest.mark.parametrize(("name", "day", "expected"), PUBLISHED + CONTINUED)
def test_total_volume_matches_source(name: str, day: int, expected: float) -> None:
    total = get_schedule(name).volume(np.array([day]), BIG).sum()
    assert total == pytest.approx(expected, rel=1e-9)


def test_every_table_row_is_reproduced() -> None:
    """All rows of the calibration table, per provider group, on the days the table gives."""
    with open(DATA / "schedules.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = schedules()
    by_table = {"sendgrid_automated_hourly": ("sendgrid-automated", 1, 24), "oracle_responsys_per_isp":
                ("oracle-responsys", 0, 1), "salesforce_weekly": ("salesforce-weekly", 0, 1)}
    for row in rows:
        default = (row["schedule"].replace("_2016", "").replace("_", "-"), 0, 1)
        name, offset, scale = by_table.get(row["schedule"], default)
        schedule = names[name]
        send_day = (int(row["day"]) - 1) * schedule.days_per_step + 1 + offset
        column = schedule.columns.index(row["provider"])
        assert schedule.value(np.array([send_day]))[0, column] == float(row["volume"]) * scale, row


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="shared calibration folder not present")
def test_data_copy_matches_calibration_source() -> None:
    assert (DATA / "schedules.csv").read_text() == SHARED_CSV.read_text()


@pytest.mark.skipif(not SHARED.exists(), reason="shared calibration folder not present")
@pytest.mark.parametrize("copy, source", [("calibration/domain-facts.md", "calibration/domain-facts.md"),
                                          ("DESIGN.md", "DESIGN.md")])
def test_docs_copies_match_the_shared_notes(copy: str, source: str) -> None:
    """docs/ carries the sources the code cites, so a clone resolves them; they must not drift."""
    assert (DOCS / copy).read_text() == (SHARED / source).read_text()


def test_per_isp_rows_and_the_other_group() -> None:
    """Oracle's per-ISP numbers land on their providers; apple shares the 'other' row by demand."""
    vol = get_schedule("oracle-responsys").volume(np.array([1]), BIG * np.array([1, 1, 1, 1, 3]))[0]
    assert vol[:3].tolist() == [10_000, 7_500, 5_000]
    assert vol[3] == pytest.approx(2_500) and vol[4] == pytest.approx(7_500)


def test_total_splits_by_provider_demand_and_caps_at_it() -> None:
    demand = np.array([[16_000.0, 8_000, 6_000, 4_000, 6_000]])
    vol = get_schedule("braze-moderate").volume(np.array([5]), demand)[0]
    np.testing.assert_allclose(vol, 2_000 * demand[0] / demand.sum())
    capped = get_schedule("braze-moderate").volume(np.array([30]), demand)[0]
    np.testing.assert_allclose(capped, demand[0])


def test_ses_standard_is_linear_to_45_days_and_50k_then_carries_the_whole_stream() -> None:
    ses = get_schedule("ses-standard")
    demand = np.array([[16_000.0, 8_000, 6_000, 4_000, 6_000]])
    assert ses.volume(np.array([1]), demand).sum() == pytest.approx(40_000 / 45)
    assert ses.volume(np.array([30]), demand).sum() == pytest.approx(40_000 * 30 / 45)
    assert ses.volume(np.array([45]), demand).sum() == pytest.approx(40_000)
    assert ses.volume(np.array([45]), demand * 10).sum() == pytest.approx(50_000)
    assert ses.volume(np.array([46]), demand * 10).sum() == pytest.approx(400_000)  # warm-up DONE: 100%
    assert ses.volume(np.array([200]), demand * 10).sum() == pytest.approx(400_000)


@pytest.mark.parametrize("name", sorted(schedules()))
@pytest.mark.parametrize("day", [0, 1, 500, 10**6])
def test_beyond_table_and_zero_demand_never_nan(name: str, day: int) -> None:
    schedule = get_schedule(name)
    far = schedule.volume(np.array([day]), BIG)
    assert np.all(np.isfinite(far)) and np.all(far >= 0) and far.sum() <= MAX_VOLUME * len(envs.PROVIDERS)
    assert schedule.volume(np.array([day]), np.zeros((1, len(envs.PROVIDERS)))).tolist() == [[0.0] * 5]
    obs = np.zeros((1, OBS_SIZE), np.float32)
    obs[0, envs.LAYOUT.index(None, "day")] = day
    action, _ = SchedulePolicy(schedule).predict(obs)
    assert np.all(np.isfinite(action)) and np.all(action == -1.0)  # nothing available: smallest share


@pytest.mark.parametrize("name", ["braze-aggressive", "sparkpost", "oracle-responsys"])
def test_policy_puts_the_schedule_volume_on_the_new_ip(name: str) -> None:
    env = gymnasium.make("ipwarmup/NewIP-v1", demand=100_000)  # day-1 volumes above the 0.01% action floor
    obs, _ = env.reset(seed=0)
    action, _ = SchedulePolicy(get_schedule(name)).predict(obs)
    demand = env.unwrapped.sim.params.demand[0]
    expected = get_schedule(name).volume(np.array([1]), demand[None])[0]
    np.testing.assert_allclose(action_to_share(action) * demand, expected, rtol=1e-5)
