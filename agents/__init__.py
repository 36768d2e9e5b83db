"""Everything that acts on the simulator: schedules, heuristics, the oracle and PPO."""
