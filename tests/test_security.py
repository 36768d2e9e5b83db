"""No file a tool loads runs code, and every file it reads is bounded: crafted run folders, checkpoints, cards,
ONNX graphs, statistics and mappings get a one-line refusal (docs/security.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from export_helpers import exported

import envs
from agents import load_policy
from agents.ppo import LegacyRunError, RunError, load_run, read_checkpoint
from core.features import MAX_FRAME_STACK
from core.providers import PROVIDERS
from deploy import runtime as rt
from deploy.ses_events import MAX_CSV_LINE, ProviderMap, StatsError, read_stats
from training.config import ConfigError
from training.export import ExportError, export_run
from training.run import convert_run, train

ROOT = Path(__file__).resolve().parent.parent
NEWIP = next(i for i in envs.ENV_IDS if "/NewIP-" in i)
TINY = {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "eval_freq": 0, "save_freq": 64,
        "policy_kwargs": {"net_arch": [8], "activation_fn": "tanh", "log_std_init": -1.0}}


class _Plant:
    """Unpickling this creates ``path``: the proof that a file was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Plant(marker))


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ipwarmup_cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def legacy_run(folder: Path, vecnorm_pickle: bytes | None = None) -> tuple[Path, Any, Any]:
    """A run folder as ipwarmup wrote it before the checkpoint format: SB3's model.zip and a pickled VecNormalize."""
    from training.config import build_model, resolve_config
    from training.run import make_training_env
    from training.vec_env import vecnormalize_of

    config = resolve_config(NEWIP, None, dict(TINY))
    config["seed"] = 0
    venv = make_training_env(config, 0)
    model = build_model(config, venv, 0)
    model.learn(64)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    model.save(folder / "model.zip")
    vecnorm = vecnormalize_of(venv)
    if vecnorm_pickle is None:
        vecnorm.save(folder / "vecnormalize.pkl")
    else:
        (folder / "vecnormalize.pkl").write_bytes(vecnorm_pickle)
    return folder, model, vecnorm


def copy_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(exported()[0], run)
    return run


# --------------------------------------------------------------------------------------------- run folders


def _crafted_sb3_zip(path: Path, marker: Path) -> None:
    """stable-baselines3's model.zip layout whose ``:serialized:`` entry creates ``marker`` when deserialized."""
    payload = base64.b64encode(evil_pickle(marker)).decode()
    data = {"policy_class": {":type:": "<class 'abc.ABCMeta'>", ":serialized:": payload},
            "observation_space": {":type:": "<class 'gymnasium.spaces.box.Box'>", ":serialized:": payload}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr("policy.pth", b"\x80\x02}q\x00.")
        archive.writestr("_stable_baselines3_version", "2.9.2")


def test_a_crafted_model_runs_no_code_anywhere_and_is_refused_in_one_line(tmp_path: Path) -> None:
    """Issue 11: a crafted best_model.zip made `ipwarmup export` create a file and still exit 0."""
    run, marker = copy_run(tmp_path), tmp_path / "pwned"
    for name in ("model.zip", "best_model.zip", "checkpoints/model.zip"):
        _crafted_sb3_zip(run / name, marker)
    result = cli("export", str(run), "--out", str(tmp_path / "out"))
    one_line_error(result, "best_model.zip", "old stable-baselines3 format", "--convert-run")
    with pytest.raises(LegacyRunError):
        load_policy(str(run))
    with pytest.raises(RunError, match="old stable-baselines3 format"):
        train(None, 0, None, 512, resume=run, tensorboard=False)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_pickles_planted_in_a_run_folder_are_never_opened(tmp_path: Path) -> None:
    run, marker = copy_run(tmp_path), tmp_path / "pwned"
    for name in ("vecnormalize.pkl", "best_vecnormalize.pkl", "checkpoints/vecnormalize.pkl"):
        (run / name).write_bytes(evil_pickle(marker))
    load_run(run)
    load_run(run, best=False)
    export_run(run, tmp_path / "out", days=3)
    train(None, 0, None, load_run(run, best=False).model.num_timesteps + 64, resume=run, tensorboard=False)
    assert not marker.exists()


def test_an_old_run_folder_is_refused_with_the_conversion_command(tmp_path: Path) -> None:
    run, _, _ = legacy_run(tmp_path / "old")
    with pytest.raises(LegacyRunError) as caught:
        load_run(run)
    message = str(caught.value)
    assert "\n" not in message and f"python train.py --convert-run {run} --trust" in message
    one_line_error(cli("export", str(run), "--out", str(tmp_path / "out")), "--convert-run")


def test_convert_run_needs_trust_then_acts_exactly_like_the_old_model(tmp_path: Path) -> None:
    run, model, vecnorm = legacy_run(tmp_path / "old")
    refused = subprocess.run([sys.executable, str(ROOT / "train.py"), "--convert-run", str(run)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, check=False)
    one_line_error(refused, "--trust")
    assert (run / "vecnormalize.pkl").exists()  # nothing touched without --trust
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--convert-run", str(run), "--trust"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert not (run / "vecnormalize.pkl").exists() and (run / "legacy-sb3" / "vecnormalize.pkl").exists()
    policy = load_policy(str(run))
    obs = np.random.default_rng(0).uniform(0.0, 1.0, (32, model.observation_space.shape[0])).astype(np.float32)
    want, _ = model.predict(vecnorm.normalize_obs(obs), deterministic=True)
    got, _ = policy.predict(obs)
    np.testing.assert_allclose(got, np.clip(want, -1, 1), atol=1e-6)
    assert read_checkpoint(run / "model.zip").num_timesteps == model.num_timesteps
    assert convert_run(run) == []  # already converted: nothing to do


def test_converting_a_pickle_that_is_not_normalization_is_one_line(tmp_path: Path) -> None:
    run, _, _ = legacy_run(tmp_path / "old", vecnorm_pickle=pickle.dumps({"mean": [0.0]}))
    with pytest.raises(RunError, match=r"vecnormalize.pkl holds a dict, not VecNormalize statistics"):
        convert_run(run)
    with pytest.raises(LegacyRunError):  # and loading never unpickles it
        load_run(run)


# --------------------------------------------------------------------------------------------- checkpoints


def _rewrite(path: Path, mutate: Callable[[dict[str, bytes], dict[str, Any]], None], seal: bool = True) -> None:
    """Rewrite a checkpoint's members and manifest; ``seal`` recomputes every size and sha256 (a careful forger)."""
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(members.pop("manifest.json"))
    mutate(members, manifest)
    if seal:
        manifest["files"] = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in members.items()}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", manifest if isinstance(manifest, str) else json.dumps(manifest))
        for name, data in members.items():
            archive.writestr(name, data)


def _first_tensor(manifest: dict[str, Any]) -> str:
    return next(n for n in manifest["tensors"] if n.startswith("policy/") and manifest["tensors"][n]["shape"])


def _flip_byte(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    name = manifest["tensors"][_first_tensor(manifest)]["file"]
    members[name] = bytes([members[name][0] ^ 0xFF]) + members[name][1:]


def _object_dtype(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    manifest["tensors"][_first_tensor(manifest)]["dtype"] = "|O"


def _shape_lies(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    manifest["tensors"][_first_tensor(manifest)]["shape"] = [10**9, 10**9]


def _nan_statistics(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    norm = json.loads(members["normalization.json"])
    norm["obs"]["var"][0] = float("nan")
    members["normalization.json"] = json.dumps(norm).encode()


def _count_no_float_holds(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    norm = json.loads(members["normalization.json"])
    norm["obs"]["count"] = 10**400  # valid JSON; math.isfinite raised OverflowError on it
    members["normalization.json"] = json.dumps(norm).encode()


def _other_network(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    manifest["policy_kwargs"] = {**manifest["policy_kwargs"], "activation_fn": "relu"}


@pytest.mark.parametrize(("mutate", "seal", "message"), [
    (_flip_byte, False, "does not match its sha256"),
    (lambda m, _: m.update({"extra.pkl": evil_pickle(Path("/nonexistent/x"))}), False, "not in the manifest"),
    (_object_dtype, True, "has dtype '|O'"),
    (_shape_lies, True, "do not hold shape"),
    (_nan_statistics, True, "finite means"),
    (_count_no_float_holds, True, "a positive count"),
    (_other_network, True, "config.yaml says"),
    (lambda m, manifest: manifest.update(version=99), True, "version 99"),
])
def test_a_crafted_checkpoint_is_refused_in_one_line(tmp_path: Path, mutate: Any, seal: bool, message: str) -> None:
    run = copy_run(tmp_path)
    (run / "best_model.zip").unlink(missing_ok=True)
    _rewrite(run / "model.zip", mutate, seal)
    with pytest.raises(RunError) as caught:
        load_run(run)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("change", "message"), [
    ({"policy_kwargs": {"net_arch": [4096, 4096], "activation_fn": "tanh"}}, "the run folder's files do not belong"),
    ({"policy_kwargs": {"net_arch": [10**8], "activation_fn": "tanh"}}, "net_arch must be a list of layer widths"),
    ({"frame_stack": "two"}, "config.yaml: hyperparameter 'frame_stack' must be int"),
    ({"n_steps": 10**12, "n_envs": 65_536}, None),  # rollout sizes do not matter for acting: loads, allocates nothing
    ({"n_envs": 10**9}, "'n_envs' must be at most 65,536"),
])
def test_a_crafted_config_cannot_make_loading_allocate_a_huge_network(tmp_path: Path, change: dict[str, Any],
                                                                      message: str | None) -> None:
    run = copy_run(tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, **change}))
    if message is None:
        load_run(run)
        return
    with pytest.raises(RunError, match=message.replace("(", r"\(")):
        load_run(run)


@pytest.mark.parametrize(("change", "message"), [
    ({"eval_freq": 64, "eval_episodes": 0}, "'eval_episodes' must be at least 1 while eval_freq is on"),
    ({"seed": "abc"}, "training seed must be in [0, 1000000)"),  # int() raised ValueError
    ({"seed": float("inf")}, "training seed must be in [0, 1000000)"),  # int() raised OverflowError
])
def test_a_run_that_cannot_resume_still_loads_and_resuming_it_is_one_line(tmp_path: Path, change: dict[str, Any],
                                                                         message: str) -> None:
    """An older run with eval_episodes 0 (the docs once read "0 disables") is evaluated and exported as before;
    only training on from it is refused, before anything is written."""
    run = copy_run(tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, **change}))
    before = sorted(p.name for p in run.rglob("*"))
    if "seed" not in change:
        load_run(run)
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(None, 0, None, resume=run, n_timesteps=64)
    assert sorted(p.name for p in run.rglob("*")) == before


def test_a_checkpoint_and_config_that_agree_on_a_huge_network_are_refused_before_building(tmp_path: Path) -> None:
    """The manifest may claim anything; the weights it really holds bound what is built."""
    run = copy_run(tmp_path)
    (run / "best_model.zip").unlink(missing_ok=True)
    frames = MAX_FRAME_STACK  # the most a config may ask for: about 4 million weights the checkpoint does not hold
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "frame_stack": frames}))

    def claim(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
        manifest.update(frame_stack=frames, observation_size=frames * (manifest["observation_size"] // 2),
                        normalization=None)
        members.pop("normalization.json")

    _rewrite(run / "model.zip", claim)
    with pytest.raises(RunError, match="describes a network of"):
        load_run(run)


@pytest.mark.parametrize(("content", "message"), [
    (lambda data: data[: len(data) // 2], "not a readable checkpoint (truncated"),
    (lambda data: b"PK\x03\x04" + b"\0" * 100, "not a readable checkpoint"),
    (lambda data: b"[" * 100_000, "not a readable checkpoint"),
])
def test_a_truncated_or_foreign_checkpoint_is_refused(tmp_path: Path, content: Any, message: str) -> None:
    run = copy_run(tmp_path)
    (run / "best_model.zip").unlink(missing_ok=True)
    (run / "model.zip").write_bytes(content((run / "model.zip").read_bytes()))
    with pytest.raises(RunError, match=message.replace("(", r"\(")):
        load_run(run)


def test_a_deeply_nested_manifest_is_refused(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    (run / "best_model.zip").unlink(missing_ok=True)
    _rewrite(run / "model.zip", lambda m, manifest: None)
    with zipfile.ZipFile(run / "model.zip") as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "manifest.json"}
    with zipfile.ZipFile(run / "model.zip", "w") as archive:
        archive.writestr("manifest.json", "[" * 100_000 + "]" * 100_000)
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(RunError, match="nested too deeply"):
        load_run(run)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_model_that_is_a_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    (run / "best_model.zip").unlink(missing_ok=True)
    (run / "model.zip").unlink()
    (run / "model.zip").symlink_to("/dev/zero")
    with pytest.raises(RunError, match="not a regular file"):
        load_run(run)


# --------------------------------------------------------------------------------------------- policy cards


def copy_export(tmp_path: Path) -> Path:
    folder = tmp_path / "policy"
    shutil.copytree(exported()[1], folder)
    return folder


def _set_onnx_file(folder: Path, name: str) -> None:
    card = json.loads((folder / rt.CARD_FILE).read_text())
    card["onnx"]["file"] = name
    (folder / rt.CARD_FILE).write_text(json.dumps(card))


@pytest.mark.parametrize(("name", "message"), [
    ("/dev/zero", "must be a file name in the card's own folder"),
    ("../stolen.onnx", "must be a file name in the card's own folder"),
    ("ABSOLUTE", "must be a file name in the card's own folder"),
    ("sub/policy.onnx", "must be a file name in the card's own folder"),
    ("link.onnx", "outside the card's folder"),
    ("zero.onnx", "is a link to /dev/zero, outside the card's folder"),
    ("fifo.onnx", "not a regular file"),
    ("missing.onnx", "does not exist"),
])
def test_a_card_may_only_name_a_regular_file_in_its_own_folder(tmp_path: Path, name: str, message: str) -> None:
    """Issue 11: onnx.file = /dev/zero hung recommend; any readable file could be named and its hash printed."""
    folder = copy_export(tmp_path)
    shutil.copy(folder / rt.ONNX_FILE, tmp_path / "stolen.onnx")  # same bytes: the hash would match
    (folder / "sub").mkdir()
    shutil.copy(folder / rt.ONNX_FILE, folder / "sub" / rt.ONNX_FILE)
    (folder / "link.onnx").symlink_to(tmp_path / "stolen.onnx")
    if name == "zero.onnx" and not Path("/dev/zero").exists() or name == "fifo.onnx" and not hasattr(os, "mkfifo"):
        pytest.skip("needs /dev/zero and FIFOs")
    if name == "zero.onnx":
        (folder / "zero.onnx").symlink_to("/dev/zero")
    if name == "fifo.onnx":
        os.mkfifo(folder / "fifo.onnx")  # opened for reading with no writer: would block without O_NONBLOCK
    _set_onnx_file(folder, str(tmp_path / "stolen.onnx") if name == "ABSOLUTE" else name)
    with pytest.raises(rt.CardError) as caught:
        rt.load(folder)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    if name in ("/dev/zero", "zero.onnx", "fifo.onnx"):  # end to end, where a regression would hang
        (tmp_path / "stats.csv").write_text("date,provider,sent,delivered,deferred,bounced,blocked,complaints\n"
                                            "2025-03-01,gmail,10,10,0,0,0,0\n")
        one_line_error(cli("recommend", "--policy", str(folder), "--stats", str(tmp_path / "stats.csv"), timeout=60),
                       message)


def test_an_onnx_graph_with_external_data_is_refused(tmp_path: Path) -> None:
    """onnxruntime reads external tensor files relative to the current folder when given bytes: refused."""
    import onnx
    from onnx import TensorProto

    folder = copy_export(tmp_path)
    model = onnx.load(folder / rt.ONNX_FILE)
    tensor = model.graph.initializer[0]
    (folder / "weights.bin").write_bytes(tensor.raw_data or np.zeros(1, np.float32).tobytes())
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    data = model.SerializeToString()
    (folder / rt.ONNX_FILE).write_bytes(data)
    card = json.loads((folder / rt.CARD_FILE).read_text())
    card["onnx"]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / rt.CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(rt.CardError, match="external data file"):
        rt.load(folder)
    assert rt.external_data_tensor((exported()[1] / rt.ONNX_FILE).read_bytes()) is None


# --------------------------------------------------------------------------------------------- statistics, mappings


def test_a_yaml_mapping_with_aliases_is_refused_before_it_expands(tmp_path: Path) -> None:
    """Issue 11: a 366-byte YAML mapping of nested aliases took 244 MB."""
    levels = ['a0: &a0 ["x.example"]'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    path = tmp_path / "map.yaml"
    path.write_text("\n".join(levels) + "\ngmail: *a7\n")
    tracemalloc.start()
    try:
        with pytest.raises(StatsError, match="aliases"):
            ProviderMap.load(path, PROVIDERS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20


def test_statistics_are_streamed_not_read_whole(tmp_path: Path) -> None:
    """A 20 MB CSV (blank padding after one row) is read in bounded memory, not as one string and a list of lines."""
    path = tmp_path / "stats.csv"
    with path.open("w") as handle:
        handle.write("date,provider,sent,delivered,deferred,bounced,blocked,complaints\n")
        handle.write("2025-03-01,gmail,10,10,0,0,0,0\n")
        pad = " " * 1000 + "\n"
        for _ in range(20_000):
            handle.write(pad)
    tracemalloc.start()
    try:
        rows, _ = read_stats(path, PROVIDERS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rows) == 1 and path.stat().st_size > 20_000_000
    assert peak < 2_000_000, peak


@pytest.mark.parametrize(("text", "message"), [
    ("date,provider,sent,delivered,deferred,bounced,blocked,complaints\n2025-03-01,gmail,"
     + "1" * (MAX_CSV_LINE + 10) + ",0,0,0,0,0\n", "line 2: longer than 65,536 bytes"),
    ("date,provider,sent,delivered,deferred,bounced,blocked,complaints\n1995-01-01,gmail,1,1,0,0,0,0\n"
     "2025-01-01,gmail,1,1,0,0,0,0\n", "line 3: dates from 1995-01-01 to 2025-01-01 span 10,959 days"),
    ('{"eventType": "Send", "mail": {"timestamp": "1995-01-01T00:00:00Z", "destination": ["a@gmail.com"]}}\n'
     '{"eventType": "Send", "mail": {"timestamp": "2025-01-01T00:00:00Z", "destination": ["a@gmail.com"]}}\n',
     "line 2: dates from 1995-01-01 to 2025-01-01 span"),
    ('{"eventType": "Send", "mail": {"destination": ["' + "a" * (2 << 20) + '"]}}\n', "line 1: longer than"),
])
def test_statistics_limits_are_named_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    """Issue 11: two rows dated 1500 and 2499 allocated 309 MB; a field over 128 KB was a traceback."""
    path = tmp_path / "stats.txt"
    path.write_text(text)
    with pytest.raises(StatsError) as caught:
        read_stats(path, PROVIDERS)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_size_limit_is_enforced_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deploy.ses_events as ses

    monkeypatch.setattr(ses, "MAX_CSV_BYTES", 1000)
    path = tmp_path / "stats.csv"
    path.write_text("date,provider,sent,delivered,deferred,bounced,blocked,complaints\n" + " \n" * 2000)
    with pytest.raises(StatsError, match="more than 1,000 bytes, the limit for a statistics CSV"):
        read_stats(path, PROVIDERS)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_statistics_from_a_device_end_at_the_line_limit(tmp_path: Path) -> None:
    folder = exported()[1]
    one_line_error(cli("recommend", "--policy", str(folder), "--stats", "/dev/zero", timeout=60), "longer than")


def test_export_refuses_a_run_whose_files_are_not_ours_before_building(tmp_path: Path) -> None:
    """A run folder that is a file or misses config.yaml is named; nothing is created."""
    (tmp_path / "file").write_text("x")
    for run in (tmp_path / "file", tmp_path / "missing", tmp_path):
        with pytest.raises(ExportError):
            export_run(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == ["file"]
