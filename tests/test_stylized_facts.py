"""The eight stylized facts of DESIGN.md, each driven by a fixed action sequence with its numbers asserted.

The reference "standard gradual schedule" is the SES standard reconstruction: the new IP carries
``min(1, day / 45)`` of each provider's mail (a linear 45-day warm-up percentage; NewIP-v1's demand
keeps the IP at or below 50,000/day). Experiments that need exact volumes, idle days (share 0) or a
change of audience mid-episode drive :mod:`envs.dynamics` directly, as the oracle does.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest

import envs
from core.actions import share_to_action
from envs.dynamics import DayOutcome, State, complaint_pressure, simulate_day, throttle_limit
from envs.families import EpisodeParams, draw_episode_params
from envs.scenario import Scenario

P = len(envs.PROVIDERS)
GMAIL, MICROSOFT, YAHOO, APPLE, OTHER = range(P)


def ses_standard_share(day: int) -> float:
    """SES standard reconstruction: linear warm-up percentage over 45 days, then 100%."""
    return min(1.0, day / 45)


class Batch:
    """A batch of episodes of one scenario stepped through :func:`simulate_day` with chosen volumes."""

    def __init__(self, n: int = 16, seed: int = 0, scenario: str = "NewIP-v1", **overrides: Any) -> None:
        self.scenario: Scenario = envs.get_scenario(scenario, **overrides)
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.params = EpisodeParams.empty(n)
        everyone = np.ones(n, bool)
        draw_episode_params(self.scenario, self.rng, self.params, everyone)
        self.state = State.zeros(n, self.scenario.retry_days)
        self.state.reset_rows(everyone, self.params)

    def day(self, share: float | np.ndarray, rules: Scenario | None = None) -> DayOutcome:
        share = np.broadcast_to(np.asarray(share, np.float64), (self.n, P))
        return simulate_day(rules or self.scenario, self.params, self.state, share, self.rng)

    def send(self, per_provider: np.ndarray, rules: Scenario | None = None) -> DayOutcome:
        """Offer about ``per_provider`` emails [P] to each provider today."""
        return self.day(np.clip(per_provider / self.params.demand, 0.0, 1.0), rules)

    def ramp(self, target: np.ndarray, days: int = 45, hold: int = 0) -> None:
        """SES-standard ramp to ``target`` per provider per day, then ``hold`` days at it."""
        for d in range(1, days + hold + 1):
            self.send(target * ses_standard_share(d))

    def limit(self) -> np.ndarray:
        return throttle_limit(self.scenario, self.state.reputation, self.state.peak,
                              np.asarray(self.scenario.cold_capacity))


def _share(o: DayOutcome, part: str, whole: str, axis: int | None = 0) -> np.ndarray:
    return getattr(o, part).sum(axis) / np.maximum(getattr(o, whole).sum(axis), 1)


WARM_TARGET = 1e5 * np.asarray(envs.get_scenario("NewIP-v1").provider_share)
"""100,000/day split by the default mix: every provider's volume is at least twice its cold capacity."""


def _warm_batch(seed: int, n: int = 16, **overrides: Any) -> Batch:
    b = Batch(n=n, seed=seed, demand=1e6, **overrides)
    b.ramp(WARM_TARGET, hold=10)
    return b


# 1. Warm-up time differs by provider: ~2 weeks for the fastest, up to 6 weeks for the slowest.
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fact1_warmup_time_differs_by_provider(seed: int) -> None:
    env = gymnasium.make("ipwarmup/NewIP-v1")
    env.reset(seed=seed)
    high = env.unwrapped.scenario.high_reputation
    first_high = np.full(P, -1)
    for day in range(1, 61):
        _, _, terminated, truncated, info = env.step(np.full(P, share_to_action(ses_standard_share(day))))
        assert not terminated
        first_high[(info["reputation"] >= high) & (first_high < 0)] = day
    assert (first_high > 0).all(), first_high
    assert 10 <= first_high.min() <= 16, first_high
    assert 35 <= first_high.max() <= 45, first_high
    assert first_high[GMAIL] == first_high.min() and first_high[APPLE] == first_high.max()


# 2. A cold IP accepts little (10^3-10^4/day per provider); the full target on day 1 goes badly.
def test_fact2_cold_capacity_is_thousands_per_provider() -> None:
    b = Batch(n=32, seed=2, demand=1e6)
    o = b.day(1.0)
    accepted = o.delivered.mean(0)
    assert ((1e3 <= accepted) & (accepted <= 2e4)).all(), accepted
    assert _share(o, "deferred", "sent", None) > 0.9


def test_fact2_full_target_on_day_one_mostly_deferred_blocked_or_junked() -> None:
    env = gymnasium.make("ipwarmup/NewIP-v1")
    env.reset(seed=0)
    _, _, _, _, full = env.step(np.ones(P, np.float32))
    bad = (full["deferred"] + full["blocked"] + full["junk"]).sum() / full["sent"].sum()
    assert bad > 0.5
    assert full["deferred"].sum() > 0.1 * full["sent"].sum()
    # Compared with the standard schedule's first day, far more mail goes wrong in absolute terms.
    env.reset(seed=0)
    _, _, _, _, gentle = env.step(np.full(P, share_to_action(ses_standard_share(1))))
    assert gentle["deferred"].sum() == 0
    assert (full["deferred"] + full["junk"]).sum() > 20 * (gentle["deferred"] + gentle["junk"]).sum()


def test_fact2_full_target_from_day_one_has_a_lasting_cost() -> None:
    """Pushing the full target against a cold IP's throttle (mail deferred, 4xx) earns no reputation for the
    deferred part, so a week later Gmail trusts it less than an IP sent Oracle's per-ISP day-1 volumes."""
    full, gentle = Batch(n=16, seed=2), Batch(n=16, seed=2)
    cold = np.asarray(full.scenario.cold_capacity)
    for _ in range(7):
        full.day(1.0)
        gentle.send(cold)
    gap = gentle.state.reputation - full.state.reputation
    assert gap[:, GMAIL].mean() > 0.08, gap.mean(0)
    for _ in range(7):  # both now send everything: the gap lasts into week two
        full.day(1.0)
        gentle.day(1.0)
    assert (gentle.state.reputation - full.state.reputation)[:, GMAIL].mean() > 0.1


# 3. Sudden jumps hurt even after warm-up; steady growth of 20-40%/day does not.
@pytest.mark.parametrize("growth", [1.2, 1.3, 1.4])
def test_fact3_steady_growth_after_warmup_is_safe(growth: float) -> None:
    b = _warm_batch(seed=3)
    before = b.state.reputation.copy()
    volume, sent, deferred = WARM_TARGET.copy(), 0, 0
    for _ in range(5):
        volume = volume * growth
        o = b.send(volume)
        sent, deferred = sent + o.sent.sum(), deferred + o.deferred.sum()
    assert deferred / sent < 0.01
    change = b.state.reputation - before
    # Reputation keeps growing; at +40%/day a rare noisy throttle day can cost a sliver, never a real drop.
    assert (change.mean(0) > 0).all() and change.min() > -0.01


def test_fact3_doubling_after_warmup_draws_deferrals_and_trust_loss() -> None:
    b = _warm_batch(seed=3)
    before = b.state.reputation.copy()
    o = b.send(2 * WARM_TARGET)
    assert _share(o, "deferred", "sent", None) > 0.1
    assert (_share(o, "deferred", "sent") > 0.05).all()
    loss = before - b.state.reputation
    assert (loss > 0).all() and loss.mean() > 0.02


# 4. Complaints: < 0.1% safe; >= 0.3% at Gmail/Yahoo junks and, sustained, blocks; recovery takes a week+.
def _complaints(seed: int, rate: float, days: int) -> tuple[Batch, list[DayOutcome], np.ndarray]:
    b = _warm_batch(seed=seed, enforcement="none")
    baseline_junk = _share(b.send(WARM_TARGET), "junk", "delivered")
    rules = b.scenario.replace(tier_complaint_rate=(rate,) * 4)
    return b, [b.send(WARM_TARGET, rules) for _ in range(days)], baseline_junk


def test_fact4_complaints_below_a_tenth_of_a_percent_are_safe() -> None:
    b, days, baseline_junk = _complaints(seed=4, rate=0.0005, days=14)
    before = b.state.reputation.copy()
    for o in days:
        assert o.blocked.sum() == 0
    assert (_share(days[-1], "junk", "delivered") < 1.2 * baseline_junk + 0.01).all()
    assert (b.state.reputation >= before - 1e-9).all()


def test_fact4_complaints_at_the_limit_junk_then_block_and_recover_slowly() -> None:
    b, days, baseline_junk = _complaints(seed=4, rate=0.004, days=14)
    for p in (GMAIL, YAHOO):
        assert _share(days[0], "complaints", "inbox")[p] >= 0.003
        assert _share(days[-1], "junk", "delivered")[p] > max(0.4, 3 * baseline_junk[p])
        assert days[-1].blocked[:, p].sum() > 0  # sustained: blocks
        assert sum(o.blocked[:, p].sum() for o in days[:5]) == 0  # not at once
    good = b.scenario.replace(tier_complaint_rate=(0.0005,) * 4)
    recovery = [b.send(WARM_TARGET, good) for _ in range(28)]
    for p in (GMAIL, YAHOO):
        assert _share(recovery[6], "junk", "delivered")[p] > 1.5 * baseline_junk[p]  # a week later: not yet
        assert _share(recovery[-1], "junk", "delivered")[p] < 1.2 * baseline_junk[p] + 0.01  # four weeks: yes
    assert (complaint_pressure(b.state) < b.scenario.complaint_safe).all()


# 5. Unengaged recipients cost: engaged-first beats a random audience at the same volume.
def test_fact5_engaged_first_beats_random_audience() -> None:
    totals: dict[str, dict[str, float]] = {}
    reputation: dict[str, np.ndarray] = {}
    for order in ("engaged_first", "random"):
        b = Batch(n=32, seed=5, audience_order=order)
        t = dict.fromkeys(("sent", "inbox", "complaints", "bounced"), 0.0)
        for day in range(1, 61):
            o = b.day(ses_standard_share(day))
            for k in t:
                t[k] += float(getattr(o, k).sum())
        totals[order], reputation[order] = t, b.state.reputation.mean(0)
    eng, rnd = totals["engaged_first"], totals["random"]
    assert eng["sent"] == rnd["sent"]  # same volume
    assert eng["complaints"] / eng["inbox"] < 0.8 * rnd["complaints"] / rnd["inbox"]
    assert eng["bounced"] / eng["sent"] < 0.8 * rnd["bounced"] / rnd["sent"]
    assert eng["inbox"] > rnd["inbox"]
    assert (reputation["engaged_first"] > reputation["random"]).all()


# 6. Deferred mail is retried for the window, then expires.
@pytest.mark.parametrize(("hours", "retry_days"), [(12.0, 1), (24.0, 1), (72.0, 3), (120.0, 5)])
def test_fact6_deferred_mail_retried_for_the_window_then_expires(hours: float, retry_days: int) -> None:
    b = Batch(n=4, seed=6, demand=1e6, retry_window_hours=hours, capacity_noise=0.0)
    assert b.scenario.retry_days == retry_days
    only_gmail = np.array([1.0, 0, 0, 0, 0])
    first = b.day(only_gmail)
    assert first.deferred[:, GMAIL].sum() > 0.9 * first.sent[:, GMAIL].sum()
    days = [b.day(0.0) for _ in range(retry_days + 3)]
    for k, o in enumerate(days[:retry_days]):
        assert (o.sent[:, GMAIL] > 0).all(), k  # retries only: no fresh mail is offered
        assert o.first_attempts.sum() == 0
        assert (o.delivered[:, GMAIL] > 0).all()
    expired = np.array([o.expired[:, GMAIL].sum() for o in days])
    assert expired[retry_days - 1] > 0 and expired.sum() == expired[retry_days - 1]  # last retry day only
    for o in days[retry_days:]:
        assert o.sent.sum() == 0 and o.queued.sum() == 0
    delivered_later = sum(o.delivered[:, GMAIL].sum() for o in days)
    assert first.deferred[:, GMAIL].sum() == delivered_later + expired.sum() + sum(
        o.blocked[:, GMAIL].sum() for o in days
    )


def test_fact6_selfhosted_backlog_expires_after_the_window() -> None:
    """With no overflow route, mail not put on the IP waits in the queue and expires after the window."""
    env = gymnasium.make("ipwarmup/SelfHosted-v1")
    env.reset(seed=0)
    retry_days = env.unwrapped.scenario.retry_days
    expired = []
    for _ in range(retry_days + 2):
        _, _, _, _, info = env.step(np.full(P, -1.0, np.float32))
        expired.append(int(info["expired"].sum()))
        assert info["overflow"].sum() == 0
    assert expired[:retry_days] == [0] * retry_days and expired[retry_days] > 0.9 * info["demand"]


# 7. Idle 30 days: cold again; ~1,000/day per provider keeps it warm; a sharp drop lowers the reference.
def test_fact7_thirty_idle_days_make_the_ip_cold_again() -> None:
    b = _warm_batch(seed=7)
    s = b.scenario
    earned = b.state.reputation - s.cold_reputation
    assert (b.state.reputation >= s.high_reputation).all()
    for _ in range(30):
        b.day(0.0)
    left = (b.state.reputation - s.cold_reputation) / earned
    assert (left <= 0.1 + 1e-9).all() and (b.state.reputation < 0.5).all()
    np.testing.assert_allclose(b.limit(), np.broadcast_to(s.cold_capacity, (b.n, P)), rtol=0.1)
    o = b.send(WARM_TARGET)
    assert _share(o, "deferred", "sent", None) > 0.5


def test_fact7_a_thousand_a_day_per_provider_keeps_it_warm() -> None:
    b = _warm_batch(seed=7)
    for _ in range(30):
        b.send(np.full(P, 1_000.0))
    assert (b.state.reputation >= b.scenario.high_reputation).all()
    keep = _warm_batch(seed=7)
    for _ in range(30):
        keep.send(np.full(P, 100.0))  # a tenth of the advice is not enough to hold the level
    assert (keep.state.reputation < b.state.reputation).all()


def test_fact7_a_sharp_drop_lowers_the_spike_reference() -> None:
    steady, dropped = _warm_batch(seed=8), _warm_batch(seed=8)
    for _ in range(7):
        steady.send(WARM_TARGET)
        dropped.send(0.2 * WARM_TARGET)
    assert (dropped.state.peak < 0.6 * steady.state.peak).all()
    assert (dropped.limit() < steady.limit()).all()
    back, again = dropped.send(WARM_TARGET), steady.send(WARM_TARGET)
    assert _share(back, "deferred", "sent", None) > 0.1 > 100 * _share(again, "deferred", "sent", None)


# 8. SES enforcement: bounce rate >= 10% or complaint rate >= 0.5% ends the episode.
def _run_until_done(**overrides: Any) -> tuple[int, bool, bool, float, dict[str, Any]]:
    env = gymnasium.make("ipwarmup/NewIP-v1", **overrides)
    env.reset(seed=0)
    for day in range(1, 61):
        _, reward, terminated, truncated, info = env.step(np.full(P, share_to_action(ses_standard_share(day))))
        if terminated or truncated:
            return day, terminated, truncated, reward, info
    raise AssertionError("episode did not end at the horizon")


@pytest.mark.parametrize(
    ("overrides", "rate_key", "threshold"),
    [
        ({"tier_unknown_user_rate": (0.15,) * 4}, "ses_bounce_rate", 0.10),
        ({"tier_complaint_rate": (0.02,) * 4}, "ses_complaint_rate", 0.005),
    ],
)
def test_fact8_ses_thresholds_end_the_episode(overrides: dict[str, Any], rate_key: str, threshold: float) -> None:
    day, terminated, truncated, reward, info = _run_until_done(**overrides)
    assert terminated and not truncated and day < 60
    assert info["paused"] and info[rate_key] >= threshold
    assert reward < -envs.get_scenario("NewIP-v1").reward_pause_penalty + 1.0
    # Without SES enforcement (self-hosted), the same sending runs to the horizon.
    day, terminated, truncated, _, info = _run_until_done(enforcement="none", **overrides)
    assert day == 60 and truncated and not terminated and not info["paused"]


@pytest.mark.parametrize(
    "overrides", [{"tier_unknown_user_rate": (0.06,) * 4}, {"tier_complaint_rate": (0.003,) * 4}]
)
def test_fact8_rates_under_review_do_not_pause(overrides: dict[str, Any]) -> None:
    """5% bounces or 0.1-0.3% complaints put an SES account under review, not on pause."""
    day, terminated, truncated, _, info = _run_until_done(**overrides)
    assert day == 60 and truncated and not terminated
    assert info["ses_bounce_rate"] < 0.10 and info["ses_complaint_rate"] < 0.005
