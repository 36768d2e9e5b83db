"""evaluate.py end to end: specs, reproducibility across runs and worker counts, result files, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import agents
from core.util import BENCHMARK_SEED_BASE, TRAINING_SEED_LIMIT
from evaluation import cli, runner, suite
from evaluation.kpis import KPI_NAMES
from evaluation.specs import EvaluationError, parse_env_spec, parse_policy_specs

ROOT = Path(__file__).resolve().parent.parent
TINY_ENVS = ["ipwarmup/NewIP-v1:horizon=8", "ipwarmup/SelfHosted-v1:horizon=8"]


def _evaluate(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(ROOT / "evaluate.py"), *args, "--out", str(out), "--reps", "50", "--quiet"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


# ---- specs -------------------------------------------------------------------------------------------------------

def test_env_spec_parses_overrides_lists_and_profiles() -> None:
    spec = parse_env_spec("SelfHosted-v1:warmup_days=[14,21,28,40,21],horizon=10")
    assert spec.env_id == "ipwarmup/SelfHosted-v1"
    assert spec.kwargs == {"warmup_days": [14, 21, 28, 40, 21], "horizon": 10}
    assert spec.label == "ipwarmup/SelfHosted-v1:horizon=10,warmup_days=[14,21,28,40,21]"
    assert spec.make().unwrapped.scenario.horizon == 10
    held_out = parse_env_spec("ipwarmup/Randomized-v1:profile=poor-list")
    assert held_out.kwargs == {"profile": "poor-list"} and "/" not in held_out.slug


def test_the_episode_cap_is_checked_before_the_seed_list_is_built() -> None:
    """The last seed may pass 2**32 (only the first seeds the bootstrap); the count of episodes is what is capped."""
    def plan(*flags: str) -> cli.Plan:
        argv = ["--policy", "aimd", "--env", TINY_ENVS[0], "--out", "unused", *flags]
        return cli.resolve(cli.build_parser().parse_args(argv))

    assert plan("-n", "2", "--seed", str(2**32 - 1)).seeds == [2**32 - 1, 2**32]
    with pytest.raises(EvaluationError, match="at most 1,000,000 per policy and env"):
        plan("-n", str(cli.MAX_EPISODES + 1))


@pytest.mark.parametrize(("text", "message"), [
    ("ipwarmup/NewIPP-v1", "did you mean 'ipwarmup/NewIP-v1'"),
    ("ipwarmup/NewIP-v1:horizn=5", "did you mean 'horizon'"),
    ("ipwarmup/NewIP-v1:horizon", "expected key=value"),
    ("ipwarmup/Randomized-v1:profile=nope", "unknown profile"),
    ("ipwarmup/NewIP-v1:demand=" + "9" * 5000, r"demand must be a number, got '9.*\(5002 chars\)"),  # past int()'s
    ("ipwarmup/NewIP-v1:scenario=5", "a scenario is named by a string"),  # was an AttributeError
])
def test_bad_env_specs_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        parse_env_spec(text)


def test_policy_labels_are_unique_and_paths_must_exist(tmp_path: Path) -> None:
    (tmp_path / "a" / "run").mkdir(parents=True)
    (tmp_path / "b" / "run").mkdir(parents=True)
    assert [p.label for p in parse_policy_specs(["aimd", "aimd", str(tmp_path / "a" / "run")])] == ["aimd", "run"]
    with pytest.raises(EvaluationError, match="share the label"):
        parse_policy_specs([str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")])
    with pytest.raises(EvaluationError, match="no such run folder"):
        parse_policy_specs([str(tmp_path / "missing")])


def test_standard_suite_covers_scenarios_heldout_profiles_all_baselines_and_unseen_seeds() -> None:
    import envs

    s = suite.get_suite("standard")
    assert set(envs.ENV_IDS) <= set(s.envs)
    assert {f"ipwarmup/Randomized-v1:profile={p}" for p in envs.HELDOUT_PROFILES} <= set(s.envs)
    assert set(agents.BASELINES) <= set(s.policies) and "oracle" in s.policies
    assert s.seed >= TRAINING_SEED_LIMIT
    for env in s.envs:
        parse_env_spec(env)  # every suite env builds


# ---- reproducibility ---------------------------------------------------------------------------------------------

def test_same_command_gives_identical_numbers_at_any_worker_count(tmp_path: Path) -> None:
    # 9 episodes: two chunks per (policy, env), so the parallel path really splits work.
    args = ["--policy", "ses-standard", "aimd", "random", "--env", *TINY_ENVS, "--episodes", "9", "--no-plots"]
    runs = {name: tmp_path / name for name in ("w2a", "w2b", "w1")}
    for name, out in runs.items():
        result = _evaluate(*args, "--workers", name[1], out=out)
        assert result.returncode == 0, result.stderr
    for name in ("episodes.csv", "summary.csv", "poi.csv"):
        first = (runs["w2a"] / name).read_bytes()
        assert first == (runs["w2b"] / name).read_bytes(), name
        assert first == (runs["w1"] / name).read_bytes(), name
    episodes = pd.read_csv(runs["w1"] / "episodes.csv")
    assert len(episodes) == 3 * 2 * 9
    assert list(episodes.columns[:3]) == ["policy", "env", "seed"]
    assert set(KPI_NAMES) <= set(episodes.columns)
    assert sorted(set(episodes["seed"])) == [BENCHMARK_SEED_BASE + i for i in range(9)]
    # episodes differ by seed (the seeds reach the env), yet a policy's row for a seed is stable
    assert episodes[episodes["policy"] == "random"]["return"].nunique() > 1


def test_result_folder_contents_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "res"
    result = _evaluate("--policy", "ses-standard", "aimd", "--env", TINY_ENVS[0], "--episodes", "3",
                       "--trace-episodes", "1", out=out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["seeds"] == [BENCHMARK_SEED_BASE + i for i in range(3)]
    assert len(manifest["config_hash"]) == 64 and "evaluate.py" in manifest["command"]
    for package in ("numpy", "gymnasium", "stable-baselines3", "torch", "rliable"):
        assert manifest["packages"][package], package
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:3]) == ["policy", "env", "kpi"]
    assert {"iqm", "ci_low", "ci_high"} <= set(summary.columns)
    assert (summary["ci_low"] <= summary["iqm"] + 1e-9).all() and (summary["iqm"] <= summary["ci_high"] + 1e-9).all()
    poi = pd.read_csv(out / "poi.csv")
    assert poi["policy"].tolist() == ["aimd"] and poi["reference"].tolist() == ["ses-standard"]
    assert "| aimd |" in (out / "summary.md").read_text()
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert {"profiles.png", "intervals.png"} <= set(pngs)
    assert any(p.startswith("ramp_") for p in pngs) and any(p.startswith("rates_") for p in pngs)
    assert all((out / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    traces = pd.read_csv(out / "traces.csv")
    assert set(traces["seed"]) == {BENCHMARK_SEED_BASE} and traces["day"].max() == 8
    assert not list(tmp_path.glob(".res.*")), "temporary folders left behind"


def test_config_hash_follows_the_inputs() -> None:
    def plan(episodes: int) -> dict[str, Any]:
        args = cli.build_parser().parse_args(["--policy", "aimd", "--env", TINY_ENVS[0], "--episodes", str(episodes),
                                              "--out", "x"])
        return cli.resolve(args).config()

    from evaluation.report import config_hash

    assert config_hash(plan(3)) == config_hash(plan(3))
    assert config_hash(plan(3)) != config_hash(plan(4))


# ---- noise-only policies through the whole pipeline -------------------------------------------------------------

class NoisyConstant:
    """A fixed 20% share on every provider plus small action noise from its own seeded generator."""

    def __init__(self, noise_seed: int) -> None:
        self.rng = np.random.default_rng(noise_seed)

    def reset(self, seed: int | None = None) -> None:
        """The noise runs on across episodes (its own stream, not the episode's seed)."""

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        base = np.full((obs.shape[0], 5), 0.65)
        return (base + self.rng.normal(0, 0.01, base.shape)).astype(np.float32), None


def noisy_loader(spec: str, env: Any) -> NoisyConstant:
    return NoisyConstant({"noisy-a": 1, "noisy-b": 2}[spec])


def test_policies_differing_only_by_noise_get_poi_near_half(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["--policy", "noisy-a", "noisy-b", "--env", "ipwarmup/NewIP-v1:horizon=12",
                                          "--episodes", "40", "--reference", "noisy-a", "--reps", "200",
                                          "--out", str(tmp_path / "o")])
    cli.execute(cli.resolve(args), tmp_path / "o", plots=False, progress=False, loader=noisy_loader)
    poi = pd.read_csv(tmp_path / "o" / "poi.csv").iloc[0]
    assert 0.35 < poi["poi"] < 0.65
    assert poi["ci_low"] < 0.5 < poi["ci_high"]


# ---- bad input ---------------------------------------------------------------------------------------------------

def _corrupt_run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "model.zip").write_bytes(b"not a zip file")
    (folder / "config.yaml").write_text("env_id: ipwarmup/NewIP-v1\n")
    return folder


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "no-such-policy", "--env", TINY_ENVS[0]], "unknown policy"),
    (["--policy", "aimd", "--env", "ipwarmup/NoSuch-v0"], "unknown scenario"),
    (["--policy", "aimd", "--env", "ipwarmup/NewIP-v1:horizon=-1"], "horizon"),
    (["--policy", "runs/does-not-exist/", "--env", TINY_ENVS[0]], "no such run folder"),
    (["--policy", "CORRUPT", "--env", TINY_ENVS[0]], "cannot load policy"),
    (["--policy", "aimd", "--env", TINY_ENVS[0], "--episodes", "0"], "at least 1"),
    (["--policy", "aimd", "--env", TINY_ENVS[0], "--seed", "4294967296"], "--seed must be below 2**32"),
    (["--policy", "aimd", "--env", "ipwarmup/NewIP-v1:spike_penalty=" + "9" * 400], "(434 chars)"),  # cut short
    (["--env", TINY_ENVS[0]], "no policy given"),
])
def test_bad_input_is_one_line_nonzero_exit_and_nothing_written(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(_corrupt_run(tmp_path / "corrupt")) if a == "CORRUPT" else a for a in args]
    out = tmp_path / "out"
    result = _evaluate(*args, out=out)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_failure_mid_run_keeps_the_previous_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _evaluate("--policy", "aimd", "--env", TINY_ENVS[0], "--episodes", "2", "--no-plots", out=out)
    assert first.returncode == 0, first.stderr
    before = (out / "episodes.csv").read_bytes()

    class Broken:
        def predict(self, obs: np.ndarray, **_: Any) -> tuple[np.ndarray, None]:
            return np.full((obs.shape[0], 5), np.nan, np.float32), None

    args = cli.build_parser().parse_args(["--policy", "aimd", "--env", TINY_ENVS[0], "--episodes", "2",
                                          "--out", str(out)])
    with pytest.raises(EvaluationError, match="seed 2000000 failed"):
        cli.execute(cli.resolve(args), out, plots=False, progress=False, loader=lambda spec, env: Broken())
    assert (out / "episodes.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_that_is_not_a_results_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = _evaluate("--policy", "aimd", "--env", TINY_ENVS[0], "--episodes", "1", out=tmp_path)
    assert result.returncode == 2 and "was not written by evaluate.py" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_ipwarmup_console_script_dispatches_to_evaluate(capsys: pytest.CaptureFixture[str]) -> None:
    import ipwarmup_cli

    with pytest.raises(SystemExit) as exc:
        ipwarmup_cli.main(["evaluate", "--policy", "no-such-policy", "--env", TINY_ENVS[0], "--out", "unused"])
    assert exc.value.code == 2
    assert "unknown policy" in capsys.readouterr().err


def test_runner_orders_results_and_keeps_traces_only_where_asked() -> None:
    policies = parse_policy_specs(["aimd", "ses-standard"])
    env_specs = [parse_env_spec(TINY_ENVS[0])]
    results = runner.run(policies, env_specs, [5, 3, 4], trace_episodes=1, progress=False)
    assert [(r.policy, r.seed) for r in results] == [("aimd", 3), ("aimd", 4), ("aimd", 5),
                                                     ("ses-standard", 3), ("ses-standard", 4), ("ses-standard", 5)]
    assert [r.trace is not None for r in results] == [False, False, True] * 2  # the first seed given: 5
    trace = results[2].trace
    assert trace is not None and trace.arrays["sent"].shape == (8, 5)


def test_random_policy_episode_depends_on_its_seed_alone() -> None:
    """The random floor is reseeded per episode: seed 5 plays the same whether or not seed 3 ran before it."""
    policies = parse_policy_specs(["random"])
    env = [parse_env_spec(TINY_ENVS[0])]
    alone = runner.run(policies, env, [5], trace_episodes=0, progress=False)
    after = runner.run(policies, env, [3, 5], trace_episodes=0, progress=False)
    assert alone[0].kpis == after[1].kpis
    assert after[0].kpis != after[1].kpis
