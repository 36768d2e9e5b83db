"""A trained PPO run as a policy: the run folder's layout, its checkpoint format, loading, and SB3's ``predict``.

A run folder holds ``config.yaml`` (the resolved configuration), ``model.zip`` (the final checkpoint),
``checkpoints/model.zip`` (the latest periodic or interrupt checkpoint, what ``--resume`` continues from),
``best_model.zip`` (the best periodic evaluation), ``metrics.csv``, ``best.json``, ``command.txt`` and
``tb/``. The policy sees observations as in training: each raw observation normalized with the frozen
statistics (clipped), then the last ``frame_stack`` of them concatenated oldest first, zero-filled after an
episode start, exactly as ``VecNormalize`` wrapped by ``VecFrameStack`` feed it.

Checkpoint format (``ipwarmup-checkpoint`` version 1, docs/security.md): a zip archive, stored uncompressed,
holding only data, never pickles:

* ``manifest.json``: format and version, ``num_timesteps``, ``n_updates``, the observation size, frame stack
  and action count, the policy and ``policy_kwargs`` the weights belong to, free-form ``metadata`` (the
  evaluation return of a best model), the optimizer's hyperparameters, and for every other member its size
  and sha256, for every tensor its dtype and shape;
* ``normalization.json``: the VecNormalize statistics (observation mean, variance and count; return
  statistics; clip bounds; epsilon), or absent without normalization;
* ``tensors/policy/<name>.bin`` and ``tensors/optimizer/state/<i>/<key>.bin``: raw little-endian arrays.

Model, normalization and metadata are one file written under a unique temporary name, fsynced and renamed,
so a kill at any moment leaves either the previous checkpoint or the new one, never a model paired with
other statistics. Loading rebuilds the network from ``config.yaml`` and fills in the weights after checking
every member's size, sha256, dtype and shape; nothing in the file can run code. A run folder written by an
older ipwarmup (stable-baselines3's pickled ``model.zip`` and ``vecnormalize.pkl``) is refused in one line
that says how to convert it (``python train.py --convert-run RUN_DIR --trust``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.run_config import actor_critic_widths, is_recurrent, jump_guard_of
from core.features import OBS_SIZE
from core.guard import GuardedSends
from core.providers import PROVIDERS
from core.util import (
    atomic_write_bytes,
    config_hash,
    is_finite_number,
    is_whole_number,
    load_json,
    read_regular_file,
    safe_yaml_load,
    shorten,
)

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.zip"
BEST_MODEL_FILE = "best_model.zip"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"
LEGACY_VECNORM_FILE = "vecnormalize.pkl"
LEGACY_BEST_VECNORM_FILE = "best_vecnormalize.pkl"
VECNORM_FILE = LEGACY_VECNORM_FILE  # the old names, for code that imported them
BEST_VECNORM_FILE = LEGACY_BEST_VECNORM_FILE

CHECKPOINT_FORMAT = "ipwarmup-checkpoint"
CHECKPOINT_VERSION = 1
MANIFEST = "manifest.json"
NORMALIZATION = "normalization.json"
TENSOR_DTYPES = ("<f4", "<f8", "<i8")
"""Little-endian float32, float64 and int64: the only array types a checkpoint may hold."""
MAX_CONFIG_BYTES = 1 << 20
MAX_CHECKPOINT_BYTES = 1 << 30
"""A checkpoint larger than 1 GiB is refused before it is read (the default network's is about 200 KB)."""
MAX_MANIFEST_BYTES = 8 << 20
MAX_MEMBERS = 10_000
MAX_METRICS_BYTES = 64 << 20


class RunError(ValueError):
    """A run folder is missing, unreadable or inconsistent; the message names the file."""


class LegacyRunError(RunError):
    """The run folder was written by an older ipwarmup in stable-baselines3's pickle format."""


def convert_hint(run_dir: Path) -> str:
    return (f"if you trained this run yourself, convert it once with: python train.py --convert-run {run_dir} "
            "--trust (it unpickles the old files, so only for folders you trust; see docs/security.md)")


@dataclass
class ObsNormalization:
    """Frozen VecNormalize observation statistics: ``clip((obs - mean) / sqrt(var + eps), -clip, clip)``."""

    mean: np.ndarray
    var: np.ndarray
    clip: float
    epsilon: float

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip, self.clip).astype(np.float32)

    @staticmethod
    def identity(size: int) -> ObsNormalization:
        return ObsNormalization(np.zeros(size), np.ones(size), np.inf, 0.0)


@dataclass
class RunArtifacts:
    """Everything needed to act like the trained policy (and to export it)."""

    model: Any  # stable_baselines3.PPO
    normalization: ObsNormalization
    frame_stack: int
    config: dict[str, Any]
    run_dir: Path

    @property
    def env_id(self) -> str:
        return str(self.config["env_id"])


# --------------------------------------------------------------------------------------------- config, metrics


def read_config(run_dir: Path) -> dict[str, Any]:
    """``RUN_DIR/config.yaml`` as plain data (no YAML aliases, at most 1 MiB), with its ``env_id``."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise RunError(f"run folder {run_dir} does not exist" if not run_dir.exists() else
                       f"{run_dir} is not a folder (a training run is a folder holding config.yaml)")
    if not path.exists():
        raise RunError(f"{path} is missing: not a training run folder")
    try:
        config = safe_yaml_load(read_regular_file(path, MAX_CONFIG_BYTES, "run configuration").decode(), str(path))
    except UnicodeDecodeError:
        raise RunError(f"{path} is not UTF-8 text") from None
    except ValueError as exc:
        raise RunError(str(exc)) from None
    if not isinstance(config, dict) or not isinstance(config.get("env_id"), str):
        raise RunError(f"{path} has no env_id: not a training run folder")
    return config


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The rows of ``metrics.csv`` (periodic evaluations), as numbers; [] if the file does not exist.

    A torn last line (cut short by a kill: no line end) is ignored; any other malformed row is an error
    naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = read_regular_file(path, MAX_METRICS_BYTES, "metrics file").decode()
    except UnicodeDecodeError:
        raise RunError(f"{path} is not UTF-8 text") from None
    except ValueError as exc:
        raise RunError(str(exc)) from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines = lines[:-1]  # torn: the write was cut short
    try:
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            return []
        rows = []
        for cells in reader:
            if not cells:
                continue
            where = f"{path} line {reader.line_num}"
            if len(cells) != len(header):
                raise RunError(f"{where}: {len(cells)} fields, the header has {len(header)}")
            row = {}
            for name, cell in zip(header, cells, strict=True):
                try:
                    row[name] = float(cell)
                except ValueError:
                    raise RunError(f"{where}: {name} {shorten(cell)} is not a number") from None
            rows.append(row)
        return rows
    except csv.Error as exc:
        raise RunError(f"{path}: not a readable CSV ({exc})") from None


# --------------------------------------------------------------------------------------------- checkpoint format


@dataclass
class Checkpoint:
    """A verified checkpoint: its manifest, its arrays by name, and its normalization statistics (or None)."""

    path: Path
    manifest: dict[str, Any]
    tensors: dict[str, np.ndarray]
    normalization: dict[str, Any] | None

    @property
    def num_timesteps(self) -> int:
        return int(self.manifest["num_timesteps"])

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.manifest.get("metadata") or {})


def _vecnormalize_json(vecnorm: Any) -> dict[str, Any]:
    return {
        "norm_obs": bool(vecnorm.norm_obs),
        "norm_reward": bool(vecnorm.norm_reward),
        "clip_obs": float(vecnorm.clip_obs),
        "clip_reward": float(vecnorm.clip_reward),
        "gamma": float(vecnorm.gamma),
        "epsilon": float(vecnorm.epsilon),
        "obs": {"mean": np.asarray(vecnorm.obs_rms.mean, np.float64).tolist(),
                "var": np.asarray(vecnorm.obs_rms.var, np.float64).tolist(),
                "count": float(vecnorm.obs_rms.count)},
        "return": {"mean": float(np.asarray(vecnorm.ret_rms.mean)), "var": float(np.asarray(vecnorm.ret_rms.var)),
                   "count": float(vecnorm.ret_rms.count)},
    }


def _plain(value: Any) -> Any:
    """An optimizer hyperparameter as JSON (tuples as lists); anything else is a bug, not silently dropped."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    raise TypeError(f"cannot store optimizer value {value!r} in a checkpoint")


def checkpoint_bytes(model: Any, vecnorm: Any, config: dict[str, Any], metadata: dict[str, Any] | None = None) -> bytes:
    """The checkpoint of ``model`` (an SB3 PPO) and ``vecnorm`` (its VecNormalize, or None) as zip bytes."""
    import torch

    tensors: dict[str, np.ndarray] = {f"policy/{k}": v.detach().cpu().numpy()
                                      for k, v in model.policy.state_dict().items()}
    opt = model.policy.optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/state/{pid}/{key}"] = value.detach().cpu().numpy()
            else:
                scalars.setdefault(str(pid), {})[key] = _plain(value)
    members: dict[str, bytes] = {}
    described: dict[str, dict[str, Any]] = {}
    for name, array in tensors.items():
        array = np.array(array, order="C")  # (np.ascontiguousarray would turn a 0-d step count into shape (1,))
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        code = np.dtype(dtype).str
        if code not in TENSOR_DTYPES:
            array, code = array.astype("<f8"), "<f8"
        member = f"tensors/{name}.bin"
        members[member] = array.astype(code).tobytes()
        described[name] = {"file": member, "dtype": code, "shape": list(array.shape)}
    if vecnorm is not None:
        members[NORMALIZATION] = (json.dumps(_vecnormalize_json(vecnorm), indent=1) + "\n").encode()
    frames = int(config.get("frame_stack", 1))
    manifest = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "note": "ipwarmup PPO checkpoint: data only (JSON and raw little-endian arrays), no pickles",
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(getattr(model, "_n_updates", 0)),
        "observation_size": int(np.prod(model.observation_space.shape)),
        "frame_stack": frames,
        "n_actions": int(np.prod(model.action_space.shape)),
        "policy": str(config.get("policy", "MlpPolicy")),
        "policy_kwargs": config.get("policy_kwargs") or {},
        "config_hash": config_hash(config),
        "metadata": metadata or {},
        "normalization": NORMALIZATION if vecnorm is not None else None,
        "optimizer": {"param_groups": [{k: _plain(v) for k, v in g.items()} for g in opt["param_groups"]],
                      "scalars": scalars},
        "tensors": described,
        "files": {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in members.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in [(MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode()), *members.items()]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # same content, same bytes
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)
    return buffer.getvalue()


def write_checkpoint(path: Path, model: Any, vecnorm: Any, config: dict[str, Any],
                     metadata: dict[str, Any] | None = None) -> None:
    """Write a checkpoint durably as one unit: unique temporary name, fsync, rename, fsync of the folder."""
    data = checkpoint_bytes(model, vecnorm, config, metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _require(condition: bool, path: Path, problem: str) -> None:
    if not condition:
        raise RunError(f"{path} is not a valid checkpoint: {problem}")


def is_legacy_model(path: Path) -> bool:
    """True for stable-baselines3's own model.zip (pickled ``data`` and torch ``.pth`` members)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return MANIFEST not in names and "data" in names and any(n.endswith(".pth") for n in names)


def read_checkpoint(path: Path) -> Checkpoint:
    """Read and verify a checkpoint; any problem (truncation, a foreign or crafted file) is a one-line RunError."""
    path = Path(path)
    try:
        data = read_regular_file(path, MAX_CHECKPOINT_BYTES, "checkpoint")
    except ValueError as exc:
        raise RunError(str(exc)) from None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise RunError(f"{path} is not a readable checkpoint (truncated, or not a zip archive)") from None
    with archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        _require(len(names) <= MAX_MEMBERS, path, f"{len(names):,} members")
        _require(len(set(names)) == len(names), path, "a member name appears twice")
        if MANIFEST not in names:
            if "data" in names and any(n.endswith(".pth") for n in names):
                run_dir = path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
                raise LegacyRunError(f"{path} is in the old stable-baselines3 format (pickled objects, which run "
                                     f"code when loaded), which this version does not load; {convert_hint(run_dir)}")
            raise RunError(f"{path} is not an ipwarmup checkpoint (no {MANIFEST})")
        by_name = {i.filename: i for i in infos}

        def member(name: str, limit: int) -> bytes:
            info = by_name[name]
            _require(info.file_size <= limit, path, f"member {shorten(name)} is {info.file_size:,} bytes")
            try:
                return archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                raise RunError(f"{path}: member {shorten(name)} is unreadable ({exc})") from None

        try:
            manifest = load_json(member(MANIFEST, MAX_MANIFEST_BYTES), f"{path}: {MANIFEST}")
        except ValueError as exc:
            raise RunError(str(exc)) from None
        _require(isinstance(manifest, dict), path, f"{MANIFEST} is not an object")
        if manifest.get("format") != CHECKPOINT_FORMAT or manifest.get("version") != CHECKPOINT_VERSION:
            raise RunError(f"{path} has format {shorten(manifest.get('format'))} version "
                           f"{shorten(manifest.get('version'))}; this version reads {CHECKPOINT_FORMAT} version "
                           f"{CHECKPOINT_VERSION}")
        for key in ("num_timesteps", "n_updates", "observation_size", "frame_stack", "n_actions"):
            _require(is_whole_number(manifest.get(key)), path, f"{key} must be a non-negative whole number")
        files, described = manifest.get("files"), manifest.get("tensors")
        _require(isinstance(files, dict) and isinstance(described, dict), path, "files and tensors must be objects")
        _require(isinstance(manifest.get("optimizer"), dict), path, "optimizer must be an object")
        _require(isinstance(manifest.get("metadata", {}), dict), path, "metadata must be an object")
        extra = sorted(set(names) - set(files) - {MANIFEST})
        missing = sorted(set(files) - set(names))
        _require(not extra, path, f"member {shorten(extra[0]) if extra else ''} is not in the manifest")
        _require(not missing, path, f"member {shorten(missing[0]) if missing else ''} is missing")
        contents: dict[str, bytes] = {}
        for name, entry in files.items():
            _require(isinstance(entry, dict) and is_whole_number(entry.get("size"))
                     and isinstance(entry.get("sha256"), str),
                     path, f"manifest entry for {shorten(name)} needs size and sha256")
            _require(by_name[name].file_size == entry["size"], path, f"member {shorten(name)} has the wrong size")
            blob = member(name, entry["size"])
            if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
                raise RunError(f"{path}: member {shorten(name)} does not match its sha256 in the manifest "
                               "(corrupted or edited)")
            contents[name] = blob
        tensors: dict[str, np.ndarray] = {}
        for name, entry in described.items():
            _require(isinstance(entry, dict) and entry.get("file") in contents, path,
                     f"tensor {shorten(name)} names no member")
            dtype, shape = entry.get("dtype"), entry.get("shape")
            _require(dtype in TENSOR_DTYPES, path, f"tensor {shorten(name)} has dtype {shorten(dtype)}")
            _require(isinstance(shape, list) and len(shape) <= 8 and all(is_whole_number(d) for d in shape), path,
                     f"tensor {shorten(name)} has shape {shorten(shape)}")
            blob = contents[entry["file"]]
            _require(math.prod(shape) * np.dtype(dtype).itemsize == len(blob), path,
                     f"tensor {shorten(name)}: {len(blob)} bytes do not hold shape {shape}")
            tensors[str(name)] = np.frombuffer(blob, dtype=dtype).reshape(shape).astype(dtype[1:], copy=True)
        normalization = None
        if manifest.get("normalization") is not None:
            _require(manifest["normalization"] == NORMALIZATION and NORMALIZATION in contents, path,
                     f"normalization must name {NORMALIZATION}")
            try:
                normalization = load_json(contents[NORMALIZATION], f"{path}: {NORMALIZATION}")
            except ValueError as exc:
                raise RunError(str(exc)) from None
            _check_normalization(normalization, manifest, path)
    return Checkpoint(path, manifest, tensors, normalization)


def _finite_list(value: Any, size: int, nonneg: bool = False) -> bool:
    return (isinstance(value, list) and len(value) == size
            and all(is_finite_number(v) and (not nonneg or v >= 0) for v in value))


def _positive(value: Any, allow_zero: bool = False) -> bool:
    return is_finite_number(value) and (value >= 0 if allow_zero else value > 0)


def _check_normalization(norm: Any, manifest: dict[str, Any], path: Path) -> None:
    frames = max(int(manifest["frame_stack"]), 1)
    size = int(manifest["observation_size"]) // frames
    where = f"{NORMALIZATION} "
    _require(isinstance(norm, dict), path, where + "is not an object")
    _require(isinstance(norm.get("norm_obs"), bool) and isinstance(norm.get("norm_reward"), bool), path,
             where + "needs norm_obs and norm_reward (true or false)")
    for key in ("clip_obs", "clip_reward", "gamma"):
        _require(_positive(norm.get(key)), path, where + f"{key} must be a positive number")
    _require(_positive(norm.get("epsilon"), allow_zero=True), path, where + "epsilon must be a number >= 0")
    obs, ret = norm.get("obs"), norm.get("return")
    _require(isinstance(obs, dict) and _finite_list(obs.get("mean"), size)
             and _finite_list(obs.get("var"), size, nonneg=True) and _positive(obs.get("count")), path,
             where + f"obs needs {size} finite means, {size} variances >= 0 and a positive count")
    _require(isinstance(ret, dict) and _finite_list([ret.get("mean")], 1)
             and _finite_list([ret.get("var")], 1, nonneg=True) and _positive(ret.get("count")), path,
             where + "return needs a finite mean, a variance >= 0 and a positive count")


def normalization_of(ckpt: Checkpoint, frames: int) -> ObsNormalization:
    """The observation statistics a checkpoint carries (identity without normalization)."""
    norm = ckpt.normalization
    if norm is None or not norm["norm_obs"]:
        return ObsNormalization.identity(int(ckpt.manifest["observation_size"]) // max(frames, 1))
    return ObsNormalization(np.array(norm["obs"]["mean"], np.float64), np.array(norm["obs"]["var"], np.float64),
                            float(norm["clip_obs"]), float(norm["epsilon"]))


def restore_normalization(vecnorm: Any, ckpt: Checkpoint) -> None:
    """Put a checkpoint's statistics into a freshly built VecNormalize (for ``--resume``)."""
    norm = ckpt.normalization
    if norm is None:
        raise RunError(f"{ckpt.path} holds no normalization statistics, but the run's config normalizes")
    if vecnorm.obs_rms.mean.shape != (len(norm["obs"]["mean"]),):
        raise RunError(f"{ckpt.path}: normalization statistics for {len(norm['obs']['mean'])} features, the env "
                       f"observes {vecnorm.obs_rms.mean.shape[0]}")
    vecnorm.obs_rms.mean = np.array(norm["obs"]["mean"], np.float64)
    vecnorm.obs_rms.var = np.array(norm["obs"]["var"], np.float64)
    vecnorm.obs_rms.count = float(norm["obs"]["count"])
    vecnorm.ret_rms.mean = np.array(norm["return"]["mean"], np.float64)
    vecnorm.ret_rms.var = np.array(norm["return"]["var"], np.float64)
    vecnorm.ret_rms.count = float(norm["return"]["count"])
    vecnorm.norm_obs, vecnorm.norm_reward = norm["norm_obs"], norm["norm_reward"]
    vecnorm.clip_obs, vecnorm.clip_reward = float(norm["clip_obs"]), float(norm["clip_reward"])
    vecnorm.epsilon = float(norm["epsilon"])


def check_checkpoint_shape(ckpt: Checkpoint, frames: int) -> None:
    """Refuse a checkpoint for another observation layout or action count (an older version of the features)."""
    size = int(ckpt.manifest["observation_size"])
    if size != frames * OBS_SIZE or int(ckpt.manifest["frame_stack"]) != frames:
        raise RunError(f"{ckpt.path} was trained on observations of shape ({size},); this version observes "
                       f"{OBS_SIZE} features x {frames} frame(s): retrain the run")
    if int(ckpt.manifest["n_actions"]) != len(PROVIDERS):
        raise RunError(f"{ckpt.path} acts on {ckpt.manifest['n_actions']} providers; this version has "
                       f"{len(PROVIDERS)}: retrain the run")


def _lstm_parameters(inputs: int, hidden: int, layers: int) -> int:
    """Weights and biases of a torch ``nn.LSTM`` (four gates, two bias vectors per layer)."""
    return sum(4 * hidden * ((inputs if layer == 0 else hidden) + hidden) + 8 * hidden for layer in range(layers))


def _mlp_parameters(config: dict[str, Any], obs_size: int) -> int | None:
    """Parameters of the network ``config`` describes (the LSTMs if recurrent, then actor, critic, heads), or None
    if its ``net_arch`` is neither a list of widths nor ``{pi: [...], vf: [...]}``."""
    arch = actor_critic_widths((config.get("policy_kwargs") or {}).get("net_arch", [64, 64]))
    if arch is None or not all(is_whole_number(w, 1) for w in arch[0] + arch[1]):
        return None
    pi, vf = arch
    total, mlp_input = 0, obs_size
    if is_recurrent(config):
        kwargs = config.get("policy_kwargs") or {}
        hidden, layers = kwargs.get("lstm_hidden_size", 256), kwargs.get("n_lstm_layers", 1)
        if not is_whole_number(hidden, 1) or not is_whole_number(layers, 1):
            return None
        lstm = _lstm_parameters(obs_size, hidden, layers)
        critic = 0 if kwargs.get("shared_lstm", False) else lstm if kwargs.get("enable_critic_lstm", True) \
            else obs_size * hidden + hidden  # sb3-contrib's linear layer in place of the critic's LSTM
        total, mlp_input = lstm + critic, hidden
    for layers, head in ((pi, len(PROVIDERS)), (vf, 1)):
        previous = mlp_input
        for width in [*layers, head]:
            total += previous * width + width
            previous = width
    return total + len(PROVIDERS)  # log_std


def check_network(ckpt: Checkpoint, config: dict[str, Any], where: Path) -> None:
    """Before anything is built: the checkpoint's network is the one config.yaml describes, and of its size.

    A crafted config.yaml could otherwise ask for a network of billions of weights, allocated (and slowly
    initialized) before the mismatch with the checkpoint's arrays shows.
    """
    for key, default in (("policy", "MlpPolicy"), ("policy_kwargs", {})):
        if ckpt.manifest.get(key) != (config.get(key) or default):
            raise RunError(f"{ckpt.path} was trained with {key} {shorten(ckpt.manifest.get(key))}, but {where} says "
                           f"{shorten(config.get(key) or default)}: the run folder's files do not belong together")
    held = sum(int(a.size) for name, a in ckpt.tensors.items() if name.startswith("policy/"))
    wanted = _mlp_parameters(config, int(ckpt.manifest["observation_size"]))
    if wanted is not None and wanted > held:
        raise RunError(f"{where} describes a network of {wanted:,} weights, {ckpt.path} holds {held:,}: the run "
                       "folder's files do not belong together")


def check_observation_shape(model: Any, model_path: Path, frames: int) -> None:
    """Refuse a model trained on another observation layout (an older version of the features) in one line."""
    if model.observation_space.shape != (frames * OBS_SIZE,):
        raise RunError(f"{model_path} was trained on observations of shape {model.observation_space.shape}; this "
                       f"version observes {OBS_SIZE} features x {frames} frame(s): retrain the run")


def restore_model(model: Any, ckpt: Checkpoint, config: dict[str, Any], optimizer: bool = True) -> None:
    """Fill a model built from ``config`` with a checkpoint's weights (and optimizer state, step counts).

    The network must be the one the checkpoint was trained with: same policy and ``policy_kwargs``, every
    tensor's name and shape the same.
    """
    import torch

    path = ckpt.path
    check_network(ckpt, config, Path("config.yaml"))
    expected = model.policy.state_dict()
    saved = {k.removeprefix("policy/"): v for k, v in ckpt.tensors.items() if k.startswith("policy/")}
    for name in sorted(set(expected) | set(saved)):
        if name not in saved or name not in expected:
            raise RunError(f"{path} holds weights for another network (tensor {shorten(name)} "
                           f"{'missing' if name not in saved else 'unexpected'})")
        if tuple(saved[name].shape) != tuple(expected[name].shape):
            raise RunError(f"{path}: tensor {shorten(name)} has shape {tuple(saved[name].shape)}, the network "
                           f"built from config.yaml needs {tuple(expected[name].shape)}")
    model.policy.load_state_dict({k: torch.from_numpy(v).to(expected[k].dtype) for k, v in saved.items()})
    model.num_timesteps = ckpt.num_timesteps
    model._n_updates = int(ckpt.manifest["n_updates"])
    if optimizer:
        _restore_optimizer(model.policy.optimizer, ckpt)


def _restore_optimizer(opt: Any, ckpt: Checkpoint) -> None:
    import torch

    path = ckpt.path
    current = opt.state_dict()
    params = [p for group in opt.param_groups for p in group["params"]]
    saved = ckpt.manifest["optimizer"]
    groups, scalars = saved.get("param_groups"), saved.get("scalars", {})
    _require(isinstance(groups, list) and len(groups) == len(current["param_groups"]) and isinstance(scalars, dict),
             path, "optimizer state does not match the network's optimizer")
    restored_groups = []
    for group, template in zip(groups, current["param_groups"], strict=True):
        _require(isinstance(group, dict) and set(group) == set(template), path, "optimizer hyperparameters differ")
        fixed = {}
        for key, value in group.items():
            want = template[key]
            if isinstance(want, tuple):
                _require(isinstance(value, list) and len(value) == len(want), path, f"optimizer {key} malformed")
                value = tuple(value)
            elif key == "params":
                _require(value == want, path, "optimizer parameters differ")
            elif want is None:
                _require(value is None or isinstance(value, bool), path, f"optimizer {shorten(key)} malformed")
            elif value is not None:
                _require(type(value) is type(want) or (isinstance(want, float) and is_whole_number(value, -2**62)),
                         path, f"optimizer {shorten(key)} has the wrong type")
            fixed[key] = value
        restored_groups.append(fixed)
    state: dict[int, dict[str, Any]] = {}
    for name, array in ckpt.tensors.items():
        if not name.startswith("optimizer/state/"):
            continue
        pid_text, _, key = name.removeprefix("optimizer/state/").partition("/")
        _require(pid_text.isdigit() and int(pid_text) < len(params) and key != "", path,
                 f"optimizer tensor {shorten(name)} names no parameter")
        pid = int(pid_text)
        _require(array.ndim == 0 or tuple(array.shape) == tuple(params[pid].shape), path,
                 f"optimizer tensor {shorten(name)} has shape {array.shape}")
        state.setdefault(pid, {})[key] = torch.from_numpy(np.array(array))
    for pid_text, values in scalars.items():
        _require(pid_text.isdigit() and int(pid_text) < len(params) and isinstance(values, dict), path,
                 "optimizer scalars malformed")
        for key, value in values.items():
            _require(isinstance(value, (int, float, bool)), path, "optimizer scalars malformed")
            state.setdefault(int(pid_text), {})[key] = value
    try:
        opt.load_state_dict({"state": state, "param_groups": restored_groups})
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise RunError(f"{path}: optimizer state does not fit the network ({exc})") from None


def _spaces_only_env(obs_size: int, n_actions: int) -> Any:
    """Just enough of a VecEnv for SB3 to build a PPO model of these spaces; it cannot be stepped."""
    from gymnasium import spaces
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    class SpacesOnly(VecEnv):
        def reset(self) -> Any:
            raise RuntimeError("a loaded policy has no environment")

        def step_async(self, actions: np.ndarray) -> None:
            raise RuntimeError("a loaded policy has no environment")

        def step_wait(self) -> Any:
            raise RuntimeError("a loaded policy has no environment")

        def close(self) -> None:
            return None

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [None] * self.num_envs

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            return None

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
            return [None] * self.num_envs

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False] * self.num_envs

    return SpacesOnly(1, spaces.Box(-np.inf, np.inf, (obs_size,), np.float32),
                      spaces.Box(-1.0, 1.0, (n_actions,), np.float32))


def validate_run_config(config: dict[str, Any], run_dir: Path) -> None:
    """A run's config.yaml holds what training accepts (``training.config.validate_config``), or RunError."""
    from agents.run_config import ConfigError, validate_config

    try:
        validate_config(dict(config))
    except ConfigError as exc:
        raise RunError(f"{run_dir / CONFIG_FILE}: {exc}") from None


def model_from_config(config: dict[str, Any], obs_size: int, where: Path) -> Any:
    """An untrained PPO (or RecurrentPPO) with the network ``config`` describes, for ``obs_size`` observations (no
    env, no seeding)."""
    from agents.run_config import ConfigError, algorithm_class, make_policy_kwargs, ppo_arguments

    try:
        algorithm = algorithm_class(config)
    except ConfigError as exc:
        raise RunError(f"{where}: {exc}") from None
    arguments = set(ppo_arguments(config)) - {"policy_kwargs"}  # the network is built from policy_kwargs below
    kwargs = {k: v for k, v in config.items() if k in arguments}
    kwargs.update(n_steps=2, batch_size=2)  # the rollout buffer is not used for acting: keep it tiny
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SB3's mini-batch size advice concerns training, not loading
            return algorithm(env=_spaces_only_env(obs_size, len(PROVIDERS)), device="cpu", verbose=0,
                             policy_kwargs=make_policy_kwargs(config), **kwargs)
    except Exception as exc:  # noqa: BLE001 - SB3 refuses a config in many ways; each becomes one line
        raise RunError(f"{where}: cannot build the network ({type(exc).__name__}: {exc})") from None


def load_run(run_dir: str | Path, best: bool = True) -> RunArtifacts:
    """Load a run folder; prefer the best evaluated model when ``best`` and it exists."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    validate_run_config(config, run_dir)
    use_best = best and (run_dir / BEST_MODEL_FILE).exists()
    model_path = run_dir / (BEST_MODEL_FILE if use_best else MODEL_FILE)
    if not model_path.exists():
        if (run_dir / CHECKPOINT_DIR / MODEL_FILE).exists():
            raise RunError(f"{model_path} is missing: the run was interrupted; finish it with python train.py "
                           f"--resume {run_dir}")
        raise RunError(f"{model_path} is missing: the run has not saved a model yet")
    ckpt = read_checkpoint(model_path)
    frames = int(config.get("frame_stack", 1))
    check_checkpoint_shape(ckpt, frames)
    check_network(ckpt, config, run_dir / CONFIG_FILE)
    model = model_from_config(config, frames * OBS_SIZE, run_dir / CONFIG_FILE)
    restore_model(model, ckpt, config, optimizer=False)
    if config.get("normalize", True) and ckpt.normalization is None:
        raise RunError(f"{model_path} holds no normalization statistics, but config.yaml says normalize")
    return RunArtifacts(model, normalization_of(ckpt, frames), frames, config, run_dir)


class FrameStacker:
    """Per-env history of the last ``k`` normalized observations, zeroed at episode starts."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.buffer: np.ndarray | None = None

    def __call__(self, obs: np.ndarray, episode_start: np.ndarray | None) -> np.ndarray:
        n, size = obs.shape
        if self.buffer is None or self.buffer.shape[0] != n:
            self.buffer = np.zeros((n, self.k * size), np.float32)
            episode_start = np.ones(n, bool)
        if episode_start is not None:
            self.buffer[np.asarray(episode_start, bool)] = 0.0
        self.buffer[:, :-size] = self.buffer[:, size:]
        self.buffer[:, -size:] = obs
        return self.buffer.copy()


class RunPolicy:
    """A trained run behind SB3's ``predict``, batched over envs, for evaluate.py and SB3's evaluate_policy."""

    def __init__(self, artifacts: RunArtifacts) -> None:
        self.artifacts = artifacts
        self.stacker = FrameStacker(artifacts.frame_stack)
        self.recurrent = is_recurrent(artifacts.config)
        self.memory: Any = None
        """A recurrent policy's LSTM states, one per env of the batch, carried from day to day."""
        try:
            guard = jump_guard_of(artifacts.config)
        except ValueError as exc:  # the run's env id or env_kwargs no longer make a scenario
            raise RunError(f"{artifacts.run_dir}: cannot build the run's jump guard: {exc}") from None
        self.guard = None if guard is None else GuardedSends(guard)

    def reset(self, seed: int | None = None) -> None:
        """Forget the frame, memory and send history; the policy is deterministic, so ``seed`` has no effect."""
        self.stacker.buffer = None
        self.memory = None
        if self.guard is not None:
            self.guard.reset()

    def policy_input(self, observation: np.ndarray, episode_start: np.ndarray | None = None) -> np.ndarray:
        """The network's input for raw observations [n, OBS_SIZE]: normalized, then frame-stacked."""
        return self.stacker(self.artifacts.normalization(observation), episode_start)

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        x = self.policy_input(batch, episode_start)
        if self.recurrent:
            if self.memory is not None and self.memory[0].shape[1] != len(batch):
                self.memory = None  # another batch of envs: sb3-contrib starts their memory at zero
            action, self.memory = self.artifacts.model.predict(x, state=self.memory, episode_start=episode_start,
                                                               deterministic=deterministic)
        else:
            action, _ = self.artifacts.model.predict(x, deterministic=deterministic)
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        if self.guard is not None:
            action = self.guard.observed(action, batch, episode_start)
        return (action[0] if single else action), state


def load_run_policy(run_dir: str | Path, env: Any = None) -> RunPolicy:
    """``agents.load_policy`` for a training run folder; ``env`` is accepted for the common signature."""
    return RunPolicy(load_run(run_dir))
