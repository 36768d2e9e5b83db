"""Export a trained run for production schedulers: ONNX graph, policy card, and a day-by-day schedule.

``ipwarmup export RUN_DIR --out DIR [--scenario ID] [--days N] [--seed S] [--last]`` writes

* ``DIR/policy.onnx``: input ``observations`` float32 ``[batch, frame_stack, n_features]``, the raw observations of
  the last ``frame_stack`` days, oldest first (NaN = unknown: the graph substitutes the training mean, and
  an all-NaN frame is the zero padding seen at an episode start). The graph normalizes each frame with
  the run's frozen VecNormalize statistics, runs the actor network and outputs ``action`` ``[batch, 5]``
  (deterministic, clipped to [-1, 1]) and ``share`` ``[batch, 5]`` = ``10 ** (-4 * ((1 - action) / 2) ** 2)``.
  Built node by node from the network's weights, so no PyTorch exporter is involved.
* ``DIR/policy.json``: the policy card (providers, features with units and formulas, the audience tiers a
  scheduler passes once per warm-up, normalization, action decoding, training scenario, config hash, KPIs,
  the ONNX file's sha256).
* ``DIR/schedule.csv`` and ``DIR/schedule.json``: per-day, per-provider caps and warm-up percentages from
  one rollout of the exported graph in a named scenario, for schedulers that only take a table.

``DIR`` is created new, or it is an earlier export (its ``.ipwarmup-output.json`` marker lists the files export
wrote there): then only those files are replaced, the card last, and nothing else in the folder is touched.
Everything is written into a staging folder first, so a failed export leaves the previous one intact and no
empty folder behind; ``--out`` and the other arguments are checked before any work. Nothing is pickled.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.ppo import METRICS_FILE, RunArtifacts, RunError, read_metrics
from agents.run_config import is_recurrent, jump_guard_of
from core.actions import DECODING_FORMULA, LOG10_SHARE_SCALE, MIN_SHARE, action_to_share
from core.features import AUDIENCE_FEATURES, FEATURES_BY_NAME, feature_names
from core.guard import MARGIN, SLACK_EMAILS, JumpGuard
from core.providers import FEEDBACK_LOOP, PROVIDERS
from core.util import (
    EPISODE_SEED_LIMIT,
    OneLineParser,
    OutputError,
    check_output_folder,
    config_hash,
    fail,
    is_whole_number,
    output_folder,
    shorten,
    strict_json,
)
from deploy import runtime as rt

OPSET = 17
SCHEDULE_CSV = "schedule.csv"
SCHEDULE_JSON = "schedule.json"
OUTPUT_FILES = (rt.ONNX_FILE, SCHEDULE_CSV, SCHEDULE_JSON, rt.CARD_FILE)
TOOL = "ipwarmup export"


class ExportError(ValueError):
    """The run cannot be exported as asked; the message says why."""


# --------------------------------------------------------------------------------------------- ONNX graph


def _activation_nodes(module: Any, x: str, out: str, helper: Any) -> list[Any]:
    import torch.nn as nn

    if isinstance(module, nn.Tanh):
        return [helper.make_node("Tanh", [x], [out])]
    if isinstance(module, nn.ReLU):
        return [helper.make_node("Relu", [x], [out])]
    if isinstance(module, nn.ELU):
        return [helper.make_node("Elu", [x], [out], alpha=float(module.alpha))]
    if isinstance(module, nn.LeakyReLU):
        return [helper.make_node("LeakyRelu", [x], [out], alpha=float(module.negative_slope))]
    if isinstance(module, nn.Sigmoid):
        return [helper.make_node("Sigmoid", [x], [out])]
    if isinstance(module, nn.Identity):
        return [helper.make_node("Identity", [x], [out])]
    raise ExportError(f"cannot export layer {type(module).__name__}; supported: Linear, Tanh, ReLU, ELU, "
                      "LeakyReLU, Sigmoid, Identity")


def build_onnx(artifacts: RunArtifacts, providers: Sequence[str]) -> Any:
    """The deterministic actor of an SB3 PPO ``MlpPolicy`` with normalization folded in, as an ONNX model."""
    import onnx
    import torch.nn as nn
    from onnx import TensorProto, helper, numpy_helper
    from stable_baselines3.common.distributions import DiagGaussianDistribution, StateDependentNoiseDistribution
    from stable_baselines3.common.torch_layers import FlattenExtractor

    policy = artifacts.model.policy
    if not isinstance(policy.pi_features_extractor, FlattenExtractor):
        raise ExportError("only MlpPolicy (FlattenExtractor) runs can be exported")
    # gSDE's deterministic action is the same mean as the Gaussian's: its noise only shapes exploration.
    gaussian = (DiagGaussianDistribution, StateDependentNoiseDistribution)
    if not isinstance(policy.action_dist, gaussian) or policy.squash_output:
        raise ExportError("only Gaussian (or gSDE), unsquashed action distributions can be exported")
    k = artifacts.frame_stack
    memory = is_recurrent(artifacts.config)  # then frame_stack is 1: validate_config refuses more for an LSTM
    names = feature_names(providers)
    size = len(names)
    if policy.observation_space.shape != (k * size,):
        raise ExportError(f"the model expects observations of shape {policy.observation_space.shape}, "
                          f"not {k} frames of {size} features")
    norm = artifacts.normalization
    std = np.sqrt(np.asarray(norm.var, np.float64) + norm.epsilon)
    clip = float(norm.clip) if math.isfinite(norm.clip) else 3.0e38

    inits = [
        numpy_helper.from_array(np.asarray(norm.mean, np.float32), "obs_mean"),
        numpy_helper.from_array(std.astype(np.float32), "obs_std"),
        numpy_helper.from_array(np.array(-clip, np.float32), "obs_clip_low"),
        numpy_helper.from_array(np.array(clip, np.float32), "obs_clip_high"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(-1.0, np.float32), "action_low"),
        numpy_helper.from_array(np.array(1.0, np.float32), "action_high"),
        numpy_helper.from_array(np.array(10.0, np.float32), "ten"),
        numpy_helper.from_array(np.array(LOG10_SHARE_SCALE, np.float32), "minus_quarter_decades"),
    ]
    nodes = [
        helper.make_node("IsNaN", [rt.INPUT_NAME], ["missing"]),
        helper.make_node("Sub", [rt.INPUT_NAME, "obs_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "obs_std"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "obs_clip_low", "obs_clip_high"], ["clipped"]),
        helper.make_node("Where", ["missing", "zero", "clipped"], ["normalized"]),
    ]
    if memory:
        lstm_inits, lstm_nodes = _lstm_nodes(policy.lstm_actor, "normalized", "h0")
        inits += lstm_inits
        nodes += lstm_nodes
    else:
        nodes.append(helper.make_node("Flatten", ["normalized"], ["h0"], axis=1))
    layers = list(policy.mlp_extractor.policy_net) + [policy.action_net]
    x = "h0"
    for i, layer in enumerate(layers):
        out = f"h{i + 1}" if i < len(layers) - 1 else "raw_action"
        if isinstance(layer, nn.Linear):
            inits.append(numpy_helper.from_array(layer.weight.detach().cpu().numpy().astype(np.float32), f"W{i}"))
            inits.append(numpy_helper.from_array(layer.bias.detach().cpu().numpy().astype(np.float32), f"b{i}"))
            nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [out], transB=1))
        else:
            nodes.extend(_activation_nodes(layer, x, out, helper))
        x = out
    nodes += [
        helper.make_node("Clip", ["raw_action", "action_low", "action_high"], [rt.ACTION_OUTPUT]),
        helper.make_node("Sub", [rt.ACTION_OUTPUT, "action_high"], ["a_minus_1"]),
        helper.make_node("Mul", ["a_minus_1", "a_minus_1"], ["a_minus_1_squared"]),
        helper.make_node("Mul", ["a_minus_1_squared", "minus_quarter_decades"], ["log10_share"]),
        helper.make_node("Pow", ["ten", "log10_share"], [rt.SHARE_OUTPUT]),
    ]
    n_actions = len(providers)
    graph = helper.make_graph(
        nodes, "ipwarmup_policy",
        [helper.make_tensor_value_info(rt.INPUT_NAME, TensorProto.FLOAT, ["batch", "days" if memory else k, size])],
        [helper.make_tensor_value_info(rt.ACTION_OUTPUT, TensorProto.FLOAT, ["batch", n_actions]),
         helper.make_tensor_value_info(rt.SHARE_OUTPUT, TensorProto.FLOAT, ["batch", n_actions])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ipwarmup")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    metadata = {
        "schema_version": str(rt.RECURRENT_SCHEMA_VERSION if memory else rt.SCHEMA_VERSION),
        "providers": json.dumps(list(providers)),
        "frame_stack": str(k),
        "features": json.dumps(names),
    }
    if memory:
        metadata["memory"] = rt.MEMORY_LSTM
    for key, value in metadata.items():
        model.metadata_props.add(key=rt.METADATA_PREFIX + key, value=value)
    onnx.checker.check_model(model)
    return model


def _lstm_nodes(lstm: Any, x: str, out: str) -> tuple[list[Any], list[Any]]:
    """ONNX LSTM nodes for a torch ``nn.LSTM``: ``x`` ``[batch, days, features]`` in, ``out`` ``[batch, hidden]``,
    the last day's hidden state of the last layer, from zero states on day 0 (a warm-up's start)."""
    from onnx import helper, numpy_helper

    hidden = int(lstm.hidden_size)
    # torch stacks the gates as input, forget, cell, output; ONNX as input, output, forget, cell.
    order = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in (0, 3, 1, 2)])
    inits = [numpy_helper.from_array(np.array([1], np.int64), "axis_1"),
             numpy_helper.from_array(np.array([0], np.int64), "axis_0")]
    nodes = [helper.make_node("Transpose", [x], ["days_first"], perm=[1, 0, 2])]
    sequence = "days_first"
    for layer in range(int(lstm.num_layers)):
        weight = {name: getattr(lstm, f"{name}_l{layer}").detach().cpu().numpy()[order].astype(np.float32)
                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        inits += [numpy_helper.from_array(weight["weight_ih"][None], f"lstm{layer}_W"),
                  numpy_helper.from_array(weight["weight_hh"][None], f"lstm{layer}_R"),
                  numpy_helper.from_array(np.concatenate([weight["bias_ih"], weight["bias_hh"]])[None],
                                          f"lstm{layer}_B")]
        nodes += [helper.make_node("LSTM", [sequence, f"lstm{layer}_W", f"lstm{layer}_R", f"lstm{layer}_B"],
                                   [f"lstm{layer}_Y", f"lstm{layer}_Y_h"], hidden_size=hidden),
                  helper.make_node("Squeeze", [f"lstm{layer}_Y", "axis_1"], [f"lstm{layer}_out"])]
        sequence = f"lstm{layer}_out"
    nodes.append(helper.make_node("Squeeze", [f"lstm{int(lstm.num_layers) - 1}_Y_h", "axis_0"], [out]))
    return inits, nodes


# --------------------------------------------------------------------------------------------- policy card


def _training_kpis(run_dir: Path) -> dict[str, Any] | None:
    """The last periodic evaluation the training run recorded (metrics.csv), if any."""
    rows = read_metrics(run_dir / METRICS_FILE)
    return dict(rows[-1]) if rows else None


def policy_card(artifacts: RunArtifacts, onnx_sha256: str, providers: Sequence[str], fbl: Sequence[bool],
                schedule_kpis: dict[str, Any], schedule_info: dict[str, Any]) -> dict[str, Any]:
    """The card that documents the ONNX graph's interface for a scheduler and lets the runtime check it."""
    norm = artifacts.normalization
    names = feature_names(providers)
    features = []
    for i, name in enumerate(names):
        short = name.split(".", 1)[-1]
        definition = FEATURES_BY_NAME[short]
        features.append({
            "index": i,
            "name": name,
            "provider": name.split(".", 1)[0] if "." in name else None,
            "unit": definition.unit,
            "description": definition.description,
            "computed_as": definition.computed_as,
            "mean": float(norm.mean[i]),
            "var": float(norm.var[i]),
        })
    clip = float(norm.clip)
    memory = is_recurrent(artifacts.config)
    frames = (f"{rt.INPUT_NAME}: float32 [batch, days, {len(names)}], raw observations of every day of the warm-up "
              "so far, day 0 (the start, nothing sent) first; the graph's LSTM reads them all on each call and "
              "keeps no state" if memory else
              f"{rt.INPUT_NAME}: float32 [batch, {artifacts.frame_stack}, {len(names)}], raw observations "
              "of the last frame_stack days, oldest first")
    card: dict[str, Any] = {
        "schema_version": rt.RECURRENT_SCHEMA_VERSION if memory else rt.SCHEMA_VERSION,
        "kind": "ipwarmup policy card",
        "providers": list(providers),
        "feedback_loop": {p: bool(f) for p, f in zip(providers, fbl, strict=True)},
        "frame_stack": artifacts.frame_stack,
        "observation": {
            "size": len(names),
            "input": f"{frames}; NaN = unknown (replaced by the training mean)"
                     + ("" if memory else "; an all-NaN frame = no earlier day (episode start)"),
            "statistics": {"required": list(rt.REQUIRED_COLUMNS), "optional": list(rt.OPTIONAL_COLUMNS)},
            "audience": {
                "tiers": list(rt.AUDIENCE_TIERS),
                "features": list(AUDIENCE_FEATURES),
                "input": "the mailing list's composition by last open (opened_30d: within 30 days, opened_60d: "
                         "31-60, opened_90d: 61-90, older: more than 90 days or never), one fraction per tier "
                         "from the ESP, summing to 1; the same in every frame of a warm-up; NaN when unknown",
            },
            "features": features,
        },
        "normalization": {
            "formula": "clip((x - mean) / sqrt(var + epsilon), -clip, clip); NaN -> 0",
            "clip": clip if math.isfinite(clip) else None,
            "epsilon": float(norm.epsilon),
            "folded_into_onnx": True,
        },
        "action": {
            "outputs": {rt.ACTION_OUTPUT: "float32 [batch, providers], deterministic, clipped to [-1, 1]",
                        rt.SHARE_OUTPUT: "float32 [batch, providers], share of the provider's mail on the new IP"},
            "decoding": f"{DECODING_FORMULA}; "
                        "warmup_percentage = 100 * share; cap = floor(share * (demand + backlog)), share decoded from "
                        "action in float64 (the graph's float32 share can floor one email lower)",
            "share_range": [MIN_SHARE, 1.0],
        },
        "training": {
            "env_id": artifacts.env_id,
            "env_kwargs": artifacts.config.get("env_kwargs") or {},
            "seed": artifacts.config.get("seed"),
            "n_timesteps": artifacts.config.get("n_timesteps"),
            "timesteps_trained": int(getattr(artifacts.model, "num_timesteps", 0)),
            "config_hash": config_hash(artifacts.config),
            "run_dir": str(artifacts.run_dir),
        },
        "kpis": {"schedule_rollout": schedule_kpis, "training_evaluation": _training_kpis(artifacts.run_dir)},
        "schedule": schedule_info,
        "onnx": {"file": rt.ONNX_FILE, "sha256": onnx_sha256, "opset": OPSET},
        "jump_guard": _guard_entry(jump_guard_of(artifacts.config), providers),
    }
    if memory:
        card["memory"] = rt.MEMORY_LSTM
    return card


def _guard_entry(guard: JumpGuard | None, providers: Sequence[str]) -> dict[str, Any] | None:
    """The card's description of the jump guard the runtime applies after the graph (None: trained without)."""
    if guard is None:
        return None
    return {
        "allowance": float(guard.allowance),
        "base": {p: float(b) for p, b in zip(providers, guard.base, strict=True)},
        "rule": f"cap = floor(max(allowance * (1 - {MARGIN:g}) * max(last, base) - {SLACK_EMAILS:g}, 0)) first "
                "attempts per provider, last = the provider's first attempts on the last day of the statistics "
                "(0 before the first day); a share above cap / (demand + backlog) is lowered to it",
    }


# --------------------------------------------------------------------------------------------- schedule


@dataclass
class Schedule:
    """One rollout: per day and provider, the share and the emails the policy put on the new IP."""

    scenario: str
    env_kwargs: dict[str, Any]
    seed: int
    providers: tuple[str, ...]
    share: np.ndarray  # [days, P]
    caps: np.ndarray  # [days, P] int
    demand: np.ndarray  # [days, P] int, mail available to the new IP (fresh demand + backlog)
    kpis: dict[str, Any]
    first_day_allowance: np.ndarray  # [P] int, day-1 emails the model treats as no jump (median cold acceptance)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for d in range(self.caps.shape[0]):
            row: dict[str, Any] = {"day": d + 1}
            for i, p in enumerate(self.providers):
                row[f"{p}_cap"] = int(self.caps[d, i])
            row["total_cap"] = int(self.caps[d].sum())
            for i, p in enumerate(self.providers):
                row[f"{p}_warmup_percentage"] = round(100.0 * float(self.share[d, i]), 4)
            out.append(row)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": rt.SCHEMA_VERSION,
            "scenario": self.scenario,
            "env_kwargs": self.env_kwargs,
            "seed": self.seed,
            "providers": list(self.providers),
            "columns": {"cap": "emails the new IP carries that day", "warmup_percentage": "100 * share of the "
                        "provider's available mail on the new IP"},
            "kpis": self.kpis,
            "first_day_allowance": {p: int(v) for p, v in zip(self.providers, self.first_day_allowance, strict=True)},
            "days": [{"day": d + 1,
                      "caps": {p: int(self.caps[d, i]) for i, p in enumerate(self.providers)},
                      "warmup_percentage": {p: round(100.0 * float(self.share[d, i]), 4)
                                            for i, p in enumerate(self.providers)},
                      "available": {p: int(self.demand[d, i]) for i, p in enumerate(self.providers)}}
                     for d in range(self.caps.shape[0])],
        }


def rollout_schedule(policy: Any, scenario: str, env_kwargs: dict[str, Any], seed: int) -> Schedule:
    """Play ``policy`` for one episode (``evaluation.episodes.play_episode``) and record what it sent each day."""
    import gymnasium

    from envs.dynamics import first_day_allowance
    from envs.warmup_env import WarmupEnv
    from evaluation.episodes import play_episode

    env = gymnasium.make(scenario, **env_kwargs)
    try:
        simulator_env = env.unwrapped
        assert isinstance(simulator_env, WarmupEnv), f"{scenario} is not an ipwarmup env"
        allowance = first_day_allowance(simulator_env.scenario)
        episode = play_episode(policy, env, seed)
    finally:
        env.close()
    infos = episode.infos
    backlog_before = [episode.reset_info["backlog"]] + [i["backlog"] for i in infos[:-1]]
    available = np.array([i["demand_by_provider"] + b for i, b in zip(infos, backlog_before, strict=True)])
    kpis = episode.kpis()
    return Schedule(scenario, dict(env_kwargs), seed, PROVIDERS, action_to_share(np.array(episode.actions)),
                    np.array([i["first_attempts"] for i in infos], np.int64), available.astype(np.int64), kpis,
                    allowance.astype(np.int64))


def _schedule_csv(schedule: Schedule) -> bytes:
    rows = schedule.rows()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["day"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _json_bytes(value: Any) -> bytes:
    """Strict JSON (NaN, e.g. 'never reached full volume', as null), so any language's parser reads the files."""
    return (json.dumps(strict_json(value), indent=1, allow_nan=False) + "\n").encode()


@dataclass
class ExportResult:
    out: Path
    card: dict[str, Any]
    schedule: Schedule


def export_run(run_dir: str | Path, out: str | Path, scenario: str | None = None, days: int | None = None,
               seed: int = 0, best: bool = True) -> ExportResult:
    """Export ``run_dir`` into ``out``; the schedule comes from the exported graph itself, not the SB3 model.

    ``out`` is checked first (new, empty, or an earlier export), then the run folder and the scenario;
    only then is anything built.
    """
    from agents.ppo import load_run, read_config
    from envs.scenario import ScenarioError, get_scenario

    out = Path(out)
    try:
        check_output_folder(out, TOOL, OUTPUT_FILES)
    except OutputError as exc:
        raise ExportError(str(exc)) from None
    if days is not None and not is_whole_number(days, 1):
        raise ExportError(f"--days must be a whole number of days >= 1, got {shorten(days)}")
    if not is_whole_number(seed, 0, EPISODE_SEED_LIMIT - 1):
        raise ExportError(f"--seed must be a whole number in [0, 2**32), got {shorten(seed)}")
    try:
        config = read_config(Path(run_dir))
        env_id = scenario or str(config["env_id"])
        env_kwargs = dict(config.get("env_kwargs") or {}) if scenario is None else {}
        if days is not None:
            env_kwargs["horizon"] = int(days)
        try:
            get_scenario(env_id, **env_kwargs)
        except ScenarioError as exc:
            raise ExportError(str(exc)) from None
        artifacts = load_run(run_dir, best=best)
        _training_kpis(artifacts.run_dir)  # a malformed metrics.csv is named now, before the work
    except RunError as exc:
        raise ExportError(str(exc)) from None
    model = build_onnx(artifacts, PROVIDERS)
    onnx_bytes = model.SerializeToString()
    sha = hashlib.sha256(onnx_bytes).hexdigest()

    schedule_info = {"scenario": env_id, "env_kwargs": env_kwargs, "seed": seed, "files": [SCHEDULE_CSV, SCHEDULE_JSON]}
    card = policy_card(artifacts, sha, PROVIDERS, list(FEEDBACK_LOOP), {}, schedule_info)
    # Roll the schedule out with the graph as written, through the same runtime a scheduler uses.
    session = rt._session(onnx_bytes, out / rt.ONNX_FILE)
    schedule = rollout_schedule(rt.RuntimePolicy(rt.Runtime(card, session, out / rt.CARD_FILE)), env_id, env_kwargs,
                                seed)
    card["kpis"]["schedule_rollout"] = schedule.kpis
    try:
        with output_folder(out, TOOL, last=[rt.CARD_FILE]) as staging:
            (staging / rt.ONNX_FILE).write_bytes(onnx_bytes)
            (staging / SCHEDULE_CSV).write_bytes(_schedule_csv(schedule))
            (staging / SCHEDULE_JSON).write_bytes(_json_bytes(schedule.to_json()))
            # The card goes last: it vouches for the other files.
            (staging / rt.CARD_FILE).write_bytes(_json_bytes(card))
    except OutputError as exc:
        raise ExportError(str(exc)) from None
    return ExportResult(out, card, schedule)


def main(argv: Sequence[str] | None = None) -> None:
    parser = OneLineParser(prog="ipwarmup export",
                           description="Export a trained run to ONNX, a policy card and a schedule.")
    parser.add_argument("run_dir", type=Path, help="training run folder (config.yaml, model.zip)")
    parser.add_argument("--out", type=Path, required=True,
                        help="new folder (or an earlier export) for policy.onnx, policy.json, schedule.*")
    parser.add_argument("--scenario", help="env id for the schedule rollout (default: the training env and kwargs)")
    parser.add_argument("--days", type=int, help="schedule length in days (default: the scenario's horizon)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the schedule rollout")
    parser.add_argument("--last", action="store_true", help="export model.zip even if best_model.zip exists")
    args = parser.parse_args(argv)
    try:
        result = export_run(args.run_dir, args.out, args.scenario, args.days, args.seed, best=not args.last)
    except (ExportError, rt.CardError) as exc:
        fail("ipwarmup export", exc)
    k = result.schedule.kpis
    day1 = int(result.schedule.caps[0].sum()) if len(result.schedule.caps) else 0
    print(f"wrote {result.out / rt.ONNX_FILE}, {rt.CARD_FILE}, {SCHEDULE_CSV}, {SCHEDULE_JSON}")
    safe = int(np.minimum(result.schedule.first_day_allowance, result.schedule.demand[0]).sum()) if day1 else 0
    print(f"schedule: {result.schedule.scenario}, {int(k['length'])} days, seed {result.schedule.seed}: day 1 "
          f"{day1:,} emails on the new IP (no jump at median cold acceptance up to {safe:,}); days with a jump the "
          f"model punishes: {int(k['spike_days'])}; inboxed share {k['inboxed_share']:.3f}, complaint rate "
          f"{k['complaint_rate']:.4%}, paused {bool(k['paused'])}")
    guard = rt.guard_of_card(result.card, result.out / rt.CARD_FILE)
    print("jump guard: none (trained without one)" if guard is None else
          f"jump guard: no provider's first attempts above {guard.allowance:g} x max(its last day, its low cold "
          f"acceptance); day 1 at most {int(guard.caps(np.zeros((1, guard.base.size))).sum()):,} emails")


if __name__ == "__main__":
    main()
