"""Small utilities every part shares: durable atomic writes, hashing, "did you mean", CLI errors, seed ranges.

Standard library only, so the scheduler-side runtime can use it too.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

# --------------------------------------------------------------------------------------------- seeds

TRAINING_SEED_LIMIT = 1_000_000
"""Training seeds lie in [0, TRAINING_SEED_LIMIT)."""
EVAL_SEED_BASE = 1_000_000
"""Training's periodic evaluation (which picks ``best_model``) uses EVAL_SEED_BASE + i."""
REPORT_SEED_BASE = 1_500_000
"""train.py's end-of-training comparison: unseen by training and by best-model selection."""
BENCHMARK_SEED_BASE = 2_000_000
"""The benchmark's episode i of every (policy, env) uses BENCHMARK_SEED_BASE + i: never seen in training."""


def seed_range(base: int, n: int) -> list[int]:
    """``n`` consecutive seeds from ``base``."""
    return [base + i for i in range(n)]


# --------------------------------------------------------------------------------------------- files


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(path: Path, save: Callable[[Path], None]) -> None:
    """Write ``path`` through ``save(tmp)`` into a uniquely named sibling, fsync it, then rename it over ``path``.

    A reader never sees half a file, two writers never share a temporary name, and a crash leaves the
    previous ``path`` intact. ``save`` may write any file format to the path it is given.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        save(tmp)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_save` of ``data``."""
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_save(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_save` of ``text`` (UTF-8)."""
    atomic_write_bytes(path, text.encode())


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(path: Path) -> str:
    """sha256 of a file, or of every file under a folder with its relative name: any change changes it."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        digest.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with f.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of a configuration as canonical JSON: the same config gives the same hash."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------- messages


def did_you_mean(word: str, known: Iterable[str], prefix: str = "") -> str:
    """``"; did you mean 'x'?"`` for the closest known name (shown with ``prefix``), or ``""``."""
    hint = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {prefix + hint[0]!r}?" if hint else ""


def shorten(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters so a hostile input cannot flood a message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...({len(text)} chars)"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: object, status: int = 2) -> NoReturn:
    """Print ``prog: error: message`` as one line on stderr and exit with ``status``."""
    text = " ".join(str(message).split())
    print(f"{prog}: error: {text}", file=sys.stderr)
    raise SystemExit(status)
