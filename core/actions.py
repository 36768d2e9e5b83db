"""How an action in [-1, 1] becomes the share of a provider's mail on the new IP, and back.

``log10(share) = LOG10_SHARE_SCALE * (a - 1) ** 2`` with ``LOG10_SHARE_SCALE = -ACTION_DECADES / 4``, i.e.
``share = 10 ** (-4 * ((1 - a) / 2) ** 2)``: four decades, quadratic in log space so that steps are fine near
full volume (where a few percent decide whether the least engaged tier is sent) and coarse near zero (where
only the order of magnitude matters). The slope is zero at ``a = 1``, so a Gaussian policy whose mean drifts
past the bound gains nothing by it. The simulator, the runtime and the exported ONNX graph all decode with
these constants.
"""

from __future__ import annotations

import numpy as np

ACTION_DECADES = 4.0
"""The action spans 10^-4 (a = -1) to 100% (a = +1) of a provider's available mail."""
MIN_SHARE = 10.0**-ACTION_DECADES
LOG10_SHARE_SCALE = -ACTION_DECADES / 4.0
"""``log10(share) = LOG10_SHARE_SCALE * (a - 1) ** 2``: the form the ONNX graph computes."""
DECODING_FORMULA = f"share = 10 ** (-{ACTION_DECADES:g} * ((1 - action) / 2) ** 2)"


def clip(x: np.ndarray | float, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """``np.clip`` without its Python-level dispatch (a few microseconds per call on small arrays)."""
    return np.minimum(np.maximum(x, lo), hi)


def action_to_share(action: np.ndarray) -> np.ndarray:
    """Decode actions (clipped to [-1, 1]) to the share of each provider's mail on the new IP (float64)."""
    a = clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    return 10.0 ** (-ACTION_DECADES * ((1.0 - a) / 2.0) ** 2)


def share_to_action(share: np.ndarray) -> np.ndarray:
    """Inverse of :func:`action_to_share`; shares below 10^-4 map to -1, above 1 to +1 (float32)."""
    s = clip(np.asarray(share, dtype=np.float64), MIN_SHARE, 1.0)
    return (1.0 - 2.0 * np.sqrt(-np.log10(s) / ACTION_DECADES)).astype(np.float32)
