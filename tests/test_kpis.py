"""Episode KPIs count what DESIGN.md says, and run_episodes repeats exactly per seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.episodes import run_episodes
from evaluation.kpis import KPI_NAMES, NEVER, episode_kpis

FBL = np.array([True, True, True, False, True])


def day_info(demand: int = 1_000, sent: int = 1_000, delivered: int = 1_000, inbox: int = 900, overflow: int = 0,
             complaints: tuple[int, ...] = (0,) * 5, bounced: int = 0, paused: bool = False,
             spike_excess: tuple[int, ...] = (0,) * 5) -> dict:
    per = np.array([0.4, 0.2, 0.15, 0.1, 0.15])
    return {"sent": np.rint(per * sent).astype(int), "first_attempts": np.rint(per * (demand - overflow)).astype(int),
            "delivered": np.rint(per * delivered).astype(int),
            "inbox": np.rint(per * inbox).astype(int), "deferred": np.rint(per * (sent - delivered)).astype(int),
            "bounced": np.array([bounced, 0, 0, 0, 0]), "blocked": np.zeros(5, int),
            "complaints": np.array(complaints), "overflow": np.rint(per * overflow).astype(int),
            "overflow_delivered": np.rint(per * overflow).astype(int), "overflow_inbox": np.zeros(5, int),
            "overflow_bounced": np.zeros(5, int), "overflow_complaints": np.zeros(5, int),
            "spike_excess": np.array(spike_excess), "demand": demand, "fbl": FBL, "paused": paused,
            "reputation": np.full(5, 0.5), "providers": ("gmail", "microsoft", "yahoo", "apple", "other")}


def test_contract_names_and_basic_counts() -> None:
    infos = [day_info(inbox=500, overflow=500, sent=500, delivered=500), day_info()]
    kpis = episode_kpis(infos, [0.25, 0.5])
    assert set(KPI_NAMES) <= set(kpis) and kpis["final_reputation_gmail"] == 0.5
    assert kpis["inboxed_share"] == pytest.approx(1_400 / 2_000)
    assert kpis["return"] == pytest.approx(0.75) and kpis["paused"] == 0.0


def test_days_to_full_is_the_first_of_three_full_days_or_never() -> None:
    low = day_info(overflow=600, sent=400, delivered=400)
    deferred = day_info(delivered=900)
    full = day_info()
    assert episode_kpis([low, full, full, deferred, full, full, full], [0] * 7)["days_to_full"] == 5.0
    assert math.isnan(episode_kpis([low, full, full, low], [0] * 4)["days_to_full"])
    assert math.isnan(NEVER)


def test_spike_days_count_days_with_any_provider_over_the_allowance() -> None:
    calm, one, two = day_info(), day_info(spike_excess=(0, 0, 0, 7, 0)), day_info(spike_excess=(3, 1, 0, 0, 0))
    assert episode_kpis([calm, one, calm, two], [0] * 4)["spike_days"] == 2.0
    assert episode_kpis([calm, calm], [0] * 2)["spike_days"] == 0.0


def test_complaint_rate_counts_feedback_loop_providers_only() -> None:
    info = day_info(delivered=2_000, sent=2_000, complaints=(2, 0, 0, 50, 0))  # apple's 50 are invisible
    kpis = episode_kpis([info], [0.0])
    assert kpis["complaint_rate"] == pytest.approx(2 / (2_000 * 0.9))


def test_worst_day_rates_only_count_representative_volume() -> None:
    tiny = day_info(demand=10, sent=10, delivered=10, inbox=9, bounced=5, complaints=(3, 0, 0, 0, 0))
    normal = day_info(demand=2_000, bounced=20, complaints=(1, 0, 0, 0, 0), sent=2_000, delivered=2_000)
    kpis = episode_kpis([tiny, normal], [0, 0])
    assert kpis["worst_bounce_rate"] == pytest.approx(20 / 2_000)
    assert kpis["worst_complaint_rate"] == pytest.approx(1 / 1_800)  # FBL deliveries: 90% of 2,000
    # SES's bounce rate: hard bounces over sends (first attempts), not over attempts including retries.
    assert kpis["bounce_rate"] == pytest.approx(25 / (tiny["first_attempts"].sum() + normal["first_attempts"].sum()))


def test_paused_is_reported() -> None:
    assert episode_kpis([day_info(), day_info(paused=True)], [0, -30])["paused"] == 1.0


def test_run_episodes_repeats_exactly_and_each_episode_depends_on_its_seed_alone() -> None:
    a = run_episodes("aimd", "ipwarmup/NewIP-v1", [3, 4, 5], env_kwargs={"horizon": 8})
    b = run_episodes("aimd", "ipwarmup/NewIP-v1", [3, 4, 5], env_kwargs={"horizon": 8})
    alone = run_episodes("aimd", "ipwarmup/NewIP-v1", [4], env_kwargs={"horizon": 8})
    assert a == b
    assert alone[0] == a[1]
    assert a[0] != a[1]
    assert all(k["length"] == 8 for k in a)


def test_all_routes_inboxed_share_and_account_wide_rates_count_the_overflow_route() -> None:
    """SES computes bounce and complaint rates per account, whatever IP sent the mail (9.7)."""
    info = day_info(demand=2_000, sent=1_000, delivered=1_000, inbox=800, overflow=1_000, bounced=10,
                    complaints=(1, 0, 0, 0, 0))
    info["overflow_delivered"] = info["overflow"] - np.array([30, 0, 0, 0, 0])
    info["overflow_bounced"] = np.array([30, 0, 0, 0, 0])
    info["overflow_inbox"] = np.rint(info["overflow_delivered"] * 0.7).astype(int)
    info["overflow_complaints"] = np.array([4, 0, 0, 0, 0])
    kpis = episode_kpis([info], [0.0])
    assert kpis["inboxed_share"] == pytest.approx(info["inbox"].sum() / 2_000)
    assert kpis["inboxed_share_all"] == pytest.approx((info["inbox"].sum() + info["overflow_inbox"].sum()) / 2_000)
    assert kpis["bounce_rate"] == pytest.approx(40 / (info["first_attempts"].sum() + info["overflow"].sum()))
    fbl_delivered = (info["delivered"] * FBL).sum() + (info["overflow_delivered"] * FBL).sum()
    assert kpis["complaint_rate"] == pytest.approx(5 / fbl_delivered)
