"""The shared vocabulary of ipwarmup: providers, engagement tiers, the feature table, the action decoding.

Dependency-light on purpose (numpy and the standard library only): the simulator's observation
builder (``envs``) and the scheduler-side runtime (``deploy``) both compute features and decode
actions through this package, so they cannot drift apart. A test imports it in a fresh interpreter
and checks that gymnasium, torch and stable-baselines3 stay unloaded.
"""
