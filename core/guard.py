"""The jump guard: a shield between a learned policy and the mail it sends.

Google's rule is that a sudden jump over recent volume hurts (domain-facts 3.1); the model punishes first
attempts above ``spike_allowance`` (1.6) times the larger of the sender's recent peak and the provider's cold
acceptance (``envs/day_kernel.py``). A reward penalty only makes a jump costly; an engineer signs a schedule
only if it never jumps. The guard makes that true by construction: it lowers any provider's share so that
tomorrow's first attempts stay within ``allowance x max(yesterday's first attempts, base)``, where ``base`` is
a low cold acceptance the sender can assume before it has history (the prior's low end, ``envs.dynamics``).
Yesterday's volume is never above the model's recent peak, so the cap holds whatever the peak's memory.

It acts on what a sender knows (its own sends and tomorrow's mail), so training, evaluation and the numpy-only
deployment runtime apply the same function. The one limit it cannot pass is the action space's smallest share
(10^-4 of a provider's mail): a sender of 10^7 emails a day cannot put fewer than 10^-4 of them on the IP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.actions import MIN_SHARE, action_to_share, share_to_action
from core.features import LAYOUT

MARGIN = 1e-3
"""Relative room left under the allowance: the observation carries counts as float32 logs and the action as a
float32, so a volume decoded from them can be a few parts per million off the simulator's own integer."""
SLACK_EMAILS = 2.0
"""Absolute room left under the allowance, for the simulator's rounding of share x available to whole emails."""
ACTION_ROOM = 1e-5
"""Relative room between the cap and the share a lowered action aims at: a float32 action decodes to a share up
to 5.5e-7 (relative) away from the one it encodes."""


@dataclass(frozen=True)
class JumpGuard:
    """Caps each provider's first attempts at ``allowance x max(last, base)``, less a small margin."""

    allowance: float
    base: np.ndarray
    """[P] emails/day the guard assumes a provider accepts cold (the day-1 reference)."""

    def __post_init__(self) -> None:
        base = np.asarray(self.base, np.float64)
        if not self.allowance > 1.0 or not np.isfinite(self.allowance):
            raise ValueError(f"jump guard allowance must be a finite number above 1, got {self.allowance!r}")
        if base.ndim != 1 or not np.all(np.isfinite(base)) or np.any(base < 1.0):
            raise ValueError(f"jump guard base must be a list of finite emails/day >= 1, got {self.base!r}")
        object.__setattr__(self, "base", base)

    def caps(self, last: np.ndarray) -> np.ndarray:
        """Most first attempts per provider tomorrow [n, P], given yesterday's first attempts ``last`` [n, P]."""
        reference = np.maximum(np.asarray(last, np.float64), self.base)
        return np.floor(np.maximum(self.allowance * (1.0 - MARGIN) * reference - SLACK_EMAILS, 0.0))

    def limit(self, action: np.ndarray, available: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``action`` [n, P] with any share above the cap lowered to it, and the first attempts that action sends.

        ``available`` is tomorrow's mail per provider (what the share applies to). Actions already within the cap
        are returned unchanged (bit for bit), so a policy that never jumps is never touched.
        """
        action = np.asarray(action, np.float32)
        available = np.maximum(np.asarray(available, np.float64), 0.0)
        share = action_to_share(action)
        caps = self.caps(last)
        allowed = np.where(available > 0, caps / np.maximum(available, 1.0), 1.0)
        over = np.floor(share * available) > caps
        lowered = share_to_action(np.maximum(allowed * (1.0 - ACTION_ROOM), MIN_SHARE))
        guarded = np.where(over, np.minimum(lowered, action), action).astype(np.float32)
        volume = np.floor(action_to_share(guarded) * available)
        return guarded, volume


class GuardedSends:
    """A guard that reads yesterday's first attempts from the observations it is shown, one day at a time, for the
    policies that act on observations alone (``RunPolicy``, the runtime's ``RuntimePolicy``).

    Yesterday's first attempts are yesterday's share (in today's observation) times the mail that was available
    (in yesterday's observation), so the guard follows what was actually sent, whoever chose it. The observation
    holds both as float32 logs: the estimate can be an email off the simulator's count (``SLACK_EMAILS``).
    """

    def __init__(self, guard: JumpGuard) -> None:
        self.guard = guard
        self.available: np.ndarray | None = None
        """Per env [n, P]: the mail available on the day the previous observation announced."""

    def reset(self) -> None:
        self.available = None

    def observed(self, action: np.ndarray, obs: np.ndarray, episode_start: np.ndarray | None) -> np.ndarray:
        """Guard actions [n, P] for raw observations [n, OBS_SIZE]; a day-0 observation or ``episode_start``
        starts a new history (nothing sent yet)."""
        obs = np.asarray(obs, np.float64)
        starts = np.rint(LAYOUT.global_value(obs, "day")) == 0
        if episode_start is not None:
            starts = starts | np.asarray(episode_start, bool).reshape(-1)
        available = np.rint(LAYOUT.provider_count(obs, "demand_log10"))
        if self.available is None or self.available.shape != available.shape:
            self.available = np.zeros_like(available)
            starts = np.ones_like(starts)
        yesterday_share = 10.0 ** LAYOUT.provider_block(obs, "warmup_share_log10")
        last = np.where(starts[:, None], 0.0, np.floor(yesterday_share * self.available))
        self.available = available
        guarded, _ = self.guard.limit(action, available, last)
        return guarded
