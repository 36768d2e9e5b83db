"""Small utilities every part shares: durable atomic writes, tool-owned output folders, bounded reads of
untrusted files, hashing, "did you mean", CLI errors, seed ranges.

Standard library only (PyYAML is imported inside :func:`safe_yaml_load` alone), so the scheduler-side
runtime can use it too.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import math
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
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
EPISODE_SEED_LIMIT = 2**32
"""A seed given on the command line lies in [0, EPISODE_SEED_LIMIT): numpy's legacy seeding, which the bootstrap
needs, refuses more."""
REPORT_EPISODE_LIMIT = BENCHMARK_SEED_BASE - REPORT_SEED_BASE
"""train.py's comparison plays at most this many episodes, so its seeds stay below the benchmark's."""


def check_report_episodes(n: int, low: int) -> None:
    """Refuse an end-of-training comparison of fewer than ``low`` or more than REPORT_EPISODE_LIMIT episodes.

    train.py and ``ipwarmup sweep`` call it before training, not when the comparison starts hours later; past the
    limit the comparison's seeds would run into the benchmark's.
    """
    if not low <= n <= REPORT_EPISODE_LIMIT:
        raise ValueError(f"--eval-episodes must be in [{low}, {REPORT_EPISODE_LIMIT:,}] so the comparison's seeds "
                         f"stay below the benchmark's, got {shorten(n)}")


def seed_range(base: int, n: int) -> list[int]:
    """``n`` consecutive seeds from ``base``."""
    return [base + i for i in range(n)]


# --------------------------------------------------------------------------------------------- numbers from data


def is_finite_number(value: Any) -> bool:
    """A real number as JSON or YAML hands one over: an int or a float, not a bool (``true`` parses as one), and
    finite. An integer too large for a float (both formats allow any number of digits) is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_whole_number(value: Any, low: int = 0, high: int | None = None) -> bool:
    """An int, not a bool, in ``[low, high]`` (no upper bound when ``high`` is None)."""
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


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


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, directory: bool = False) -> None:
    """Give a temporary file (0600) or folder (0700) the mode a plain ``open``/``mkdir`` would have."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


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
        _usual_mode(tmp)
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


# --------------------------------------------------------------------------------------------- untrusted files


class FileError(ValueError):
    """A file cannot be read as asked (missing, a folder or device, too large); the message names it."""


def read_regular_file(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``max_bytes`` bytes.

    The type and size are checked on the open descriptor (``fstat``), so a device such as ``/dev/zero``, a
    FIFO or a folder is refused without reading it, and a file swapped in after a check cannot slip through.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileError(f"{path} does not exist") from None
    except OSError as exc:
        raise FileError(f"{path}: cannot open the {what} ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileError(f"{path} is a folder, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise FileError(f"{path} is not a regular file (a device, pipe or socket); it is not read as a {what}")
        if info.st_size > max_bytes:
            raise FileError(f"{path} is {info.st_size:,} bytes; a {what} may be at most {max_bytes:,}")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise FileError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise FileError(f"{path} grew past {max_bytes:,} bytes while being read; a {what} may be at most that")
    return data


def load_json(data: bytes | str, source: str, allow_nan: bool = True) -> Any:
    """``json.loads`` whose every failure (syntax, encoding, nesting deeper than Python's stack) is a ValueError
    naming ``source``; with ``allow_nan=False``, NaN and Infinity are refused, as strict JSON does."""
    def constant(name: str) -> Any:
        if allow_nan:
            return float(name)
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(data, parse_constant=constant)
    except RecursionError:
        raise ValueError(f"{source}: JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc})") from None


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, for ``json.dumps(..., allow_nan=False)``: strict
    JSON that any parser reads (NaN is Python's extension, refused by JavaScript, Go, jq ...)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def safe_yaml_load(text: str, source: str) -> Any:
    """YAML as plain data (PyYAML's safe loader) with aliases refused, so a few hundred bytes of nested
    ``&a``/``*a`` references cannot expand into gigabytes; every failure is a ValueError naming ``source``."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"aliases (*name) are not accepted (line {mark.line + 1})")
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise ValueError(f"{source}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ValueError(f"{source}: not valid YAML ({shorten_text(first, 200)})") from None


# --------------------------------------------------------------------------------------------- output folders

OUTPUT_MARKER = ".ipwarmup-output.json"
"""The file a tool writes into its ``--out`` folder, listing every file it wrote there with its sha256."""
MAX_MARKER_BYTES = 16 << 20


class OutputError(ValueError):
    """An ``--out`` folder cannot be written without touching what the tool did not write; the message says why."""


def _safe_relative(rel: Any) -> bool:
    """A path that stays inside its folder: relative, forward slashes, no ``..``, ``.`` or empty parts."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel or rel.startswith("/"):
        return False
    parts = rel.split("/")
    return all(part not in ("", ".", "..") for part in parts) and parts[-1] != OUTPUT_MARKER


def _owned_files(out: Path, tool: str) -> dict[str, list[str]]:
    """What the marker in ``out`` says ``tool`` wrote there: relative path -> accepted sha256 digests."""
    marker = out / OUTPUT_MARKER
    try:
        data = load_json(read_regular_file(marker, MAX_MARKER_BYTES, "output marker"), str(marker))
    except ValueError as exc:
        raise OutputError(f"{exc}; remove the folder yourself or choose another --out") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("format") != 1:
        raise OutputError(f"{marker} is not an ipwarmup output marker; choose another --out")
    if data.get("tool") != tool:
        raise OutputError(f"--out {out} holds the output of {shorten(data.get('tool'))}, not of {tool}; "
                          "choose another --out")
    owned: dict[str, list[str]] = {}
    for rel, digests in files.items():
        if not _safe_relative(rel) or not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
            raise OutputError(f"{marker} lists {shorten(rel)}, which is not a file name inside the folder; "
                              "choose another --out")
        owned[rel] = digests
    return owned


def check_output_folder(out: Path, tool: str, names: Iterable[str] = ()) -> dict[str, list[str]]:
    """Refuse, before any work, an ``--out`` that ``tool`` may not write; return the files it owns there.

    ``out`` may be a path that does not exist yet, an empty folder, or a folder whose marker
    (:data:`OUTPUT_MARKER`) says ``tool`` wrote it and whose listed files are still as written (a file the
    user edited is not overwritten). ``names`` are files the tool is about to write: none may belong to
    someone else. The current folder and the folders containing it are refused outright.
    """
    shown = str(out)
    out = Path(os.path.abspath(out))
    if out.resolve() == Path.cwd().resolve() or out.resolve() in Path.cwd().resolve().parents:
        raise OutputError(f"--out {shown!r} is the current folder or contains it; name a new folder for {tool}'s "
                          "output")
    if not out.exists():
        if out.is_symlink():
            raise OutputError(f"--out {shown!r} is a broken symbolic link; name a new folder")
        for parent in out.parents:
            if parent.exists() and not parent.is_dir():
                raise OutputError(f"--out {shown!r}: {parent} is a file, not a folder")
        return {}
    if not out.is_dir():
        raise OutputError(f"--out {shown!r} exists and is a file; name a new folder")
    try:
        entries = os.listdir(out)
    except OSError as exc:
        raise OutputError(f"--out {shown!r} cannot be listed ({exc.strerror})") from None
    if not entries:
        return {}
    if OUTPUT_MARKER not in entries:
        raise OutputError(f"--out {shown!r} exists, is not empty and was not written by {tool} (it has no "
                          f"{OUTPUT_MARKER}); name a new folder, or empty this one yourself")
    owned = _owned_files(out, tool)
    for rel, digests in owned.items():
        path = out / rel
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise OutputError(f"{path} is no longer the file {tool} wrote; move it away or choose another --out")
        if path.exists() and sha256_file(path) not in digests:
            raise OutputError(f"{path} was changed after {tool} wrote it; move it away (it would be replaced) "
                              "or choose another --out")
    for rel in names:
        path = out / rel
        if rel not in owned and (path.exists() or path.is_symlink()):
            raise OutputError(f"{path} exists and was not written by {tool}; move it away or choose another --out")
    return owned


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``folder`` (POSIX ``flock``; nothing where it does not exist)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on folders
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_marker(path: Path, tool: str, files: Mapping[str, list[str]]) -> None:
    marker = {"tool": tool, "format": 1, "note": f"written by {tool}: the files it wrote into this folder, with their "
              "sha256; it replaces or removes only these", "files": dict(sorted(files.items()))}
    atomic_write_text(path, json.dumps(marker, indent=1) + "\n")


def _commit(staging: Path, out: Path, tool: str, last: tuple[str, ...]) -> None:
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if not p.is_dir())
    for rel in files:
        if (staging / rel).is_symlink():
            raise OutputError(f"{tool} staged a symbolic link {rel}; refusing to publish it")
    digests = {rel: sha256_file(staging / rel) for rel in files}
    for rel in files:
        with (staging / rel).open("rb") as handle:
            os.fsync(handle.fileno())
    for folder in {(staging / rel).parent for rel in files} | {staging}:
        fsync_dir(folder)
    _write_marker(staging / OUTPUT_MARKER, tool, {rel: [digests[rel]] for rel in files})
    _usual_mode(staging, directory=True)
    if not out.exists() or (out.is_dir() and not out.is_symlink() and not os.listdir(out)):
        try:
            os.rename(staging, out)  # all or nothing: the folder appears complete
            fsync_dir(out.parent)
            return
        except OSError:
            pass  # created meanwhile, or a mount point: fall back to file by file, under the checks below
    out.mkdir(exist_ok=True)
    with _locked(out):
        owned = check_output_folder(out, tool, files)
        for rel in files:
            for parent in list(Path(rel).parents)[:-1]:
                target = out / parent
                if target.is_symlink() or (target.exists() and not target.is_dir()):
                    raise OutputError(f"{target} is not a plain folder; {tool} will not write through it")
        # First the marker lists old and new files alike: a crash below leaves nothing the tool cannot clean up.
        union = {rel: list(dict.fromkeys(owned.get(rel, []) + [digests[rel]])) for rel in files}
        _write_marker(out / OUTPUT_MARKER, tool, {**owned, **union})
        for rel in [f for f in files if f not in last] + [f for f in files if f in last]:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, out / rel)
            fsync_dir((out / rel).parent)
        for rel in owned:
            if rel not in digests:
                (out / rel).unlink(missing_ok=True)
                for parent in list(Path(rel).parents)[:-1]:
                    with contextlib.suppress(OSError):
                        (out / parent).rmdir()  # only if empty
        _write_marker(out / OUTPUT_MARKER, tool, {rel: [digests[rel]] for rel in files})


@contextlib.contextmanager
def output_folder(out: Path, tool: str, last: Iterable[str] = ()) -> Iterator[Path]:
    """Write ``tool``'s output folder as a unit: yield an empty staging folder, then publish what was written in it.

    * ``out`` new (or an empty folder): the staging folder is renamed to ``out``, so it appears complete or
      not at all.
    * ``out`` written earlier by ``tool`` (its marker): each new file replaces its namesake by an atomic rename,
      files of the earlier output that the new one lacks are removed, and nothing else in the folder is
      touched; the ``last`` files are renamed last (a policy card that vouches for the others).

    An exception before publishing leaves ``out`` exactly as it was: no staging folder and no new empty
    folders behind. Every published file and folder is fsynced; the marker lists each file's sha256.
    """
    out = Path(os.path.abspath(out))
    check_output_folder(out, tool)
    created = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
        _commit(staging, out, tool, tuple(last))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------- messages


def did_you_mean(word: str, known: Iterable[str], prefix: str = "") -> str:
    """``"; did you mean 'x'?"`` for the closest known name (shown with ``prefix``), or ``""``."""
    hint = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {prefix + hint[0]!r}?" if hint else ""


def shorten(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters so a hostile input cannot flood a message."""
    try:
        text = repr(value)
    except ValueError:  # an int (or a list holding one) past Python's 4,300-digit limit for printing
        text = f"{type(value).__name__} too long to print"
    return shorten_text(text, limit)


def shorten_text(text: str, limit: int = 80) -> str:
    """``text`` itself, cut to ``limit`` characters with the full length noted."""
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
