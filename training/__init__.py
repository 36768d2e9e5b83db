"""PPO training on the batched simulator: configuration, the native VecEnv, callbacks, run folders, the report.

``training.run.train`` is what ``train.py`` runs; trained runs are loaded for acting by ``agents.ppo``.
"""
