"""Everything that acts on the simulator: schedules, heuristics, the oracle and PPO.

``load_policy(spec, env)`` is the one entry point (DESIGN.md, "Contracts"); ``run_episodes`` and
``episode_kpis`` compute the episode KPIs every report uses.
"""

from agents.kpis import KPI_NAMES, episode_kpis, run_episodes
from agents.policy import Policy
from agents.registry import BASELINES, load_policy

__all__ = ["BASELINES", "KPI_NAMES", "Policy", "episode_kpis", "load_policy", "run_episodes"]
