"""Benchmark warm-up policies.

``python evaluate.py --policy SPEC [SPEC ...] --env ID [ID ...] --episodes N --seed S --out DIR``.

A thin front end; the benchmark lives in the ``evaluation`` package (``evaluation.cli.main``).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark CLI on ``argv`` (default ``sys.argv[1:]``).

    Imported here, not at the top: worker processes re-import this file and must not pay for rliable.
    """
    from evaluation.cli import main as cli_main

    cli_main(argv)


if __name__ == "__main__":
    main()
