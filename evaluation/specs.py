"""Env and policy specs as the command line writes them, parsed and validated before any episode runs.

An env spec is a registered id with optional scenario overrides after a colon, comma separated::

    ipwarmup/NewIP-v1
    ipwarmup/NewIP-v1:horizon=10,demand=20000
    ipwarmup/Randomized-v1:profile=poor-list
    ipwarmup/SelfHosted-v1:warmup_days=[14,21,28,40,21]

Values are read as JSON when they parse (numbers, ``true``/``false``, lists) and as strings otherwise,
then validated by the scenario itself, so a typo fails here with the scenario's own message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium

from core.util import did_you_mean, shorten


class EvaluationError(ValueError):
    """Bad input to the benchmark (spec, seed count, output folder); the message is shown to the user as is."""


@dataclass(frozen=True)
class EnvSpec:
    """A Gymnasium id plus the keyword overrides passed to ``gymnasium.make``."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The canonical spec string: id, then overrides sorted by name (used in every output table)."""
        if not self.kwargs:
            return self.env_id
        parts = [f"{k}={_format_value(v)}" for k, v in sorted(self.kwargs.items())]
        return f"{self.env_id}:{','.join(parts)}"

    @property
    def slug(self) -> str:
        """A file-name-safe form of :attr:`label` for plot files."""
        return re.sub(r"[^A-Za-z0-9.=-]+", "_", self.label.removeprefix("ipwarmup/")).strip("_")

    def make(self) -> gymnasium.Env:
        import envs  # noqa: F401  (registers the ids)

        return gymnasium.make(self.env_id, **self.kwargs)


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets, so list values survive."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # not JSON (JSONDecodeError), or an integer past Python's 4,300 digits: kept as text
        return text


def parse_env_spec(text: str) -> EnvSpec:
    """Parse ``ID[:key=value,...]`` and check that gymnasium can build it (unknown ids get a hint)."""
    env_id, _, rest = text.strip().partition(":")
    if "/" not in env_id:
        env_id = f"ipwarmup/{env_id}"
    kwargs: dict[str, Any] = {}
    for part in _split_top_level(rest):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise EvaluationError(f"env spec {shorten(text)}: expected key=value after ':', got {shorten(part)}")
        kwargs[key.strip()] = _parse_value(value.strip())
    spec = EnvSpec(env_id, kwargs)
    validate_env_spec(spec, text)
    return spec


def validate_env_spec(spec: EnvSpec, text: str | None = None) -> None:
    """Build the env once so an unknown id or a bad override fails before any work starts."""
    import envs

    shown = text or spec.label
    if spec.env_id not in gymnasium.registry:
        raise EvaluationError(f"unknown scenario {shorten(shown)}{did_you_mean(spec.env_id, envs.ENV_IDS)} "
                              f"(known: {', '.join(envs.ENV_IDS)})")
    try:
        env = spec.make()
    except (ValueError, TypeError) as exc:
        raise EvaluationError(f"env spec {shorten(shown)}: {exc}") from None
    env.close()


@dataclass(frozen=True)
class PolicySpec:
    """What ``agents.load_policy`` receives, plus the short label used in tables and plots."""

    spec: str
    label: str
    runs: tuple[str, ...] = ()
    """A training sweep (``ipwarmup sweep --out``) of one configuration: its finished run folders, pooled under
    ``label`` as one policy (runs x episodes), as a trained configuration should be reported."""

    @property
    def is_path(self) -> bool:
        return Path(self.spec).exists() or "/" in self.spec or self.spec.endswith((".json", ".onnx", ".zip"))


def parse_policy_specs(texts: list[str]) -> list[PolicySpec]:
    """Baseline names stay as they are; paths are labelled by their folder or file name (must be unique)."""
    out: list[PolicySpec] = []
    seen: dict[str, str] = {}
    for text in texts:
        text = text.strip()
        if not text:
            raise EvaluationError("empty policy spec")
        looks_like_path = "/" in text or Path(text).exists() or text.endswith((".json", ".onnx", ".zip"))
        if looks_like_path and not Path(text).exists():
            raise EvaluationError(f"policy {text!r}: no such run folder or policy card")
        label = Path(text.rstrip("/")).name if looks_like_path else text
        if looks_like_path and label in ("policy.json", "policy.onnx"):
            label = Path(text).parent.name or label
        sweep = _sweep_members(text) if looks_like_path else None
        if sweep is not None:
            label = sweep[0]
        if label in seen:
            if seen[label] == text:
                continue  # the same policy given twice: evaluate once
            raise EvaluationError(f"policies {seen[label]!r} and {text!r} would share the label {label!r}; rename one")
        seen[label] = text
        out.append(PolicySpec(text, label, sweep[1] if sweep is not None else ()))
    return out


def _sweep_members(text: str) -> tuple[str, tuple[str, ...]] | None:
    """A sweep folder, or one configuration folder of a sweep: its label and finished run folders (else None)."""
    if not Path(text).is_dir():
        return None
    from agents.sweep_folder import SweepError, sweep_runs

    try:
        found = sweep_runs(Path(text))
    except SweepError as exc:
        raise EvaluationError(f"policy {text!r}: {exc}") from None
    return None if found is None else (found[0], tuple(str(r) for r in found[1]))
