"""What the sender sees the next morning: the simulator's side of ``core.features``.

The feature table, the layout and the feature maths live in :mod:`core.features` (shared with the
scheduler-side runtime); this module only feeds them the simulated day's counts and hidden-state sums
the sender would see in its SES dashboard.
"""

from __future__ import annotations

import numpy as np

from core.features import N_PROVIDER_FEATURES, OBS_SIZE, global_features, provider_features
from core.providers import FEEDBACK_LOOP, PROVIDERS
from envs.dynamics import DayOutcome, State, ses_rates


def build_observation(
    outcome: DayOutcome,
    state: State,
    share: np.ndarray,
    demand: np.ndarray,
    next_available: np.ndarray,
    tier_share: np.ndarray,
) -> np.ndarray:
    """The [n, OBS_SIZE] float32 observation after a day: yesterday's stats, today's demand, the list's tiers.

    The list's engagement composition (``tier_share`` [n, K]) is known to any sender who orders mail
    engaged-first, and it is what tells how much of the list is worth mailing at all.
    """
    n = share.shape[0]
    out = np.empty((n, OBS_SIZE), np.float32)
    g = len(PROVIDERS) * N_PROVIDER_FEATURES
    out[:, :g] = provider_features(
        share, outcome.sent, outcome.delivered, outcome.deferred, outcome.bounced, outcome.blocked,
        outcome.complaints * FEEDBACK_LOOP, outcome.opens, outcome.expired, outcome.queued, next_available,
    ).reshape(n, g)
    bounce, complaint = ses_rates(state)
    out[:, g:] = global_features(state.day, demand.sum(-1), bounce, complaint, tier_share, outcome.postmaster_band,
                                 outcome.snds_colour)
    return out
