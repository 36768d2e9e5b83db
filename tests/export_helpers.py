"""Shared fixtures for the export, runtime and recommend tests: one tiny trained run, exported once per process."""

from __future__ import annotations

import datetime as dt
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

START = dt.date(2025, 3, 1)
ALL_COLUMNS = ("sent", "delivered", "deferred", "bounced", "blocked", "complaints", "opens", "expired", "queued",
               "backlog", "demand", "warmup_percentage", "overflow", "overflow_delivered", "overflow_bounced",
               "overflow_complaints", "postmaster_band", "snds_colour")
"""Every statistics column a sender can report (the runtime's required and optional ones)."""
DOMAINS = {
    "gmail": ["gmail.com", "googlemail.com"],
    "microsoft": ["outlook.com", "hotmail.co.uk", "live.fr", "msn.com"],
    "yahoo": ["yahoo.co.jp", "aol.com", "ymail.com"],
    "apple": ["icloud.com", "me.com", "mac.com"],
    "other": ["example.org", "mail.example.com"],
}
"""Recipient domains per provider the synthetic SES events use (including country suffixes)."""


def train_tiny_run(out: Path, seed: int = 0, extra: dict[str, Any] | None = None) -> Path:
    """A PPO run folder from a few hundred steps: frame_stack 2 and VecNormalize, as real runs are; trained on
    Randomized-v1 so that it has seen lists of different composition (the runtime uses the audience only then).
    ``extra`` overrides more of the config (the recurrent policy, for one)."""
    from training.run import train

    overrides = {"n_envs": 4, "n_steps": 64, "batch_size": 64, "n_epochs": 2, "frame_stack": 2,
                 "eval_freq": 0, "save_freq": 0, **(extra or {})}
    return train("ipwarmup/Randomized-v1", seed, out, n_timesteps=512, overrides=overrides, tensorboard=False)


@functools.cache
def exported() -> tuple[Path, Path]:
    """(run folder, export folder), built once per test process; the schedule is 12 days long."""
    from training.export import export_run

    root = Path(tempfile.mkdtemp(prefix="ipwarmup-export-"))
    run = train_tiny_run(root / "run")
    export_run(run, root / "export", days=12)
    return run, root / "export"


def simulate(policy: Any, scenario: str = "ipwarmup/NewIP-v1", seed: int = 0, noise: float = 0.3,
             **overrides: Any) -> tuple[list[np.ndarray], list[dict[str, Any]], list[np.ndarray]]:
    """One episode: observations (reset first), step infos, and the shares the env applied each day.

    Actions are the policy's plus Gaussian noise so that the episode visits varied states.
    """
    import gymnasium

    import envs
    from core.actions import action_to_share

    env = gymnasium.make(scenario, **overrides)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, infos, shares = [obs], [], []
    start = True
    while True:
        action, _ = policy.predict(obs[None], episode_start=np.array([start]))
        start = False
        action = np.clip(action[0] + rng.normal(0.0, noise, action.shape[1]), -1, 1).astype(np.float32)
        shares.append(action_to_share(action))
        obs, _, terminated, truncated, info = env.step(action)
        observations.append(obs)
        infos.append(info)
        if terminated or truncated:
            break
    assert envs.PROVIDERS == tuple(infos[0]["providers"])
    return observations, infos, shares


def audience(info: dict[str, Any]) -> dict[str, float]:
    """The simulated list's composition as a sender passes it to the runtime: {tier: fraction}."""
    from core.providers import TIERS

    return {t: float(x) for t, x in zip(TIERS, info["audience"], strict=True)}


def audience_args(info: dict[str, Any]) -> list[str]:
    """The same as ``ipwarmup recommend --audience`` arguments (exact: repr round-trips a float)."""
    return ["--audience", *(f"{t}={x!r}" for t, x in audience(info).items())]


def stats_rows(infos: list[dict[str, Any]], shares: list[np.ndarray], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per-day, per-provider statistics rows as a sender would report them, from the simulator's info."""
    from core.features import POSTMASTER_BANDS, SNDS_COLOURS
    from core.providers import PROVIDERS

    def dashboard(d: int, key: str, levels: tuple[str, ...]) -> str | None:
        """Day d's value, which the simulator publishes the morning after day d + 1 (unknown for the last day)."""
        if d + 1 >= len(infos):
            return None
        code = int(infos[d + 1][key])
        return "none" if code < 0 else levels[code]

    rows = []
    for d, (info, share) in enumerate(zip(infos, shares, strict=True)):
        for i, p in enumerate(PROVIDERS):
            full = {
                "sent": info["sent"][i], "delivered": info["delivered"][i], "deferred": info["deferred"][i],
                "bounced": info["bounced"][i], "blocked": info["blocked"][i],
                "complaints": info["complaints"][i] * info["fbl"][i], "opens": info["opens"][i],
                "expired": info["expired"][i], "queued": info["queued"][i], "backlog": info["backlog"][i],
                "demand": info["demand_by_provider"][i], "warmup_percentage": 100.0 * float(share[i]),
                "overflow": info["overflow"][i], "overflow_delivered": info["overflow_delivered"][i],
                "overflow_bounced": info["overflow_bounced"][i],
                "overflow_complaints": info["overflow_complaints"][i] * info["fbl"][i],
            }
            row: dict[str, Any] = {"date": START + dt.timedelta(days=d), "provider": p}
            row.update({k: (float(v) if k == "warmup_percentage" else int(v)) for k, v in full.items() if k in columns})
            if "postmaster_band" in columns:  # Gmail's row carries it; the other rows leave it empty
                row["postmaster_band"] = dashboard(d, "postmaster_band", POSTMASTER_BANDS) if p == "gmail" else None
            if "snds_colour" in columns:
                row["snds_colour"] = dashboard(d, "snds_colour", SNDS_COLOURS) if p == "microsoft" else None
            rows.append(row)
    return rows


def _stamp(day: dt.date, seconds: int) -> str:
    stamp = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ses_events(infos: list[dict[str, Any]], batch: int = 50) -> list[str]:
    """SES event-publishing JSON lines that describe the simulated days recipient by recipient.

    First attempts (sent minus yesterday's retry queue) become Send events, then each outcome its own
    event type in SES's documented shape; messages carry up to ``batch`` recipients. Every tenth line is
    wrapped in an SNS envelope. Apple's complaints are invisible (no feedback loop), as in the simulator.
    """
    from core.providers import PROVIDERS

    lines: list[str] = []
    counter = 0

    def recipients(provider: str, n: int) -> list[str]:
        nonlocal counter
        out = []
        for _ in range(n):
            domains = DOMAINS[provider]
            out.append(f"user{counter}@{domains[counter % len(domains)]}")
            counter += 1
        return out

    def emit(record: dict[str, Any]) -> None:
        text = json.dumps(record)
        if len(lines) % 10 == 9:
            text = json.dumps({"Type": "Notification", "MessageId": "m", "Message": text})
        lines.append(text)

    retry_queue = np.zeros(len(PROVIDERS), np.int64)
    for d, info in enumerate(infos):
        day = START + dt.timedelta(days=d)
        first = info["sent"] - retry_queue
        retry_queue = info["queued"]  # NewIP: no backlog, so the queue is the retry queue
        for i, p in enumerate(PROVIDERS):
            def messages(n: int, size: int = batch, p: str = p) -> list[list[str]]:
                out = recipients(p, int(n))
                return [out[j:j + size] for j in range(0, len(out), size)]

            mail = {"timestamp": _stamp(day, 60), "source": "news@sender.example", "messageId": "x"}
            for group in messages(first[i]):
                emit({"eventType": "Send", "mail": {**mail, "destination": group}, "send": {}})
            for group in messages(info["delivered"][i]):
                emit({"eventType": "Delivery", "mail": {**mail, "destination": group},
                      "delivery": {"timestamp": _stamp(day, 120), "recipients": group, "processingTimeMillis": 5,
                                   "smtpResponse": "250 ok"}})
            for group in messages(info["deferred"][i]):
                emit({"eventType": "DeliveryDelay", "mail": {**mail, "destination": group},
                      "deliveryDelay": {"timestamp": _stamp(day, 180), "delayType": "TransientCommunicationFailure",
                                        "expirationTime": _stamp(day + dt.timedelta(days=3), 0),
                                        "delayedRecipients": [{"emailAddress": a, "status": "4.4.1",
                                                               "diagnosticCode": "smtp; 421 4.4.1 try later"}
                                                              for a in group]}})

            def bounce(group: list[str], kind: str, status: str, mail: dict = mail, day: dt.date = day) -> None:
                emit({"eventType": "Bounce", "mail": {**mail, "destination": group},
                      "bounce": {"timestamp": _stamp(day, 240), "bounceType": kind, "bounceSubType": "General",
                                 "feedbackId": "f", "bouncedRecipients": [
                                     {"emailAddress": a, "action": "failed", "status": status,
                                      "diagnosticCode": f"smtp; 550 {status}"} for a in group]}})

            for group in messages(info["bounced"][i]):
                bounce(group, "Permanent", "5.1.1")
            for j, group in enumerate(messages(info["blocked"][i], 7)):
                bounce(group, *[("Transient", "5.7.1"), ("Undetermined", "5.0.0"), ("Permanent", "5.7.26")][j % 3])
            for group in messages(info["expired"][i]):
                bounce(group, "Transient", "4.4.7")
            if info["fbl"][i]:
                for group in messages(info["complaints"][i], 1):
                    emit({"eventType": "Complaint", "mail": {**mail, "destination": group},
                          "complaint": {"timestamp": _stamp(day, 300), "feedbackId": "f",
                                        "complaintFeedbackType": "abuse",
                                        "complainedRecipients": [{"emailAddress": a} for a in group]}})
            for group in messages(info["opens"][i], 1):
                emit({"eventType": "Open", "mail": {**mail, "destination": group},
                      "open": {"timestamp": _stamp(day, 360), "ipAddress": "192.0.2.1", "userAgent": "x"}})
    return lines


def replayed_recommendations(runtime: Any, reference: Any, seed: int,
                             horizon: int) -> list[tuple[Any, np.ndarray, dict[str, float]]]:
    """One simulated episode of ``reference`` (a run's policy), replayed day by day: the runtime's recommendation
    from the statistics before that day, the reference's action on the simulator's observation, the day's demand."""
    from core.providers import PROVIDERS

    observations, infos, shares = simulate(reference, seed=seed, horizon=horizon)
    rows = stats_rows(infos, shares, ALL_COLUMNS)
    reference.reset()
    demand = dict(zip(PROVIDERS, infos[0]["demand_by_provider"].tolist(), strict=True))
    replayed = []
    for day, obs in enumerate(observations[:-1]):
        want, _ = reference.predict(obs[None], episode_start=np.array([day == 0]))
        rec = runtime.recommend([r for r in rows if (r["date"] - START).days < day], start=START, demand=demand,
                                audience=audience(infos[0]))
        replayed.append((rec, want[0], demand))
    return replayed
