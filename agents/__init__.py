"""What acts on the simulator: published schedules, adaptive heuristics, the oracle, trained PPO policies.

``load_policy(spec, env)`` is the one entry point (DESIGN.md, "Contracts"); every object it returns
satisfies :class:`agents.policy.PolicyProtocol` (SB3's ``predict`` plus ``reset(seed)``).
"""

from __future__ import annotations

from agents.policy import Policy, PolicyProtocol
from agents.registry import BASELINES, PRIVILEGED, load_policy

__all__ = ["BASELINES", "PRIVILEGED", "Policy", "PolicyProtocol", "load_policy"]
