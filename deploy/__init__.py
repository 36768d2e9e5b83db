"""What a production scheduler runs: the numpy + onnxruntime runtime, ``recommend``, and SES event parsing.

Every module here imports numpy, onnxruntime, the standard library and ``core`` only (a test checks it in a
fresh interpreter), so a scheduler runs it without PyTorch, stable-baselines3 or gymnasium. The exporter that
writes the files it reads (``training.export``) lives with training: it needs the trained model.
"""
