"""The ``ipwarmup`` console script: ``train``, ``evaluate``, ``export``, ``recommend``, ``sweep`` and ``tune``."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "export": "training.export",
    "recommend": "deploy.recommend",
    "sweep": "training.sweep",
    "tune": "training.tune",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        known = ", ".join(COMMANDS)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"ipwarmup: unknown command {argv[0]!r}; choose one of: {known}", file=sys.stderr)
            raise SystemExit(2)
        print(f"usage: ipwarmup {{{known.replace(', ', ',')}}} ...")
        raise SystemExit(0)
    module = importlib.import_module(COMMANDS[argv[0]])
    module.main(argv[1:])


if __name__ == "__main__":
    main()
