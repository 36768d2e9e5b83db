"""What a production scheduler runs: export of a trained run, the numpy + onnxruntime runtime, ``recommend``,
and SES event parsing.

``deploy.runtime``, ``deploy.recommend`` and ``deploy.ses_events`` import numpy, onnxruntime, the standard
library and ``core`` only (a test checks it in a fresh interpreter); ``deploy.export`` is the one module that
needs the training stack.
"""
