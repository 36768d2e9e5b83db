"""Gymnasium shells around :class:`~envs.simulator.Simulator`: a single env and its batched twin."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import Env, spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from core.features import LAYOUT
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
    Yahoo/AOL, Apple iCloud, other) keeps hidden reputation in the IP and a memory of the volume it has
    recently accepted; it defers (4xx) what exceeds its limit, blocks (5xx) when reputation is bad or
    complaints are high, and junks a share by reputation. Reputation grows with steady, wanted volume,
    drops on spikes, complaints and bounces, and fades when the IP goes quiet. The model and every
    number's source are in ``docs/model.md``.

    ## Action Space
    ``Box(-1, 1, (5,), float32)``: per provider, in ``PROVIDERS`` order, the share of that
    provider's available mail (fresh demand, plus the queued backlog when there is no overflow
    route) that the new IP carries tomorrow, on a log scale, ``share = 10 ** (-4 * ((1 - a) / 2) ** 2)``:
    ``a = -1`` is 0.01% (a few emails on day 1), ``a = 0`` is 10%, ``a = 0.5`` is 56% and ``a = +1``
    is all of it; finer steps near full volume than near zero.
    Finite values outside [-1, 1] are clipped; NaN, inf or a wrong shape raise ``ValueError``.

    ## Observation Space
    ``Box(float32, (63,))``: 11 features per provider, then 8 global ones; what a sender sees
    the next morning from SES events and feedback loops. Never the hidden reputation.

    | index | feature (per provider p, at 11 p + j) | unit | range |
    |-------|----------------------------------------|------|-------|
    | 0 | warmup_share_log10: today's share on the new IP | log10 fraction | [-4, 0] |
    | 1 | sent_log10: first attempts + retries | log10(1 + emails) | [0, 10] |
    | 2 | delivered_rate | fraction of sent | [0, 1] |
    | 3 | deferred_rate (4xx) | fraction of sent | [0, 1] |
    | 4 | bounce_rate (hard, unknown users) | fraction of sent | [0, 1] |
    | 5 | blocked_rate (5xx) | fraction of sent | [0, 1] |
    | 6 | complaint_rate (FBL; 0 for apple) | fraction of delivered | [0, 1] |
    | 7 | open_rate | fraction of delivered | [0, 1] |
    | 8 | expired_log10: retry window closed | log10(1 + emails) | [0, 10] |
    | 9 | queued_log10: retry queue + backlog | log10(1 + emails) | [0, 10] |
    | 10 | demand_log10: mail available tomorrow (fresh + backlog) | log10(1 + emails) | [0, 10] |
    | 55 | day: days simulated | days | [0, 1000] |
    | 56 | demand_total_log10 | log10(1 + emails) | [0, 10] |
    | 57 | ses_bounce_rate (dashboard window) | fraction | [0, 1] |
    | 58 | ses_complaint_rate (dashboard window) | fraction | [0, 1] |
    | 59-62 | audience_opened_30d/60d/90d, audience_older: the list by last open | fraction of the list | [0, 1] |

    ## Rewards
    Per day: (inboxed emails on the new IP - 300 x complaints - 5 x hard bounces - blocks - expired
    mail - 0.1 x deferrals) / the day's demand, and -30 once if SES pauses the account. Weights are
    scenario parameters (``reward_*``).

    ## Starting State
    Day 0, nothing sent; hidden reputation drawn from the scenario's ``initial_reputation`` range (cold for a
    new IP; partly kept and unknown to the agent in Rewarm-v0); Randomized-v0 draws provider speeds,
    list quality, demand and provider mix per episode.

    ## Episode End
    Termination: SES pauses the account (bounce rate >= 10% or complaint rate >= 0.5% over a
    representative volume). Truncation: the scenario's ``horizon`` (default 60 days), applied by the
    env itself so that a ``horizon=`` override needs no TimeLimit change.

    ## Arguments
    ``gymnasium.make("ipwarmup/NewIP-v0", **overrides)``: any :class:`~envs.scenario.Scenario`
    field (``demand``, ``horizon``, ``retry_window_hours``, ``profile`` ...), validated.

    ## Version History
    * v0: initial release.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, scenario: str | Scenario = "NewIP-v0", **overrides: Any) -> None:
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
        result = self.sim.step(action, self.np_random)
        info = self.sim.info_row(result.outcome, 0)
        return result.obs[0], float(result.reward[0]), bool(result.terminated[0]), bool(result.truncated[0]), info


class WarmupVectorEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """``num_envs`` warm-up episodes stepped by one numpy call (see :class:`WarmupEnv`).

    Autoreset mode NEXT_STEP, as gymnasium's CartPoleVectorEnv: the step after an episode ends
    resets that env and ignores its action. With ``num_envs=1`` it matches ``WarmupEnv`` seeded the
    same, step for step.
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, scenario: str | Scenario = "NewIP-v0", **overrides: Any) -> None:
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
