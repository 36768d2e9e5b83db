"""Gymnasium shells around :class:`~envs.simulator.Simulator`: a single env and its batched twin."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import Env, spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from core.features import LAYOUT, N_GLOBAL_FEATURES, N_PROVIDER_FEATURES, OBS_SIZE, feature_table
from core.providers import PROVIDERS
from envs.scenario import Scenario, get_scenario
from envs.simulator import COUNT_KEYS, Simulator


def spaces_for() -> tuple[spaces.Box, spaces.Box]:
    """The observation and action spaces every env of this package shares (SB3's VecEnv adapter too)."""
    low, high = LAYOUT.bounds()
    observation_space = spaces.Box(low, high, dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, shape=(len(PROVIDERS),), dtype=np.float32)
    return observation_space, action_space


def _make_scenario(scenario: str | Scenario, overrides: dict[str, Any]) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario.replace(**overrides) if overrides else scenario
    return get_scenario(scenario, **overrides)


class WarmupEnv(Env[np.ndarray, np.ndarray]):
    """Warm up a new dedicated email-sending IP, one day per step.

    ## Description
    A sender moves its daily mail onto a new dedicated IP. Each mailbox provider (Gmail, Microsoft,
    Yahoo/AOL, Apple iCloud, other) keeps a hidden reputation for the IP and a memory of the volume it has
    recently accepted; it defers (4xx) what exceeds its limit, escalates a sustained excess to blocks
    (Microsoft) or the spam folder (Gmail, Yahoo), blocks (5xx) when reputation is bad, complaints are high
    or spam traps put the IP on a blocklist, and junks a share by reputation. Reputation grows with wanted,
    accepted volume above what a provider registers (slowly from a damaged reputation), drops on spikes,
    complaints, bounces, trap hits and escalation, and fades when the IP goes quiet. Mail not on the new IP
    takes the scenario's overflow route (a shared pool with its own placement, a warm pool with finite
    headroom, or a queue), and its complaints and bounces count toward SES's account-wide rates. Every
    episode draws the providers' cold acceptance, pace and placement and the list's propensities around the
    scenario's values: the sender never knows them exactly. The model and every number's source are in
    ``docs/model.md``.

    ## Action Space
    ``Box(-1, 1, (5,), float32)``: per provider, in ``PROVIDERS`` order, the share of that
    provider's available mail (fresh demand, plus the queued backlog when there is no overflow
    route) that the new IP carries tomorrow, on a log scale, ``share = 10 ** (-4 * ((1 - a) / 2) ** 2)``:
    ``a = -1`` is 0.01% (a few emails on day 1), ``a = 0`` is 10%, ``a = 0.5`` is 56% and ``a = +1``
    is all of it; finer steps near full volume than near zero.
    Finite values outside [-1, 1] are clipped; NaN, inf or a wrong shape raise ``ValueError``.

    ## Observation Space
    ``Box(float32, ({obs_size},))``: {per_provider} features per provider (in ``PROVIDERS`` order), then
    {n_global} global ones; what a sender sees the next morning from SES events, feedback loops, Postmaster
    Tools and SNDS. Never the hidden reputation.

    {observation_table}

    ## Rewards
    Per day: (emails inboxed via any route - 300 x complaints - 5 x hard bounces (both on every route)
    - blocks - expired mail - 0.1 x deferrals) / the day's demand; -30 once if SES pauses the account; on
    the last day, +10 x the IP's readiness (the share of its stream it carries, counting only what the
    provider accepted that day, times how far each provider's reputation has come from cold to HIGH,
    weighted by demand). Weights are scenario parameters (``reward_*``).

    ## Starting State
    Day 0, nothing sent; hidden reputation drawn from the scenario's ``initial_reputation`` range (cold for a
    new IP; partly kept and unknown to the agent in Rewarm-v1); the episode's provider and list parameters
    drawn around the scenario's values; Randomized-v1 draws provider speeds, cold acceptance over the
    published range, list quality, demand and provider mix.

    ## Episode End
    Termination: SES pauses the account (bounce rate >= 10% or complaint rate >= 0.5% over a
    representative volume). Truncation: the scenario's ``horizon`` (default 60 days), applied by the
    env itself so that a ``horizon=`` override needs no TimeLimit change.

    ## Arguments
    ``gymnasium.make("ipwarmup/NewIP-v1", **overrides)``: any :class:`~envs.scenario.Scenario`
    field (``demand``, ``horizon``, ``retry_window_hours``, ``profile`` ...), validated.

    ## Version History
    * v1: cold acceptance from the published day-1 range with per-episode uncertainty; reputation earned by
      accepted volume above a registration threshold (logistic, slow recovery); escalation of sustained
      excess, spam traps and a blocklist-like listing; a real overflow route counted by SES; Postmaster band
      and SNDS colour observed; Apple machine opens; readiness at the end of the episode; SES standard
      carries the whole stream after day 45.
    * v0: initial release.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, scenario: str | Scenario = "NewIP-v1", **overrides: Any) -> None:
        self.scenario = _make_scenario(scenario, overrides)
        self.sim = Simulator(self.scenario, 1)
        self.observation_space, self.action_space = spaces_for()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        obs = self.sim.reset(self.np_random)
        return obs[0], self.sim.info_row(self.sim.empty_outcome(), 0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.sim.state.day[0] >= self.sim.horizon or self.sim.state.paused[0]:
            raise RuntimeError(f"the episode is over (day {int(self.sim.state.day[0])} of {self.sim.horizon}"
                               f"{', SES paused the account' if self.sim.state.paused[0] else ''}): call reset()")
        result = self.sim.step(action, self.np_random)
        info = self.sim.info_row(result.outcome, 0)
        return result.obs[0], float(result.reward[0]), bool(result.terminated[0]), bool(result.truncated[0]), info


WarmupEnv.__doc__ = (WarmupEnv.__doc__ or "").format(
    observation_table=feature_table().replace("\n", "\n    "), obs_size=OBS_SIZE, per_provider=N_PROVIDER_FEATURES,
    n_global=N_GLOBAL_FEATURES)


class WarmupVectorEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """``num_envs`` warm-up episodes stepped by one numpy call (see :class:`WarmupEnv`).

    Autoreset mode NEXT_STEP, as gymnasium's CartPoleVectorEnv: the step after an episode ends
    resets that env and ignores its action. With ``num_envs=1`` it matches ``WarmupEnv`` seeded the
    same, step for step.
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, scenario: str | Scenario = "NewIP-v1", **overrides: Any) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = num_envs
        self.scenario = _make_scenario(scenario, overrides)
        self.sim = Simulator(self.scenario, num_envs)
        self.single_observation_space, self.single_action_space = spaces_for()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._autoreset[:] = False
        obs = self.sim.reset(self.np_random)
        return obs, self.sim.info_batch(self.sim.empty_outcome())

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        resetting = self._autoreset.copy()
        n = self.num_envs
        if resetting.all():
            obs = self.sim.reset(self.np_random, resetting)
            outcome = self.sim.empty_outcome()
            rewards, terminated, truncated = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
        else:
            result = self.sim.step(actions, self.np_random)
            obs, rewards, terminated, truncated = result.obs, result.reward, result.terminated, result.truncated
            outcome = result.outcome
            if resetting.any():
                reset_obs = self.sim.reset(self.np_random, resetting)
                obs[resetting] = reset_obs[resetting]
                rewards[resetting], terminated[resetting], truncated[resetting] = 0.0, False, False
                for key in COUNT_KEYS:
                    getattr(outcome, key)[resetting] = 0
        self._autoreset = terminated | truncated
        return obs, rewards, terminated, truncated, self.sim.info_batch(outcome)
