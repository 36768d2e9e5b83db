"""Fuzz the simulator through its public API and check every invariant on every step.

``python benchmarks/fuzz_env.py`` runs at least 1,000,000 env steps (``--steps`` to change it, ``--seed`` for
another draw): every id in ``envs.ENV_IDS``, the randomized family's held-out profiles (``profile=`` of
``envs.HELDOUT_PROFILES``), horizons from 1 to 1,000 days, and actions that are uniform, bang-bang (each
provider flips between -1 and +1), constant, ramps, or extreme but finite (+-3.4e38, +-1e30, +-1.0000001,
subnormals, -0.0). Single envs come from ``gymnasium.make(id, ...)``; long runs of the batched env from
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", ...)`` cross many autoresets.

Checked on every step (DESIGN.md's info contract):

* each per-provider count in ``info`` (``sent``, ``delivered``, ``inbox``, ``deferred``, ``bounced``, ``blocked``,
  ``complaints``, and ``junk``, ``expired``, ``queued``, ``first_attempts``, ``backlog``, ``overflow`` when present)
  is an integer array, one entry per provider, never negative;
* they add up: ``sent = delivered + deferred + bounced + blocked``, ``inbox <= delivered`` (``delivered = inbox +
  junk`` when ``junk`` is reported), ``complaints <= inbox``, ``first_attempts <= sent``;
* hidden ``reputation`` lies in [0, 1]; the observation is float32, finite and inside the observation space;
  the reward is a finite number; ``terminated``/``truncated`` are booleans and an episode ends by the horizon;
* the batched env's autoreset (NEXT_STEP): the step after an episode ends sends nothing and earns 0;
* the same seed and actions give the same episode, byte for byte (one episode in ``--replay-every`` replayed).

Prints the steps, the violations (the first ones described) and the time; exit status 1 on any violation.
It also reports what stepping past the horizon does (documented behaviour, not a violation).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402

CONTRACT_COUNTS = ("sent", "delivered", "inbox", "deferred", "bounced", "blocked", "complaints")
"""The per-provider integer arrays DESIGN.md promises in every step's info."""
OPTIONAL_COUNTS = ("junk", "expired", "queued", "first_attempts", "backlog", "overflow", "opens")
"""Further per-provider counts, checked (integer, non-negative) when the env reports them."""
HORIZONS = (1, 2, 3, 7, 14, 30, 45, 60, 90, 200, 365, 1000)
HORIZON_WEIGHTS = (4, 4, 3, 6, 6, 8, 6, 8, 4, 2, 1, 1)
FLOAT32_MAX = float(np.finfo(np.float32).max)
EXTREMES = np.array([FLOAT32_MAX, -FLOAT32_MAX, 1e30, -1e30, 1e6, -1e6, 2.0, -2.0, 1.0000001, -1.0000001,
                     1.0, -1.0, 0.0, -0.0, 1e-45, -1e-45, 1e-38, 0.5, -0.5], np.float32)
STRATEGIES = ("uniform", "bang-bang", "extreme", "constant", "ramp")


@dataclass
class Report:
    """What a fuzz run did and found."""

    steps: int = 0
    single_steps: int = 0
    vector_steps: int = 0
    episodes: int = 0
    vector_runs: int = 0
    replays: int = 0
    violations: int = 0
    examples: list[str] = field(default_factory=list)
    past_horizon: dict[str, str] = field(default_factory=dict)
    per_id: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    kinds: dict[str, int] = field(default_factory=dict)

    def fail(self, where: str, what: str) -> None:
        self.violations += 1
        kind = re.sub(r"-?\d[\d.e+-]*", "N", what)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(f"{where}: {what}")

    def summary(self) -> str:
        lines = [f"fuzz_env: {self.steps:,} env steps ({self.single_steps:,} in {self.episodes:,} single-env episodes, "
                 f"{self.vector_steps:,} in {self.vector_runs} batched runs), {self.violations} violations, "
                 f"{self.replays} same-seed replays, {self.seconds:.1f} s"]
        lines += [f"  {env_id}: {n:,} steps" for env_id, n in sorted(self.per_id.items())]
        lines += [f"  stepping past the horizon, {env_id}: {what}"
                  for env_id, what in sorted(self.past_horizon.items())]
        lines += [f"  violations of kind {kind!r}: {n:,}" for kind, n in sorted(self.kinds.items())]
        lines += [f"  violation: {e}" for e in self.examples]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------- invariants


def _is_int_array(value: Any, shape: tuple[int, ...]) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer) and value.shape == shape


def check_counts(report: Report, where: str, info: dict[str, Any], shape: tuple[int, ...]) -> None:
    """Per-provider counts (``shape`` = (P,) or (N, P)): integers, non-negative, adding up."""
    for key in CONTRACT_COUNTS + OPTIONAL_COUNTS:
        if key not in info:
            if key in CONTRACT_COUNTS:
                report.fail(where, f"info has no {key!r}")
                return
            continue
        value = info[key]
        if not _is_int_array(value, shape):
            report.fail(where, f"info[{key!r}] is {type(value).__name__} "
                               f"{getattr(value, 'dtype', '')} {getattr(value, 'shape', '')}, not int {shape}")
            return
        if (value < 0).any():
            report.fail(where, f"info[{key!r}] has a negative count: {value.min()}")
    c = {k: info[k].astype(np.int64) for k in CONTRACT_COUNTS + OPTIONAL_COUNTS if k in info}
    if not np.array_equal(c["sent"], c["delivered"] + c["deferred"] + c["bounced"] + c["blocked"]):
        report.fail(where, "sent != delivered + deferred + bounced + blocked")
    if (c["inbox"] > c["delivered"]).any():
        report.fail(where, "inbox > delivered")
    if "junk" in c and not np.array_equal(c["delivered"], c["inbox"] + c["junk"]):
        report.fail(where, "delivered != inbox + junk")
    if (c["complaints"] > c["inbox"]).any():
        report.fail(where, "complaints > inbox")
    if "first_attempts" in c and (c["first_attempts"] > c["sent"]).any():
        report.fail(where, "first_attempts > sent")


def check_reputation(report: Report, where: str, info: dict[str, Any]) -> None:
    rep = np.asarray(info.get("reputation", 0.0), np.float64)
    if not np.isfinite(rep).all() or (rep < 0).any() or (rep > 1).any():
        report.fail(where, f"reputation outside [0, 1]: {rep.min()}..{rep.max()}")


def check_single(report: Report, where: str, space: gymnasium.spaces.Box, obs: Any, reward: Any, terminated: Any,
                 truncated: Any, info: dict[str, Any], n_providers: int) -> None:
    """Every invariant of one single-env step (or reset, with ``reward`` 0)."""
    if not isinstance(obs, np.ndarray) or obs.dtype != np.float32 or obs.shape != space.shape:
        report.fail(where, f"observation {type(obs).__name__} {getattr(obs, 'dtype', '')} "
                           f"{getattr(obs, 'shape', '')}, not float32 {space.shape}")
    elif not np.isfinite(obs).all():
        report.fail(where, "observation is not finite")
    elif not space.contains(obs):
        outside = np.flatnonzero((obs < space.low) | (obs > space.high))
        report.fail(where, f"observation outside the space at {outside[:5].tolist()}: {obs[outside[:5]].tolist()}")
    if isinstance(reward, bool) or not isinstance(reward, (int, float, np.floating)) or not math.isfinite(reward):
        report.fail(where, f"reward {reward!r} is not a finite number")
    if not isinstance(terminated, bool) or not isinstance(truncated, bool):
        report.fail(where, f"terminated/truncated {terminated!r}/{truncated!r} are not booleans")
    check_counts(report, where, info, (n_providers,))
    check_reputation(report, where, info)


# --------------------------------------------------------------------------------------------- actions


def action_source(strategy: str, rng: np.random.Generator, shape: tuple[int, ...],
                  horizon: int) -> Callable[[int], np.ndarray]:
    """Actions per day for one episode (or one row block of a batched run), float32 of ``shape``."""
    if strategy == "uniform":
        return lambda day: rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    if strategy == "bang-bang":
        state = np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)
        flip = rng.uniform(0.05, 0.6)

        def bang(day: int) -> np.ndarray:
            state[rng.random(shape) < flip] *= -1.0
            return state.copy()
        return bang
    if strategy == "extreme":
        return lambda day: rng.choice(EXTREMES, shape)
    if strategy == "constant":
        value = np.float32(rng.choice([-1.0, 1.0, rng.uniform(-1, 1)]))
        return lambda day: np.full(shape, value, np.float32)
    slope = 2.0 / max(horizon - 1, 1) * rng.uniform(0.5, 3.0)
    return lambda day: np.clip(-1.0 + slope * day, -1.0, 1.0) * np.ones(shape, np.float32)


# --------------------------------------------------------------------------------------------- single envs


def episode_kwargs(env_id: str, rng: np.random.Generator, max_horizon: int) -> dict[str, Any]:
    """Scenario overrides for one episode: a horizon, and for the randomized family sometimes a held-out profile."""
    horizons = [h for h in HORIZONS if h <= max_horizon] or [max_horizon]
    weights = np.array([w for h, w in zip(HORIZONS, HORIZON_WEIGHTS, strict=True) if h <= max_horizon] or [1.0])
    kwargs: dict[str, Any] = {}
    if "Randomized" in env_id and envs.HELDOUT_PROFILES and rng.random() < 0.5:
        kwargs["profile"] = str(rng.choice(sorted(envs.HELDOUT_PROFILES)))
    if rng.random() < 0.9:
        kwargs["horizon"] = int(rng.choice(horizons, p=weights / weights.sum()))
    return kwargs


def play(env_id: str, kwargs: dict[str, Any], seed: int, actions: Callable[[int], np.ndarray],
         report: Report | None, record: bool = False) -> list[Any]:
    """One episode; every step checked into ``report``; returns the trace when ``record`` (for replays)."""
    env = gymnasium.make(env_id, **kwargs)
    space = env.observation_space
    n_p = int(np.prod(env.action_space.shape))
    horizon = int(env.unwrapped.scenario.horizon)  # type: ignore[attr-defined]
    where = f"{env_id} {kwargs} seed {seed}"
    trace: list[Any] = []
    obs, info = env.reset(seed=seed)
    if report is not None:
        check_single(report, f"{where} reset", space, obs, 0.0, False, False, info, n_p)
    if record:
        trace.append(obs.tobytes())
    day = 0
    while True:
        action = actions(day)
        if record:
            trace.append(action.tobytes())
        obs, reward, terminated, truncated, info = env.step(action)
        day += 1
        if report is not None:
            check_single(report, f"{where} day {day}", space, obs, reward, terminated, truncated, info, n_p)
            report.steps += 1
            report.single_steps += 1
            report.per_id[env_id] = report.per_id.get(env_id, 0) + 1
        if record:
            trace.append((obs.tobytes(), float(reward), bool(terminated), bool(truncated),
                          tuple(np.asarray(info[k]).tobytes() for k in CONTRACT_COUNTS + ("reputation",))))
        if terminated or truncated:
            if report is not None and truncated and not terminated and day != horizon:
                report.fail(where, f"truncated on day {day}, the horizon is {horizon}")
            break
        if day >= horizon:
            if report is not None:
                report.fail(where, f"no termination or truncation at the horizon ({horizon} days)")
            break
    env.close()
    return trace


def probe_past_horizon(env_id: str) -> str:
    """What a single env does when stepped after its episode ended (reported, not judged)."""
    env = gymnasium.make(env_id, horizon=2)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    for _ in range(2):
        env.step(zero)
    try:
        _, _, terminated, truncated, info = env.step(zero)
    except Exception as exc:  # noqa: BLE001 - any clear error is the answer
        return f"raises {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        env.close()
    return (f"continues silently (day {info.get('day')}, terminated={terminated}, truncated={truncated}); "
            "call reset() after an episode ends")


# --------------------------------------------------------------------------------------------- batched envs


def run_vector(env_id: str, kwargs: dict[str, Any], n_envs: int, n_steps: int, seed: int, rng: np.random.Generator,
               report: Report | None, record: bool = False) -> list[bytes]:
    """A long batched run across autoresets; every row of every step checked."""
    vec = gymnasium.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point", **kwargs)
    single = vec.single_observation_space
    n_p = int(np.prod(vec.single_action_space.shape))
    horizon = int(vec.unwrapped.scenario.horizon)  # type: ignore[attr-defined]
    blocks = np.array_split(np.arange(n_envs), min(len(STRATEGIES), n_envs))
    sources = [(rows, action_source(STRATEGIES[i % len(STRATEGIES)], rng, (len(rows), n_p), horizon))
               for i, rows in enumerate(blocks)]
    where = f"{env_id} x{n_envs} {kwargs} seed {seed}"
    trace: list[bytes] = []
    obs, info = vec.reset(seed=seed)
    done = np.zeros(n_envs, bool)
    day = np.zeros(n_envs, np.int64)
    for step in range(n_steps):
        actions = np.empty((n_envs, n_p), np.float32)
        for rows, source in sources:
            actions[rows] = source(step)
        obs, reward, terminated, truncated, info = vec.step(actions)
        if record:
            trace.append(obs.tobytes() + np.asarray(reward).tobytes() + info["sent"].tobytes())
        if report is None:
            continue
        at = f"{where} step {step + 1}"
        report.steps += n_envs
        report.vector_steps += n_envs
        report.per_id[env_id] = report.per_id.get(env_id, 0) + n_envs
        if obs.dtype != np.float32 or obs.shape != (n_envs,) + single.shape or not np.isfinite(obs).all():
            report.fail(at, f"observations {obs.dtype} {obs.shape} not finite float32")
        else:
            outside = (obs < single.low) | (obs > single.high)
            if outside.any():
                report.fail(at, f"observation outside the space in {int(outside.any(1).sum())} rows")
        reward = np.asarray(reward)
        if reward.shape != (n_envs,) or not np.isfinite(reward).all():
            report.fail(at, "rewards not finite")
        if terminated.dtype != bool or truncated.dtype != bool:
            report.fail(at, "terminated/truncated not boolean arrays")
        check_counts(report, at, info, (n_envs, n_p))
        check_reputation(report, at, info)
        if done.any():  # NEXT_STEP autoreset: these rows were reset, their action ignored
            if (reward[done] != 0).any() or terminated[done].any() or truncated[done].any():
                report.fail(at, "an autoreset row earned a reward or ended again")
            if "sent" in info and info["sent"][done].any():
                report.fail(at, "an autoreset row sent mail")
        day = np.where(done, 0, day + 1)
        ended = terminated | truncated
        if (truncated & ~terminated & (day != horizon)).any() or (~ended & (day >= horizon)).any():
            report.fail(at, f"a row ended on another day than the horizon ({horizon} days)")
        done = ended
    vec.close()
    return trace


# --------------------------------------------------------------------------------------------- driver


def run(total_steps: int = 1_000_000, seed: int = 0, single_share: float = 0.12, max_horizon: int = 1000,
        n_envs: int = 256, replay_every: int = 25, ids: Sequence[str] | None = None) -> Report:
    """Fuzz ``ids`` (default every registered id) for at least ``total_steps`` env steps; returns the report."""
    ids = list(ids or envs.ENV_IDS)
    rng = np.random.default_rng(seed)
    report = Report()
    start = time.perf_counter()
    for env_id in ids:
        report.past_horizon[env_id] = probe_past_horizon(env_id)

    single_budget = int(total_steps * single_share)
    episode = 0
    while report.single_steps < single_budget or episode < len(ids):
        env_id = ids[episode % len(ids)]
        kwargs = episode_kwargs(env_id, rng, max_horizon)
        ep_seed = int(rng.integers(2**32))
        strategy = STRATEGIES[episode % len(STRATEGIES)] if episode < len(STRATEGIES) * len(ids) else \
            str(rng.choice(STRATEGIES))
        n_p = len(envs.PROVIDERS)
        horizon = int(kwargs.get("horizon", 60))
        act_seed = int(rng.integers(2**32))
        replay = episode % replay_every == 0
        first = play(env_id, kwargs, ep_seed,
                     action_source(strategy, np.random.default_rng(act_seed), (n_p,), horizon), report, record=replay)
        if replay:
            again = play(env_id, kwargs, ep_seed,
                         action_source(strategy, np.random.default_rng(act_seed), (n_p,), horizon), None, record=True)
            report.replays += 1
            if first != again:
                report.fail(f"{env_id} {kwargs} seed {ep_seed}", "the same seed and actions gave another episode")
        report.episodes += 1
        episode += 1

    run_index = 0
    per_run = max((total_steps - report.steps) // (4 * len(ids)), 64)  # at least four batched runs per id
    while report.steps < total_steps or run_index < len(ids):
        env_id = ids[run_index % len(ids)]
        kwargs = episode_kwargs(env_id, rng, max_horizon)
        kwargs.setdefault("horizon", 60)
        # Each run crosses at least two autoresets per row: fewer rows for longer horizons.
        n_steps = 2 * kwargs["horizon"] + 3
        rows = int(np.clip(min(per_run, total_steps - report.steps) // n_steps, 2, n_envs))
        n_steps = max(n_steps, min(per_run // rows, 4 * n_steps))
        run_seed = int(rng.integers(2**32))
        run_vector(env_id, kwargs, rows, n_steps, run_seed, rng, report)
        report.vector_runs += 1
        if run_index < len(ids):  # one same-seed check of the batched env per id
            length = min(3 * kwargs["horizon"], 300)
            a = run_vector(env_id, kwargs, 8, length, run_seed, np.random.default_rng(run_seed), None, record=True)
            b = run_vector(env_id, kwargs, 8, length, run_seed, np.random.default_rng(run_seed), None, record=True)
            report.replays += 1
            if a != b:
                report.fail(f"{env_id} x8 {kwargs} seed {run_seed}", "the same seed and actions gave another run")
        run_index += 1
    report.seconds = time.perf_counter() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps in all (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fuzz draws")
    parser.add_argument("--single-share", type=float, default=0.12,
                        help="share of the steps taken by single envs (the rest: batched runs)")
    parser.add_argument("--max-horizon", type=int, default=1000, help="longest horizon drawn (days)")
    parser.add_argument("--n-envs", type=int, default=256, help="envs per batched run")
    args = parser.parse_args(argv)
    report = run(args.steps, args.seed, args.single_share, args.max_horizon, args.n_envs)
    print(report.summary())
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
