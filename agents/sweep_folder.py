"""A sweep folder as evaluation reads it: its marker, its finished runs.

``ipwarmup sweep`` (:mod:`training.sweep`) writes the folder; evaluation and the policy loader only read it,
so the reading lives here, beside the run folders it lists, and nothing below ``training`` imports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SWEEP_FILE = "sweep.json"
TRIAL_FILE = "trial.json"
SWEEP_TOOL = "ipwarmup sweep"
MAX_MARKER_BYTES = 8 << 20


class SweepError(ValueError):
    """Bad sweep input or an unusable --out folder; the message is one line for the user."""


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The sweep marker of ``folder``, None if it has none; a marker that is not ours is an error."""
    path = Path(folder) / SWEEP_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_MARKER_BYTES:
        raise SweepError(f"{path} is larger than {MAX_MARKER_BYTES >> 20} MiB: not a sweep marker")
    try:
        marker = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SweepError(f"{path} is not a readable sweep marker ({type(exc).__name__})") from None
    if not isinstance(marker, dict) or marker.get("tool") != SWEEP_TOOL or not isinstance(marker.get("configs"), dict):
        raise SweepError(f"{path} was not written by {SWEEP_TOOL}")
    return marker


def read_trial(run_dir: Path) -> dict[str, Any] | None:
    """A finished trial's record (its ``trial.json``), or None if the trial has not finished."""
    path = Path(run_dir) / TRIAL_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "done" else None


def sweep_runs(path: Path) -> tuple[str, list[Path]] | None:
    """For evaluation: the label and finished run folders of a sweep (one configuration) or of a configuration folder.

    None if ``path`` is neither. A sweep of several configurations is refused with the folders to pass instead.
    """
    path = Path(path)
    marker = read_marker(path)
    if marker is not None:
        names = list(marker["configs"])
        if len(names) > 1:
            shown = ", ".join(str(path / n) for n in names[:4]) + (", ..." if len(names) > 4 else "")
            raise SweepError(f"sweep {str(path)!r} has {len(names)} configurations; pass one configuration folder: "
                             f"{shown}")
        label, folder, seeds = path.resolve().name, path / names[0], marker.get("seeds") or []
    else:
        parent = read_marker(path.parent) if path.is_dir() else None
        if parent is None or path.name not in parent["configs"]:
            return None
        label, folder, seeds = f"{path.resolve().parent.name}/{path.name}", path, parent.get("seeds") or []
    runs = [folder / f"s{s}" for s in seeds if read_trial(folder / f"s{s}") is not None]
    if not runs:
        raise SweepError(f"sweep configuration {str(folder)!r} has no finished runs yet; finish the sweep first")
    return label, runs
