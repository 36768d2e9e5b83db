"""``python tests/train_driver.py TRAIN_ARGS...``: train.py's own main, printing ``step N`` after every vector step.

For the kill and SIGTERM tests: the printed count tells the test how far training got before it was stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

import training.run  # noqa: E402


class Progress(BaseCallback):
    def _on_step(self) -> bool:
        print(f"step {self.num_timesteps}", flush=True)
        return True


_train = training.run.train


def _train_with_progress(*args: Any, **kwargs: Any) -> Path:
    kwargs["callback"] = Progress()
    return _train(*args, **kwargs)


training.run.train = _train_with_progress  # type: ignore[assignment]

import train  # noqa: E402

if __name__ == "__main__":
    train.main(sys.argv[1:])
