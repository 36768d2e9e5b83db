"""Sensitivity of the conclusions to each assumption: every ASSUMPTION parameter at x0.5 and x2, one at a time.

The parameters are found, not listed by hand: every numeric field of ``envs.scenario.Scenario`` whose docstring
says ``ASSUMPTION`` (and, with ``--constants``, every module constant of ``envs/dynamics.py`` whose docstring
does). Each is scaled by 0.5 and by 2 (a tuple or range element-wise), clipped to the scenario's validity rules
where the scaled value breaks them (an exclusive bound is approached to 10% of its distance from the default;
the report says where), and passed as a ``gymnasium.make(env_id, **{name: value})`` override; module constants
cannot be passed that way, so they are set on ``envs.dynamics`` inside the worker for that cell and put back.
Every cell plays ses-standard, no-warmup, ses-managed, aimd, braze-automated and the oracle (``--policies`` picks
some; ``--policy PATH`` adds a trained policy as ``ppo``) on the same seeds
(``core.util.BENCHMARK_SEED_BASE`` upward) through the project's one episode loop,
``evaluation.episodes.run_episodes``, and compares each pair of policies on the headline KPIs
(``inboxed_share_all``, ``return``, and the final reputation averaged over providers) by the paired per-seed
difference and its 95% CI (``evaluation.kpis.mean_ci``).

A pair is *ordered* when that CI excludes 0, else *tied*. The ranking changes when an ordered pair of the
default reverses (``reversal``); a pair that goes from ordered to tied or back is reported too, as weaker
evidence. A cell whose episodes equal the default's exactly is reported as ``no effect`` (e.g. a warm-pool
parameter on a shared-pool scenario; :data:`HOME_ENV` runs such parameters where they act, too).

    python benchmarks/sensitivity.py --seeds 20 --cross-seeds 12 --constants --csv results/sensitivity.csv
    python benchmarks/sensitivity.py --from-csv results/sensitivity.csv      # the report again, no episodes
    python benchmarks/sensitivity.py --env ipwarmup/Randomized-v1 --seeds 20 --policy runs/x/base/s0 \
        --policies ppo ses-managed aimd ses-standard --csv results/sensitivity-ppo.csv

Progress goes to stderr, the markdown report (the tables of docs/sensitivity.md) to stdout.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import inspect
import io
import itertools
import json
import math
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import envs.dynamics  # noqa: E402
import envs.scenario  # noqa: E402
from core.providers import PROVIDERS  # noqa: E402
from core.util import BENCHMARK_SEED_BASE, atomic_write_text, seed_range  # noqa: E402
from envs.scenario import Scenario, ScenarioError, get_scenario  # noqa: E402
from evaluation.episodes import run_episodes  # noqa: E402
from evaluation.kpis import mean_ci  # noqa: E402

POLICIES: dict[str, str] = {
    "oracle": "O", "ses-standard": "S", "ses-managed": "M", "aimd": "A", "braze-automated": "B", "no-warmup": "N",
    "ppo": "P",
}
"""The policies whose ranking is tested, with the letter the ranking strings use; ``ppo`` is the trained policy
given with ``--policy`` (a run folder or a policy card), played only when given."""
BASELINES = tuple(p for p in POLICIES if p != "ppo")
HEADLINE: tuple[str, ...] = ("inboxed_share_all", "return", "final_reputation")
"""The KPIs a ranking is read on; ``final_reputation`` is the mean over providers of ``final_reputation_<p>``."""
EXTRA: tuple[str, ...] = ("inboxed_share", "blocks", "paused", "days_to_full", "deferral_share")
"""Also written to the CSV, for reading a cell closer."""
FACTORS: tuple[float, ...] = (0.5, 2.0)
MAIN_ENV = "ipwarmup/NewIP-v1"
CROSS_ENV = "ipwarmup/Randomized-v1"
HOME_ENV: dict[str, str] = {"pool_headroom": "ipwarmup/AddIP-v1"}
"""Parameters that act only in another scenario (a warm pool's headroom) are also run there."""
INSIDE = 0.1
"""An exclusive bound is approached to this fraction of its distance from the default (x0.5 of 1.6 for a bound
'> 1' gives 1.06)."""
DEFAULT = "default"
CSV_COLUMNS = ("env", "param", "kind", "factor", "value", "note", "commit", "policy", "seed", *HEADLINE, *EXTRA,
               "policy_source")


# --------------------------------------------------------------------------------------------- the parameters


def _docstrings(source: str, body_of: str | None = None) -> dict[str, str]:
    """``name -> docstring`` of the assignments in a module (or in class ``body_of``) that have one."""
    tree = ast.parse(source)
    body: list[ast.stmt] = tree.body
    if body_of is not None:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == body_of).body
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if not (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            continue
        targets: list[ast.expr] = [node.target] if isinstance(node, ast.AnnAssign) else (
            list(node.targets) if isinstance(node, ast.Assign) else [])
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    docs[name.id] = nxt.value.value
    return docs


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, tuple):
        return bool(value) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    return isinstance(value, (int, float))


def assumption_fields() -> list[str]:
    """Numeric Scenario fields whose docstring says ASSUMPTION, in declaration order."""
    docs = _docstrings(inspect.getsource(envs.scenario), body_of="Scenario")
    return [f.name for f in dataclasses.fields(Scenario)
            if "ASSUMPTION" in docs.get(f.name, "") and _numeric(f.default)]


def assumption_constants() -> list[str]:
    """Numeric module constants of envs/dynamics.py whose docstring says ASSUMPTION, in source order."""
    docs = _docstrings(inspect.getsource(envs.dynamics))
    return [name for name, doc in docs.items()
            if "ASSUMPTION" in doc and name.isupper() and _numeric(getattr(envs.dynamics, name, None))]


@dataclass(frozen=True)
class Perturbation:
    """One cell's override: the value used (JSON), how it was reached, or why there is none."""

    kind: str  # "field" | "constant" | "default"
    param: str
    factor: float
    value: Any
    note: str = ""  # "clipped ..." or "invalid: ..." (then no episodes are played)

    @property
    def valid(self) -> bool:
        return not self.note.startswith("invalid")


def _scaled(value: Any, factor: float) -> Any:
    return tuple(float(v) * factor for v in value) if isinstance(value, tuple) else float(value) * factor


def _field_bounds(name: str, s: Scenario) -> tuple[float, bool, float, bool] | None:
    """(low, low exclusive, high, high exclusive) per element, from ``envs.scenario._validate``; None if the rule
    is not a bound (provider_share must sum to 1) or the field has no rule beyond being finite."""
    inf = math.inf
    if name in envs.scenario.PER_TIER or name in envs.scenario.RANGES or name == "list_quality":
        return 0.0, False, 1.0, False
    rules: dict[str, tuple[float, bool, float, bool]] = {
        "spike_allowance": (1.0, True, inf, False),
        "volume_memory": (0.0, False, 1.0, True),
        "cold_reputation": (0.0, True, s.high_reputation, True),
        "high_reputation": (s.cold_reputation, True, 1.0, True),
        "escalation_start": (1.0, True, s.escalation_full, True),
        "escalation_full": (s.escalation_start, True, inf, False),
        "register_volume": (1.0, False, s.keep_warm_volume, True),
        "complaint_safe": (0.0, True, s.complaint_limit, True),
        "complaint_limit": (s.complaint_safe, True, 1.0, True),
    }
    if name in rules:
        return rules[name]
    if name in envs.scenario.NON_NEGATIVE:
        return 0.0, False, inf, False
    if name in envs.scenario.POSITIVE:
        return 0.0, True, inf, False
    return None


def _constant_bounds(name: str, s: Scenario) -> tuple[float, bool, float, bool]:
    """Constants have no validation; these keep them meaningful: shares and reputations in [0, 1], the inbox
    placement range ordered, a positive curve exponent."""
    if name == "INBOX_REPUTATION_LOW":
        return 0.0, False, envs.dynamics.INBOX_REPUTATION_HIGH, True
    if name == "INBOX_REPUTATION_HIGH":
        return envs.dynamics.INBOX_REPUTATION_LOW, True, 1.0, False
    if name == "BLOCK_REPUTATION":
        return 0.0, True, s.high_reputation, True
    if name == "CAPACITY_CURVE":
        return 0.0, True, math.inf, False
    return 0.0, False, 1.0, False


def _clip_one(x: float, default: float, bounds: tuple[float, bool, float, bool]) -> float:
    lo, lo_open, hi, hi_open = bounds
    if x < lo or (lo_open and x == lo):
        return lo + INSIDE * (default - lo) if lo_open else lo
    if x > hi or (hi_open and x == hi):
        return hi - INSIDE * (hi - default) if hi_open else hi
    return x


def _clip(value: Any, default: Any, bounds: tuple[float, bool, float, bool]) -> Any:
    if isinstance(value, tuple):
        return tuple(_clip_one(v, d, bounds) for v, d in zip(value, default, strict=True))
    return _clip_one(value, default, bounds)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return f"{value:.6g}"


def _rule(err: ScenarioError) -> str:
    """The broken rule of a validation error, without the scenario name and the value."""
    text = str(err).split(": ", 1)[-1]
    return text.split(", got ")[0]


def perturb(env_id: str, kind: str, name: str, factor: float) -> Perturbation:
    """The override for ``name`` x ``factor`` on ``env_id``'s scenario, clipped to the validity rules if needed."""
    base = get_scenario(env_id)
    default = getattr(base, name) if kind == "field" else getattr(envs.dynamics, name)
    default = tuple(float(v) for v in default) if isinstance(default, tuple) else float(default)
    value = _scaled(default, factor)
    note = ""
    if kind == "field":
        try:
            base.replace(**{name: value})
        except ScenarioError as err:
            bounds = _field_bounds(name, base)
            if bounds is None:
                return Perturbation(kind, name, factor, None, f"invalid: {_fmt(value)} ({_rule(err)})")
            clipped = _clip(value, default, bounds)
            try:
                base.replace(**{name: clipped})
            except ScenarioError as err2:
                return Perturbation(kind, name, factor, None, f"invalid: {_fmt(value)} ({_rule(err2)})")
            note, value = f"clipped from {_fmt(value)}", clipped
    else:
        clipped = _clip(value, default, _constant_bounds(name, base))
        if clipped != value:
            note, value = f"clipped from {_fmt(value)}", clipped
    return Perturbation(kind, name, factor, value, note)


def plan(env_ids: Sequence[str], fields: bool = True, constants: bool = False) -> list[tuple[str, Perturbation]]:
    """Every (env, perturbation) cell, the default first per env; HOME_ENV parameters also in their home env."""
    cells: list[tuple[str, Perturbation]] = []
    params = ([("field", n) for n in assumption_fields()] if fields else []) + (
        [("constant", n) for n in assumption_constants()] if constants else [])
    homes = {home for name, home in HOME_ENV.items() if any(n == name for _, n in params)} - set(env_ids)
    for env_id in [*env_ids, *sorted(homes)]:
        cells.append((env_id, Perturbation("default", DEFAULT, 1.0, None)))
        for kind, name in params:
            if env_id in env_ids or HOME_ENV.get(name) == env_id:
                cells.extend((env_id, perturb(env_id, kind, name, f)) for f in FACTORS)
    return cells


# --------------------------------------------------------------------------------------------- running


def _kpi_row(kpis: dict[str, float]) -> dict[str, float]:
    row = {k: kpis[k] for k in HEADLINE if k in kpis}
    row["final_reputation"] = float(np.mean([kpis[f"final_reputation_{p}"] for p in PROVIDERS]))
    row.update({k: kpis[k] for k in EXTRA})
    return row


def play(env_id: str, p: Perturbation, policy: str, seeds: Sequence[int]) -> list[dict[str, float]]:
    """KPI rows of ``policy`` (a name or a path for ``agents.load_policy``) on one cell (a constant is set on
    envs.dynamics for the call, then put back)."""
    if p.kind == "constant":
        saved = getattr(envs.dynamics, p.param)
        setattr(envs.dynamics, p.param, p.value)
        try:
            return [_kpi_row(k) for k in run_episodes(policy, env_id, seeds)]
        finally:
            setattr(envs.dynamics, p.param, saved)
    overrides = {p.param: p.value} if p.kind == "field" else {}
    return [_kpi_row(k) for k in run_episodes(policy, env_id, seeds, overrides)]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_all(cells: Sequence[tuple[str, Perturbation]], seeds: dict[str, list[int]], workers: int,
            policies: dict[str, str] | None = None) -> list[dict]:
    """Play every valid cell x policy, cell by cell; rows for the CSV. ``policies`` maps each name to what
    ``agents.load_policy`` loads (default: every baseline by its name)."""
    commit = _commit()
    policies = policies or {b: b for b in BASELINES}
    tasks = [(env_id, p, policy) for env_id, p in cells if p.valid for policy in policies]
    rows: list[dict] = []
    for env_id, p in cells:
        if not p.valid:
            rows.append(_meta(env_id, p, commit) | {"policy": "", "seed": ""})
    started = time.perf_counter()

    def done(k: int, task: tuple[str, Perturbation, str], result: list[dict[str, float]]) -> None:
        env_id, p, policy = task
        source = "" if policies[policy] == policy else policies[policy]
        rows.extend(_meta(env_id, p, commit) | {"policy": policy, "seed": s, "policy_source": source} | r
                    for s, r in zip(seeds[env_id], result, strict=True))
        print(f"[{k}/{len(tasks)}] {time.perf_counter() - started:6.0f} s  {env_id} {p.param} x{p.factor:g} {policy}",
              file=sys.stderr, flush=True)

    if workers <= 1:
        for k, task in enumerate(tasks, 1):
            env_id, p, policy = task
            done(k, task, play(env_id, p, policies[policy], seeds[env_id]))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(play, task[0], task[1], policies[task[2]], seeds[task[0]]): task for task in tasks}
            for k, future in enumerate(as_completed(futures), 1):
                done(k, futures[future], future.result())
    print(f"{len(tasks)} cells x policy in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


def _meta(env_id: str, p: Perturbation, commit: str) -> dict[str, Any]:
    return {"env": env_id, "param": p.param, "kind": p.kind, "factor": p.factor, "value": json.dumps(p.value),
            "note": p.note, "commit": commit}


def to_csv(rows: Iterable[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def from_csv(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            row["factor"] = float(row["factor"])
            for k in (*HEADLINE, *EXTRA):
                if row.get(k, "") != "":
                    row[k] = float(row[k])
            row["seed"] = int(row["seed"]) if row["seed"] != "" else ""
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- analysis


@dataclass
class Cell:
    """One (env, param, factor): per policy, KPI arrays over the same seeds in seed order."""

    env: str
    param: str
    kind: str
    factor: float
    value: str
    note: str
    kpis: dict[str, dict[str, np.ndarray]]  # policy -> kpi -> [seeds]

    @property
    def label(self) -> str:
        return DEFAULT if self.param == DEFAULT else f"{self.param} x{self.factor:g}"

    @property
    def policies(self) -> list[str]:
        """The policies played in this cell, in :data:`POLICIES` order."""
        return [p for p in POLICIES if p in self.kpis]

    def same_as(self, other: Cell) -> bool:
        """Every policy's episodes identical (the parameter has no effect in this env)."""
        return bool(self.kpis) and all(
            np.array_equal(self.kpis[p][k], other.kpis[p][k], equal_nan=True)
            for p in self.policies for k in (*HEADLINE, *EXTRA))


def cells_from_rows(rows: Sequence[dict]) -> list[Cell]:
    grouped: dict[tuple[str, str, float], list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(row["env"], row["param"], float(row["factor"]))].append(row)
    cells = []
    for (env, param, factor), group in grouped.items():
        by_policy: dict[str, dict[Any, dict]] = defaultdict(dict)
        for row in group:  # the default cell may come from several runs: one row per (policy, seed)
            if row["policy"]:
                by_policy[row["policy"]].setdefault(row["seed"], row)
        kpis = {policy: {k: np.array([float(rs[seed][k]) for seed in sorted(rs)])
                         for k in (*HEADLINE, *EXTRA)} for policy, rs in by_policy.items()}
        first = group[0]
        cells.append(Cell(env, param, first["kind"], factor, first["value"], first["note"], kpis))
    return cells


def pair_sign(cell: Cell, a: str, b: str, kpi: str) -> int:
    """+1 if a is above b (paired 95% CI of a - b above 0), -1 if below, 0 if tied."""
    diff = cell.kpis[a][kpi] - cell.kpis[b][kpi]
    _, lo, hi = mean_ci(diff.tolist())
    return 1 if lo > 0 else -1 if hi < 0 else 0


def ranking(cell: Cell, kpi: str) -> str:
    """Policies by mean, best first, '>' between neighbours whose paired CI is apart, '≈' where it is not."""
    order = sorted(cell.policies, key=lambda p: -float(np.mean(cell.kpis[p][kpi])))
    text = POLICIES[order[0]]
    for hi, lo in itertools.pairwise(order):
        text += (" > " if pair_sign(cell, hi, lo, kpi) > 0 else " ≈ ") + POLICIES[lo]
    return text


def changes(cell: Cell, default: Cell, kpi: str) -> tuple[list[str], list[str]]:
    """(reversals, weaker changes) of pairwise order against the default cell of the same env."""
    reversals: list[str] = []
    weaker: list[str] = []
    for a, b in itertools.combinations(cell.policies, 2):
        if a not in default.kpis or b not in default.kpis:
            continue
        s0, s1 = pair_sign(default, a, b, kpi), pair_sign(cell, a, b, kpi)
        if s0 == s1:
            continue
        x, y = POLICIES[a], POLICIES[b]
        before = f"{x}>{y}" if s0 > 0 else f"{y}>{x}" if s0 < 0 else f"{x}≈{y}"
        after = f"{x}>{y}" if s1 > 0 else f"{y}>{x}" if s1 < 0 else f"{x}≈{y}"
        (reversals if s0 * s1 < 0 else weaker).append(f"{before}→{after}")
    return reversals, weaker


def _cell_text(cell: Cell, default: Cell, kpi: str) -> str:
    reversals, weaker = changes(cell, default, kpi)
    if reversals:
        return "**yes**: " + ", ".join(reversals) + (f" (also {', '.join(weaker)})" if weaker else "")
    return "no" + (f" ({', '.join(weaker)})" if weaker else "")


def _mean_ci_text(values: np.ndarray, digits: int) -> str:
    mean, lo, hi = mean_ci(values.tolist())
    return f"{mean:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


DIGITS = {"inboxed_share_all": 3, "return": 1, "final_reputation": 3}


def report(rows: Sequence[dict]) -> str:
    """The markdown tables of docs/sensitivity.md."""
    cells = cells_from_rows(rows)
    envs_in = list(dict.fromkeys(c.env for c in cells))
    out: list[str] = []
    played = [p for p in POLICIES if any(p in c.kpis for c in cells)]
    legend = ", ".join(f"{POLICIES[p]} {p}" for p in played)
    sources = sorted({str(r["policy_source"]) for r in rows if r.get("policy") == "ppo" and r.get("policy_source")})
    if sources:
        legend += f" (P: {', '.join(sources)})"
    commits = sorted({str(r.get("commit", "")) for r in rows})
    out.append(f"Policies: {legend}. Commit {', '.join(commits)}. Rankings: best first by mean; '>' where the "
               "paired 95% CI of the difference between neighbours excludes 0, '≈' where it does not.")
    out.append(summary(cells, envs_in))
    for env in envs_in:
        env_cells = [c for c in cells if c.env == env]
        default = next(c for c in env_cells if c.param == DEFAULT)
        n = len(next(iter(default.kpis.values()))[HEADLINE[0]])
        out.append(f"\n### {env} ({n} seeds from {BENCHMARK_SEED_BASE:,})\n")
        out.append("Default: " + "; ".join(f"{k}: {ranking(default, k)}" for k in HEADLINE) + "\n")
        out.append("| policy | " + " | ".join(HEADLINE) + " |")
        out.append("|---" * (len(HEADLINE) + 1) + "|")
        for p in default.policies:
            out.append(f"| {p} | " + " | ".join(_mean_ci_text(default.kpis[p][k], DIGITS[k]) for k in HEADLINE)
                       + " |")
        out.append("\nDoes the ranking change? 'yes' lists reversals of pairs whose order was clear (CI apart) "
                   "in the default; brackets list pairs that became tied or became ordered.\n")
        out.append("| parameter | x | value used | " + " | ".join(HEADLINE) + " |")
        out.append("|---" * (len(HEADLINE) + 3) + "|")
        for c in env_cells:
            if c.param == DEFAULT:
                continue
            value = "—" if c.value in ("null", "") else _fmt_json(c.value)
            name = c.param + (" (constant)" if c.kind == "constant" else "")
            if not c.note.startswith("invalid"):
                value += f" ({c.note})" if c.note else ""
            if c.note.startswith("invalid"):
                texts = [c.note] + [""] * (len(HEADLINE) - 1)
            elif c.same_as(default):
                texts = ["no effect (episodes identical to the default)"] + [""] * (len(HEADLINE) - 1)
            else:
                texts = [_cell_text(c, default, k) for k in HEADLINE]
            out.append(f"| {name} | {c.factor:g} | {value} | " + " | ".join(texts) + " |")
        out.append(pair_stability(env_cells, default))
        out.append(rankings_table(env_cells))
    return "\n".join(out) + "\n"


KPI_SHORT = {"inboxed_share_all": "inbox", "return": "return", "final_reputation": "rep."}


def summary(cells: Sequence[Cell], envs_in: Sequence[str]) -> str:
    """One row per parameter: per env and factor, the reversals of clear pairwise orders, per KPI."""
    defaults = {c.env: c for c in cells if c.param == DEFAULT}
    by_key = {(c.env, c.param, c.factor): c for c in cells}
    params = list(dict.fromkeys(c.param for c in cells if c.param != DEFAULT))
    cols = [(e, f) for e in envs_in for f in FACTORS]
    lines = ["\n### Summary: does the ranking change?\n",
             "Per cell: 'no' when no pair whose order was clear in the default (paired 95% CI apart) reverses; "
             "else the reversals per KPI (inbox = inboxed_share_all, rep. = final reputation). '·' = not run.\n",
             "| parameter | " + " | ".join(f"{e.removeprefix('ipwarmup/')} x{f:g}" for e, f in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for param in params:
        texts = []
        for env, factor in cols:
            c = by_key.get((env, param, factor))
            if c is None:
                texts.append("·")
            elif c.note.startswith("invalid"):
                texts.append("invalid")
            elif c.same_as(defaults[env]):
                texts.append("no effect")
            else:
                parts = [f"{KPI_SHORT[k]}: {', '.join(rev)}" for k in HEADLINE
                         if (rev := changes(c, defaults[env], k)[0])]
                texts.append("**yes**: " + "; ".join(parts) if parts else "no")
            if c is not None and c.note.startswith("clipped"):
                texts[-1] += " (clipped)"
        kind = next(c.kind for c in cells if c.param == param)
        lines.append(f"| {param}{' (constant)' if kind == 'constant' else ''} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def _fmt_json(text: str) -> str:
    value = json.loads(text)
    return _fmt(tuple(value) if isinstance(value, list) else value)


CLAIM_PAIRS: tuple[tuple[str, str], ...] = (
    ("ses-standard", "no-warmup"),
    *(("ppo", p) for p in BASELINES),
    *(("oracle", p) for p in BASELINES if p != "oracle"),
    ("ses-managed", "ses-standard"), ("aimd", "ses-standard"), ("braze-automated", "ses-standard"),
    ("ses-managed", "aimd"), ("ses-managed", "braze-automated"), ("aimd", "braze-automated"),
    *((p, "no-warmup") for p in ("ses-managed", "aimd", "braze-automated")),
)


def pair_stability(env_cells: Sequence[Cell], default: Cell) -> str:
    """Per pair and KPI: the default's order and every perturbation under which it does not hold."""
    live = [c for c in env_cells if c.param != DEFAULT and c.kpis and not c.same_as(default)]
    lines = ["\nWhich pairwise conclusions hold under every perturbation (order in the default; the cells "
             "where it reverses, or becomes a tie):\n",
             "| pair | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for a, b in CLAIM_PAIRS:
        if a not in default.kpis or b not in default.kpis:
            continue
        texts = []
        for k in HEADLINE:
            s0 = pair_sign(default, a, b, k)
            rel = {1: f"{POLICIES[a]}>{POLICIES[b]}", -1: f"{POLICIES[b]}>{POLICIES[a]}", 0: "tie"}[s0]
            flips = [c.label for c in live if pair_sign(c, a, b, k) * s0 < 0 or (s0 == 0 and pair_sign(c, a, b, k))]
            ties = [c.label for c in live if s0 != 0 and pair_sign(c, a, b, k) == 0]
            text = rel + (": holds everywhere" if not flips and not ties and s0 else "")
            if flips:
                text += "; " + ("ordered under " if s0 == 0 else "**reversed** under ") + ", ".join(flips)
            if ties:
                text += "; tied under " + ", ".join(ties)
            texts.append(text)
        lines.append(f"| {a} vs {b} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def rankings_table(env_cells: Sequence[Cell]) -> str:
    """Every cell's ranking per KPI, and the mean ± CI of inboxed_share_all and return per policy."""
    lines = ["\nRankings per cell:\n", "| cell | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for c in env_cells:
        if c.kpis:
            lines.append(f"| {c.label} | " + " | ".join(ranking(c, k) for k in HEADLINE) + " |")
    for k in HEADLINE:
        lines += [f"\n<details><summary>{k}: mean ± 95% CI half-width per cell</summary>\n",
                  "| cell | " + " | ".join(env_cells[0].policies) + " |",
                  "|---" * (len(env_cells[0].policies) + 1) + "|"]
        for c in env_cells:
            if c.kpis:
                lines.append(f"| {c.label} | " + " | ".join(_mean_ci_text(c.kpis[p][k], DIGITS[k])
                                                             for p in env_cells[0].policies) + " |")
        lines.append("\n</details>")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="seeds per cell on the main env (at least 20)")
    parser.add_argument("--cross-seeds", type=int, default=0, help=f"seeds per cell on {CROSS_ENV} (0: skip)")
    parser.add_argument("--env", default=MAIN_ENV, help="the main env id")
    parser.add_argument("--no-fields", action="store_true", help="skip the Scenario fields (e.g. constants only)")
    parser.add_argument("--constants", action="store_true", help="also the ASSUMPTION constants of envs/dynamics.py")
    parser.add_argument("--only", nargs="+", metavar="PARAM", help="only these parameters (and the default)")
    parser.add_argument("--workers", type=int, default=1, choices=(1, 2), help="processes (the machine has 2 cores)")
    parser.add_argument("--csv", type=Path, help="write every episode's KPIs here (atomic)")
    parser.add_argument("--from-csv", type=Path, nargs="+", help="report the episodes of earlier --csv runs (one "
                        "or more files, e.g. the main env and the cross-check); play nothing")
    parser.add_argument("--list", action="store_true", help="print the parameters and their x0.5 / x2 values")
    parser.add_argument("--policy", help="a trained policy (run folder or policy card) to rank as 'ppo' (P)")
    parser.add_argument("--policies", nargs="+", choices=list(POLICIES), metavar="NAME",
                        help=f"play only these ({', '.join(POLICIES)}; default: every baseline, and ppo if --policy)")
    args = parser.parse_args(argv)
    names = args.policies or [*BASELINES, *(["ppo"] if args.policy else [])]
    if "ppo" in names and not args.policy:
        parser.error("--policies ppo needs --policy PATH")
    policies = {n: (args.policy if n == "ppo" else n) for n in names}
    if args.from_csv:
        print(report([row for path in args.from_csv for row in from_csv(path)]), end="")
        return
    env_ids = [args.env] + ([CROSS_ENV] if args.cross_seeds > 0 and CROSS_ENV != args.env else [])
    cells = plan(env_ids, not args.no_fields, args.constants)
    if args.only:
        cells = [(e, p) for e, p in cells if p.param in (DEFAULT, *args.only)]
        cells = [(e, p) for e, p in cells if e in env_ids or any(q.param != DEFAULT for f, q in cells if f == e)]
    if args.list:
        for env_id, p in cells:
            value = "—" if p.value is None else _fmt(p.value)
            print(f"{env_id:26} {p.kind:8} {p.param:24} x{p.factor:<4g} {value}  {p.note}")
        return
    seeds = {e: seed_range(BENCHMARK_SEED_BASE, args.cross_seeds if e == CROSS_ENV and e != args.env else args.seeds)
             for e, _ in cells}
    started = time.perf_counter()
    rows = run_all(cells, seeds, args.workers, policies)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.csv, to_csv(rows))
    print(report(rows), end="")
    print(f"\n(wall time {time.perf_counter() - started:.0f} s, {args.workers} worker(s))")


if __name__ == "__main__":
    main()
