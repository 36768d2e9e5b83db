"""One policy interface for every agent: stable-baselines3's ``predict``, batched over envs.

Schedules and heuristics act on the observation alone, which is the explicit channel the env
documents (``envs.observation.LAYOUT``): the day, each provider's available mail, yesterday's
share on the new IP and yesterday's rates. The helpers below decode those entries once, so no
agent indexes the raw vector. Only the oracle needs more; it gets the simulator through
its constructor or :meth:`OraclePolicy.bind` (see ``agents/oracle.py``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from core.actions import share_to_action
from core.features import LAYOUT, OBS_SIZE
from core.providers import FEEDBACK_LOOP, PROVIDERS

P = len(PROVIDERS)
Memory = dict[str, np.ndarray]


@runtime_checkable
class PolicyProtocol(Protocol):
    """What every agent offers: stable-baselines3's ``predict`` (batched over envs) and ``reset(seed)``.

    ``reset`` starts a new episode (or batch of episodes): it clears per-episode memory and reseeds any
    randomness the policy has, so an episode's actions depend on its seed alone.
    """

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]: ...

    def reset(self, seed: int | None = None) -> None: ...


class Policy:
    """Base class: SB3's ``predict`` over ``_act``; per-env memory reset on ``episode_start``.

    Subclasses implement :meth:`_act` on a float64 batch ``[n, OBS_SIZE]`` and, if they remember
    anything between days, :meth:`initial_memory`. Memory rows follow the batch rows (one per env)
    and are re-initialised where ``episode_start`` is true or the observation's day is 0, so a
    caller that never passes ``episode_start`` still gets a clean start each episode.
    """

    name: str = "policy"

    def __init__(self) -> None:
        self.memory: Memory = {}
        self._n: int | None = None

    def reset(self, seed: int | None = None) -> None:
        """Forget every env's memory; the next ``predict`` starts fresh (memoryless policies ignore ``seed``)."""
        self._n, self.memory = None, {}

    def initial_memory(self, n: int) -> Memory:
        """Fresh per-env memory for ``n`` envs; empty for memoryless policies."""
        return {}

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Actions ``[n, P]`` in [-1, 1] for observations ``[n, OBS_SIZE]``; ``starts`` marks new episodes."""
        raise NotImplementedError

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's signature: ``[n, OBS_SIZE]`` (or one ``[OBS_SIZE]``) in, float32 ``[n, P]`` actions out.

        ``state`` is passed through untouched (these agents keep their memory per env inside the
        policy); ``deterministic`` has no effect except for the random policy, which is random.
        """
        obs = np.asarray(observation, dtype=np.float64)
        single = obs.ndim == 1
        if single:
            obs = obs[None]
        if obs.ndim != 2 or obs.shape[1] != OBS_SIZE:
            raise ValueError(f"observation has shape {np.shape(observation)}; "
                             f"expected ({OBS_SIZE},) or (n, {OBS_SIZE})")
        if not np.all(np.isfinite(obs)):
            raise ValueError("observation must be finite (found NaN or inf)")
        n = obs.shape[0]
        starts = np.zeros(n, bool) if episode_start is None else np.asarray(episode_start, bool).reshape(n).copy()
        starts |= day(obs) == 0
        if self._n != n:  # a new batch size: fresh memory for every row (a mid-episode row acts from it)
            self._n, self.memory = n, self.initial_memory(n)
        elif starts.any():
            fresh = self.initial_memory(n)
            for key, value in fresh.items():
                self.memory[key][starts] = value[starts]
        action = np.clip(self._act(obs, starts), -1.0, 1.0).astype(np.float32)
        return (action[0] if single else action), state


# --- Reading the observation: the documented channel every schedule and heuristic uses. ---


def day(obs: np.ndarray) -> np.ndarray:
    """Days simulated so far [n]; the day about to be sent is ``day + 1`` (day 1 is the first)."""
    return np.rint(LAYOUT.global_value(obs, "day"))


def available(obs: np.ndarray) -> np.ndarray:
    """Mail per provider the share applies to tomorrow [n, P] (fresh demand, plus the backlog with no overflow)."""
    return LAYOUT.provider_count(obs, "demand_log10")


def sent(obs: np.ndarray) -> np.ndarray:
    """Yesterday's attempts on the new IP per provider [n, P]."""
    return LAYOUT.provider_count(obs, "sent_log10")


def share(obs: np.ndarray) -> np.ndarray:
    """Yesterday's share of each provider's mail on the new IP [n, P]."""
    return 10.0 ** LAYOUT.provider_block(obs, "warmup_share_log10")


def rate(obs: np.ndarray, feature: str) -> np.ndarray:
    """One of yesterday's per-provider rates [n, P] (``deferred_rate``, ``blocked_rate`` ...)."""
    return LAYOUT.provider_block(obs, feature)


def account_rates(obs: np.ndarray) -> dict[str, np.ndarray]:
    """Yesterday's account-wide rates [n], weighted as a sender's dashboard would; 0 on a day with no mail.

    ``delivered``, ``deferred``, ``blocked`` and ``bounce`` are per attempt; ``open`` per delivered
    email; ``complaint`` per delivered email at providers with a feedback loop (iCloud has none).
    """
    attempts = sent(obs)
    delivered = attempts * rate(obs, "delivered_rate")
    total = attempts.sum(-1)

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)

    out = {name: ratio((attempts * rate(obs, f"{name}_rate")).sum(-1), total)
           for name in ("delivered", "deferred", "blocked", "bounce")}
    out["open"] = ratio((delivered * rate(obs, "open_rate")).sum(-1), delivered.sum(-1))
    fbl_delivered = delivered * FEEDBACK_LOOP
    out["complaint"] = ratio((fbl_delivered * rate(obs, "complaint_rate")).sum(-1), fbl_delivered.sum(-1))
    out["sent"] = total
    return out


def volume_to_action(volume: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """The action that puts ``volume`` [n, P] emails on the new IP, capped at what is available.

    A provider with nothing available, or a volume of 0, gets the smallest share (action -1).
    """
    frac = np.where(avail > 0, np.asarray(volume, np.float64) / np.maximum(avail, 1e-12), 0.0)
    return share_to_action(np.clip(np.nan_to_num(frac, nan=0.0, posinf=1.0), 0.0, 1.0))


class NoWarmup(Policy):
    """The control: the whole demand on the new IP from day 1 (share 100% for every provider, every day).

    It shows whether warm-up matters in a scenario at all: where it does, this policy loses to SES standard.
    """

    name = "no-warmup"

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return np.ones((obs.shape[0], P))


RANDOM_POLICY_STREAM = 0x52414E44
"""Mixed into the random policy's per-episode seed: independent of the env's draws under the same seed."""


class RandomPolicy(Policy):
    """The floor: a uniform action in [-1, 1] per provider (a share from 0.01% to 100%, median 10%)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Restart the draws, so an episode's actions depend on its seed alone (the episode loop calls it).

        The seed is mixed with a constant so the policy's stream differs from the env's (seeded alike)."""
        super().reset(seed)
        self.rng = np.random.default_rng(None if seed is None else [seed, RANDOM_POLICY_STREAM])

    def _act(self, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, size=(obs.shape[0], P))
