"""The oracle: plans on the hidden state and the true dynamics; the ceiling every agent is measured against.

Channel to the hidden state (explicit, not ad hoc): :meth:`OraclePolicy.bind` takes the env it acts
on and finds its :class:`envs.simulator.Simulator` (``env.unwrapped.sim`` of a ``WarmupEnv``, the
``sim`` of a ``WarmupVectorEnv`` or SB3 VecEnv adapter, or each ``envs[i]`` of a ``DummyVecEnv``;
a list of envs is taken row by row). At each ``predict`` it reads ``sim.rules``, ``sim.params``
and copies of ``sim.state`` and never writes to them.

Planning is receding-horizon search over closed-loop candidate rules, each run for ``horizon``
days: "send ``m`` x the provider's true acceptance limit" (``envs.dynamics.throttle_limit``),
"send ``g`` x the recent-peak accepted volume", "send a fixed share", each either for the whole
look-ahead or for 1, 3 or 6 days and then "send all" (hold mail back while reputation builds, then release).
All candidates of all envs run as one batch of state copies through ``envs.dynamics.simulate_day``
with expected values in place of random draws (certainty-equivalent planning: deterministic and
independent of which other envs share the batch). Providers evolve independently, so each
provider takes the candidate with the best simulated value for itself (inboxed mail less 0.3 x the
env's costs, see :data:`COST_WEIGHT`); the first day's share is the action. The real env then draws its own randomness.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from agents.policy import P, Policy, day
from core.actions import MIN_SHARE, share_to_action
from core.guard import MARGIN, SLACK_EMAILS
from envs.dynamics import DayOutcome, State, simulate_day, throttle_limit
from envs.families import EpisodeParams
from envs.scenario import Scenario
from envs.simulator import Simulator, carried_share, provider_progress

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

MULTIPLIERS: tuple[float, ...] = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0, 1.15, 1.4)
"""Candidate rules 'send m x tomorrow's true acceptance limit (and at least the queued mail about to
expire)', one per m."""
GROWTHS: tuple[float, ...] = (1.2, 1.35, 1.5)
"""Candidate rules 'send g x the recent-peak accepted volume (at least 500)': a steady ramp that keeps
a queue draining where mail waits for the new IP."""
SHARES: tuple[float, ...] = (0.7, 0.85, 1.0)
"""Candidate rules 'send this share of the provider's mail' (1.0: all of it; 0.85 leaves out the
never-engaged tier of a typical list)."""
HORIZON = 15
"""Look-ahead days per decision."""
SWITCH_DAYS: tuple[int, ...] = (1, 3, 6)
"""Each rule is also tried for only this many look-ahead days, then 'send all': a ramp that holds mail
back while reputation builds (where unsent mail waits in a queue) and then releases it."""
COST_WEIGHT = 0.3
"""Weight of the env's reward costs (complaints, bounces, blocks, lost and deferred mail) in the planning
objective next to mail inboxed via any route. 0 plans for the headline KPI, inboxed share of demand; 1 plans
for the env's reward. 0.3 keeps the oracle on the headline KPI while still paying for complaints, bounces and
lost mail."""
REWARD_ORACLE: dict[str, Any] = {"cost_weight": 1.0}
"""``oracle-reward``: plans for the env's reward itself (the objective PPO is trained on): the ceiling for
return; ``oracle`` (cost weight 0.3) leans towards the headline KPI, inboxed share. Leaving the least engaged
tier off the new IP no longer saves its costs (the overflow route's complaints count too), so neither leaves it
out."""
NO_JUMP_ORACLE: dict[str, Any] = {**REWARD_ORACLE, "no_jump": True}
"""``oracle-nojump``: ``oracle-reward`` held to the model's jump rule (first attempts within the spike allowance of
the recent peak, or of the cold acceptance it knows, less the guard's margins): the ceiling for a policy that never
jumps. The rule is the kernel's, looser than the guard's after a dip (the recent peak fades, the guard counts
yesterday only). Where the action space's smallest share is above the rule's cap (over about 10^6 emails a day
per provider) it still jumps, as a guarded policy does."""
PAUSE_PENALTY = 1e9
"""Planning value lost by a candidate under which SES pauses the account: never worth it."""


def simulators(env: Any) -> list[Simulator]:
    """The simulators behind ``env``, in the row order of its observations."""
    if isinstance(env, (list, tuple)):
        return [sim for e in env for sim in simulators(e)]
    for holder in (env, getattr(env, "unwrapped", None)):
        sim = getattr(holder, "sim", None)
        if isinstance(sim, Simulator):
            return [sim]
    for attr in ("envs", "venv"):  # SB3 DummyVecEnv, VecEnvWrapper
        inner = getattr(env, attr, None)
        if inner is not None:
            return simulators(inner if attr == "venv" else list(inner))
    raise TypeError(f"the oracle needs an ipwarmup env (WarmupEnv, WarmupVectorEnv, DummyVecEnv of them or a list); "
                    f"got {type(env).__name__}, which exposes no Simulator")


def _stack(parts: list[T]) -> T:
    """Concatenate dataclasses of arrays (State, EpisodeParams) along the env axis, as copies."""
    first = parts[0]
    return type(first)(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(first)})


def _repeat(obj: T, k: int) -> T:
    return type(obj)(**{f.name: np.repeat(getattr(obj, f.name), k, axis=0) for f in fields(obj)})


def provider_value(rules: Scenario, o: DayOutcome, cost_weight: float) -> np.ndarray:
    """Mail inboxed via any route less ``cost_weight`` x the env's reward costs, per provider [n, P] (see
    Simulator.reward)."""
    costs = (rules.reward_complaint_cost * (o.complaints + o.overflow_complaints)
             + rules.reward_bounce_cost * (o.bounced + o.overflow_bounced)
             + rules.reward_block_cost * o.blocked + rules.reward_lost_cost * o.expired
             + rules.reward_deferral_cost * o.deferred)
    return o.inbox + o.overflow_inbox - cost_weight * costs


def terminal_value(rules: Scenario, params: EpisodeParams, state: State, carried: np.ndarray,
                   days_left: np.ndarray) -> np.ndarray:
    """What the reputation reached at the end of the look-ahead is worth afterwards, per provider [n, P], in emails.

    The env pays ``reward_ready_value`` days of demand for an IP that carries its stream at a HIGH reputation
    (Simulator.readiness; ``carried`` is the share the providers accepted on the last look-ahead day), and every
    remaining day on a reputable IP inboxes ``inbox_rate - pool_inbox_rate`` more of the provider's mail than the
    overflow route. Without this the planner, which looks ``HORIZON`` days ahead, would never pay today for a
    reputation that pays off later."""
    progress = provider_progress(rules, state.reputation)
    gain = np.maximum(params.inbox_rate - params.pool_inbox_rate, 0.0)
    return params.demand * progress * carried * (rules.reward_ready_value + days_left[:, None] * gain)


class OraclePolicy(Policy):
    """Receding-horizon planner on the true model; needs :meth:`bind` (``load_policy`` does it)."""

    name = "oracle"

    def __init__(self, env: Any = None, horizon: int = HORIZON, multipliers: tuple[float, ...] = MULTIPLIERS,
                 growths: tuple[float, ...] = GROWTHS, shares: tuple[float, ...] = SHARES,
                 switch_days: tuple[int, ...] = SWITCH_DAYS, cost_weight: float = COST_WEIGHT,
                 no_jump: bool = False) -> None:
        super().__init__()
        self.cost_weight = cost_weight
        self.no_jump = no_jump
        self.day1_reference: np.ndarray | None = None
        """[P] with ``no_jump``: the day-1 reference in place of the true cold acceptance. A teacher set to a jump
        guard's base plans within the limit its student will act under (``training.imitation``)."""
        if horizon < 1 or not (multipliers or shares):
            raise ValueError("the oracle needs a horizon >= 1 and at least one candidate")
        self.horizon = horizon
        # One row per candidate: a limit multiple, a growth factor or a fixed share (the other two NaN).
        nan = np.full(len(multipliers) + len(growths) + len(shares), np.nan)
        a, b = len(multipliers), len(multipliers) + len(growths)
        mult, grow, fixed = nan.copy(), nan.copy(), nan.copy()
        mult[:a], grow[a:b], fixed[b:] = multipliers, growths, shares
        # ... each held for the whole look-ahead, or for `switch` days and then 'send all'.
        switch = [s for s in sorted(set(switch_days)) if 0 < s < horizon] + [horizon]
        self.multipliers = np.tile(mult, len(switch))
        self.shares = np.tile(fixed, len(switch))
        self.growths = np.tile(grow, len(switch))
        self.switch = np.repeat(switch, mult.size)
        self._sims: list[Simulator] = []
        if env is not None:
            self.bind(env)

    def bind(self, env: Any) -> None:
        self._sims = simulators(env)

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        if not self._sims:
            raise RuntimeError("the oracle is not bound to an env: use load_policy('oracle', env) or oracle.bind(env)")
        rows = sum(sim.n for sim in self._sims)
        state = _stack([sim.state for sim in self._sims])
        if rows != obs.shape[0] or not np.array_equal(np.minimum(state.day, 1000), day(obs)):
            raise RuntimeError(f"the oracle is bound to {rows} env(s) whose days {state.day.tolist()} do not match "
                               f"the observations' days {day(obs).tolist()}; bind it to the env being stepped")
        params = _stack([sim.params for sim in self._sims])
        return share_to_action(self.plan(self._sims[0].rules, params, state))

    def _jump_free_share(self, rules: Scenario, st: State, cold: np.ndarray, avail: np.ndarray) -> np.ndarray:
        """The largest share [n, P] whose first attempts stay within the model's spike allowance (the reference the
        kernel judges against: the recent peak of first attempts, or cold acceptance), with the guard's margins."""
        day1 = cold if self.day1_reference is None else self.day1_reference
        reference = np.maximum(st.sent_peak, day1)
        cap = np.floor(np.maximum(rules.spike_allowance * (1.0 - MARGIN) * reference - SLACK_EMAILS, 0.0))
        return np.where(avail > 0, cap / np.maximum(avail, 1), 1.0)

    def plan(self, rules: Scenario, params: Any, state: Any) -> np.ndarray:
        """Tomorrow's share per env and provider [n, P], searched on copies of ``state``."""
        n, c = state.day.shape[0], self.multipliers.size
        st, pr = _repeat(state, c), _repeat(params, c)
        m = np.tile(self.multipliers, n)[:, None]
        fixed = np.tile(self.shares, n)[:, None]
        switch = np.tile(self.switch, n)[:, None]
        grow = np.tile(self.growths, n)[:, None]
        cold = pr.cold_capacity
        full = np.ones((n * c, 1))  # 'send all'
        value = np.zeros((n * c, P))
        first = np.zeros((n * c, P))
        for h in range(self.horizon):
            limit = throttle_limit(rules, st.reputation, st.peak, cold)
            avail = pr.demand + st.backlog.sum(-1)
            expiring = st.backlog[..., -1]  # queued mail whose window closes tonight (overflow 'none' only)
            target = np.where(np.isnan(grow), np.maximum(m * limit - st.retry.sum(-1), expiring),
                              grow * np.maximum(st.peak, 500.0))
            share = np.where(np.isnan(fixed), target / np.maximum(avail, 1), fixed)
            share = np.clip(np.where(h < switch, share, full), MIN_SHARE, full)
            if self.no_jump:
                share = np.maximum(np.minimum(share, self._jump_free_share(rules, st, cold, avail)), MIN_SHARE)
            if h == 0:
                first = share
            outcome = simulate_day(rules, pr, st, share, None)  # expected values, no noise
            value += provider_value(rules, outcome, self.cost_weight) - PAUSE_PENALTY * outcome.paused[:, None]
            if h == self.horizon - 1 or (st.day >= rules.horizon).all():
                break
        value += terminal_value(rules, pr, st, carried_share(share, outcome),
                                np.maximum(rules.horizon - st.day, 0).astype(np.float64))
        best = value.reshape(n, c, P).argmax(1)
        return first.reshape(n, c, P)[np.arange(n)[:, None], best, np.arange(P)[None, :]]
