"""ipwarmup sweep and tune: a tiny sweep on local Ray through the user's command, killed and resumed; its
folder fed to evaluate.py; a tiny Optuna search; bad input in one line.

Ray starts only in the subprocesses (each command starts its own local Ray, a few seconds each), three
times in the module: the killed sweep, its rerun, and the tune run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import envs
import ipwarmup_cli
from agents.ppo import load_run_policy
from evaluation.specs import EvaluationError, parse_policy_specs
from training.config import parse_params, resolve_config
from training.sweep import (
    SWEEP_FILE,
    TRIAL_FILE,
    SweepError,
    Trial,
    TrialTask,
    parse_grid,
    plan_sweep,
    prepare_out,
    read_trial,
    run_trial,
    unpack_folder,
)
from training.tune import parse_space

ROOT = Path(__file__).resolve().parent.parent
ENV = envs.ENV_IDS[0]
TINY = ["n_envs:4", "n_steps:32", "batch_size:64", "n_epochs:1", "eval_freq:0", "save_freq:256",
        "policy_kwargs:{net_arch: [8]}"]
CONFIGS = ("learning_rate=0.001", "learning_rate=0.0003")
STEPS = 8192
"""Env steps per trial: long enough that a trial still running at the kill cannot finish in the second its
orphaned Ray worker outlives the driver (at 1,024 steps, the compiled simulator finished all four)."""


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ipwarmup_cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def _sweep_args(out: Path) -> list[str]:
    return ["sweep", "--env", ENV, "--seeds", "0", "1", "-n", str(STEPS), "--out", str(out), "--grid",
            "learning_rate=1e-3,3e-4", "--eval-episodes", "3", "--reps", "200", "-q", "--no-tensorboard",
            "-params", *TINY]


def _finished(out: Path) -> dict[str, tuple[int, str]]:
    """Finished trials: their trial.json's modification time and content."""
    return {str(p.parent.relative_to(out)): (p.stat().st_mtime_ns, p.read_text())
            for p in sorted(out.glob(f"*/s*/{TRIAL_FILE}"))}


def test_a_tiny_sweep_on_local_ray(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """2 variants x 2 seeds through the user's command, the driver SIGKILLed after its first trial, run again.

    One test, not a module fixture shared by several: under ``pytest -n 2`` each worker would run the sweep.
    """
    sweep = _killed_and_resumed_sweep(tmp_path / "sw")
    _check_the_killed_sweep_continues_without_redoing_finished_trials(sweep)
    _check_every_trial_is_an_ordinary_run_folder(sweep, tmp_path / "exported")
    _check_summary_aggregates_each_configuration_over_its_seeds(sweep)
    _check_a_finished_sweep_run_again_trains_nothing(sweep, capsys)
    _check_evaluate_pools_a_sweep_configuration_and_refuses_a_sweep_of_several(sweep, tmp_path, capsys)
    _check_a_sweep_of_one_configuration_is_one_policy(sweep, tmp_path / "single")


def _killed_and_resumed_sweep(out: Path) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "ipwarmup_cli", *_sweep_args(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob(f"*/s*/{TRIAL_FILE}")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before any trial finished"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait(timeout=60)
    time.sleep(3)  # Ray's workers (process groups of their own) end when they lose their raylet, within a second
    before_kill = _finished(out)
    rerun = _cli(*_sweep_args(out))
    return {"out": out, "before": before_kill, "rerun": rerun, "after": _finished(out)}


def _check_the_killed_sweep_continues_without_redoing_finished_trials(sweep: dict) -> None:
    assert sweep["rerun"].returncode == 0, sweep["rerun"].stderr
    assert 1 <= len(sweep["before"]) < 4  # killed mid-way
    assert set(sweep["after"]) == {f"{c}/s{s}" for c in CONFIGS for s in (0, 1)}
    for name, stamp in sweep["before"].items():
        assert sweep["after"][name] == stamp  # finished before the kill: not touched again
    k = len(sweep["before"])
    assert f"{4 - k} trials to run ({k} already finished)" in sweep["rerun"].stdout


def _check_every_trial_is_an_ordinary_run_folder(sweep: dict, exported: Path) -> None:
    out = sweep["out"]
    for config, lr in zip(CONFIGS, (1e-3, 3e-4), strict=True):
        for seed in (0, 1):
            run = out / config / f"s{seed}"
            saved = yaml.safe_load((run / "config.yaml").read_text())
            assert saved["learning_rate"] == lr and saved["seed"] == seed and saved["n_timesteps"] == STEPS
            assert saved["policy_kwargs"] == {"net_arch": [8]}
            assert load_run_policy(run).artifacts.model.num_timesteps >= STEPS
            report = json.loads((run / "report.json").read_text())
            assert read_trial(run)["kpis"]["return"] == report["mean_ci95"]["ppo"]["return"][0]
    ipwarmup_cli.main(["export", str(out / CONFIGS[0] / "s0"), "--out", str(exported)])
    assert {"policy.onnx", "policy.json", "schedule.csv"} <= {p.name for p in exported.iterdir()}


def _check_summary_aggregates_each_configuration_over_its_seeds(sweep: dict) -> None:
    out = sweep["out"]
    summary = pd.read_csv(out / "summary.csv")
    runs = pd.read_csv(out / "runs.csv")
    assert list(dict.fromkeys(summary["config"])) == list(CONFIGS)
    assert (runs["status"] == "done").all() and len(runs) == 4
    for config in CONFIGS:
        row = summary[(summary["config"] == config) & (summary["kpi"] == "return")].iloc[0]
        scores = runs[runs["config"] == config]["return"]
        assert row["runs"] == 2
        assert row["iqm"] == pytest.approx(scores.mean())  # IQM of two runs is their mean
        assert row["ci_low"] == pytest.approx(scores.min()) and row["ci_high"] == pytest.approx(scores.max())


def _check_a_finished_sweep_run_again_trains_nothing(sweep: dict, capsys: pytest.CaptureFixture[str]) -> None:
    ipwarmup_cli.main(_sweep_args(sweep["out"]))  # in this process: Ray is not even started
    assert "all 4 trials already finished" in capsys.readouterr().out
    assert _finished(sweep["out"]) == sweep["after"]


def _check_evaluate_pools_a_sweep_configuration_and_refuses_a_sweep_of_several(
        sweep: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import evaluate

    out = sweep["out"]
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--policy", str(out), "--env", ENV, "-n", "2", "--out", str(tmp_path / "r0")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "has 2 configurations" in err and str(out / CONFIGS[0]) in err
    evaluate.main(["--policy", str(out / CONFIGS[0]), "--env", ENV, "-n", "3", "--out", str(tmp_path / "r1"),
                   "--no-plots", "-w", "1", "-q"])
    episodes = pd.read_csv(tmp_path / "r1" / "episodes.csv")
    assert set(episodes["policy"]) == {f"sw/{CONFIGS[0]}"}
    assert len(episodes) == 2 * 3  # runs x episodes
    assert sorted(episodes["seed"]) == sorted(list(episodes["seed"].unique()) * 2)
    assert len(set(episodes["return"])) > 3  # two different policies, not one run twice
    summary = pd.read_csv(tmp_path / "r1" / "summary.csv")
    assert (summary[summary["kpi"] == "return"]["episodes"] == 6).all()


def _check_a_sweep_of_one_configuration_is_one_policy(sweep: dict, single: Path) -> None:
    shutil.copytree(sweep["out"] / CONFIGS[1], single / CONFIGS[1])
    marker = json.loads((sweep["out"] / SWEEP_FILE).read_text())
    marker["configs"] = {CONFIGS[1]: marker["configs"][CONFIGS[1]]}
    (single / SWEEP_FILE).write_text(json.dumps(marker))
    (policy,) = parse_policy_specs([str(single)])
    assert policy.label == "single"
    assert policy.runs == tuple(str(single / CONFIGS[1] / f"s{s}") for s in (0, 1))
    (single / CONFIGS[1] / "s1" / TRIAL_FILE).unlink()  # an unfinished run is left out
    assert parse_policy_specs([str(single)])[0].runs == (str(single / CONFIGS[1] / "s0"),)
    (single / CONFIGS[1] / "s0" / TRIAL_FILE).unlink()
    with pytest.raises(EvaluationError, match="no finished runs"):
        parse_policy_specs([str(single)])


def test_a_worker_that_cannot_see_the_sweep_folder_sends_the_run_back(tmp_path: Path) -> None:
    """On a cluster without a shared filesystem the trial trains in scratch space and its folder travels back."""
    from training.config import parse_params

    plan = plan_sweep(ENV, [3], 256, None, {**parse_params(TINY), "save_freq": 0}, eval_episodes=2)
    (config,) = plan.configs
    out = tmp_path / "sw"
    out.mkdir()
    (out / SWEEP_FILE).write_text(json.dumps({"token": "the driver's"}))
    record = run_trial(TrialTask(Trial(config, 3), str(out), "another machine's", plan.configs[config], 2,
                                 tensorboard=False))
    run = out / config / "s3"
    assert not run.exists()
    unpack_folder(record.pop("archive"), run)
    assert read_trial(run) == record
    assert load_run_policy(run).artifacts.model.num_timesteps >= 256


def test_a_failed_trial_is_reported_and_the_others_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In this process (one short local Ray): an optimizer argument torch refuses passes validation (the config
    does not check the optimizer's own arguments) and fails in its trial."""
    out = tmp_path / "sw"
    argv = ["sweep", "--env", ENV, "--seeds", "0", "-n", "256", "--out", str(out), "--grid",
            "policy_kwargs={net_arch: [8]},{net_arch: [8], optimizer_kwargs: {eps: -1}}", "--eval-episodes", "2",
            "--reps", "50", "-q", "--no-tensorboard", "-params", *TINY[:5], "save_freq:0"]
    with pytest.raises(SystemExit) as exit_info:
        ipwarmup_cli.main(argv)
    captured = capsys.readouterr()
    good, bad = "policy_kwargs=net_arch_8", "policy_kwargs=net_arch_8_optimizer_kwargs_eps_-1"
    assert exit_info.value.code == 1
    failure = "ConfigError: the network the config describes cannot be built: Invalid epsilon value: -1"
    assert f"FAILED {bad}/s0: {failure}" in captured.err
    assert "1 of 2 trials failed" in captured.err.splitlines()[-1] and "Traceback" not in captured.err
    runs = pd.read_csv(out / "runs.csv").set_index("config")
    assert runs.loc[good, "status"] == "done"
    assert runs.loc[bad, "status"] == "failed"
    assert "Invalid epsilon value" in runs.loc[bad, "error"]
    assert list(pd.read_csv(out / "summary.csv")["config"].unique()) == [good]


def test_a_sweep_refuses_an_unknown_policy_before_any_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "--env", ENV, "--seeds", "0", "-n", "256", "--out", str(tmp_path / "sw"), "--grid",
            "policy=MlpPolicy,NoSuchPolicy", "-q", "-params", *TINY[:5]]
    with pytest.raises(SystemExit) as exit_info:
        ipwarmup_cli.main(argv)
    assert exit_info.value.code == 2
    assert "must be one of MlpPolicy, MlpLstmPolicy, got 'NoSuchPolicy'" in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()


def test_grid_values_split_outside_brackets() -> None:
    grid = parse_grid(["policy_kwargs={net_arch: [8, 8]},{net_arch: [16]}", "learning_rate=1e-3,3e-4"])
    assert grid == {"policy_kwargs": [{"net_arch": [8, 8]}, {"net_arch": [16]}], "learning_rate": [1e-3, 3e-4]}
    plan = plan_sweep(ENV, [0], 64, None, {}, grid)
    assert len(plan.configs) == 4 and len(set(plan.configs)) == 4
    assert plan.configs["policy_kwargs=net_arch_8_8,learning_rate=0.001"]["policy_kwargs"]["net_arch"] == [8, 8]


@pytest.mark.parametrize(("args", "message"), [
    (["-params", "n_env:4"], "unknown hyperparameter 'n_env'; did you mean 'n_envs'?"),
    (["--grid", "learning_rat=1e-3,3e-4"], "unknown hyperparameter 'learning_rat'; did you mean 'learning_rate'?"),
    (["--grid", "learning_rate="], "--grid learning_rate: empty value"),
    (["--grid", "learning_rate=1e-3,"], "--grid learning_rate: empty value"),
    (["--grid", "learning_rate"], "must look like key=value1,value2"),
    (["--grid", "n_steps=32,32"], "a value is repeated"),
    (["--grid", "n_steps=32", "n_steps=64"], "given twice"),
    (["--grid", "n_steps=[32"], "not valid YAML"),
    (["--grid", "n_steps=32,64", "-params", "n_steps:16"], "in both -params and --grid"),
    (["--grid", "n_steps=many"], "'n_steps' must be an integer"),
    (["--grid", f"n_steps={10**400}"], "'n_steps' must be a whole number of at most"),
    (["--grid", "n_steps=" + "9" * 5000], "not valid YAML (or a number too long to read): '99"),  # past 4,300 digits
    (["--seeds", "0", "0"], "repeated seed"),
    (["--env", "ipwarmup/NewIP-v9"], "unknown env id"),
    (["--address", "127.0.0.1:1"], "cannot reach a Ray cluster at '127.0.0.1:1'"),
    (["--address", "nowhere"], "must look like HOST:PORT"),
    (["--eval-episodes", "0"], "--eval-episodes must be in [1, 500,000]"),
    (["--eval-episodes", "500001"], "--eval-episodes must be in [1, 500,000]"),
])
def test_bad_sweep_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                     message: str) -> None:
    base = {"--env": ENV, "--seeds": "0", "-n": "64", "--out": str(tmp_path / "sw")}
    for flag in [a for a in args if a in base]:
        base.pop(flag)
    argv = ["sweep", *[x for kv in base.items() for x in kv], *args]
    with pytest.raises(SystemExit) as exit_info:
        ipwarmup_cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "sw").exists()  # nothing written for bad input


def test_sweep_out_must_be_new_or_the_same_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        ipwarmup_cli.main(["sweep", "--env", ENV, "--seeds", "0", "--out", str(foreign)])
    assert exit_info.value.code == 2 and "not a sweep folder" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    other = tmp_path / "other"
    other.mkdir()
    (other / SWEEP_FILE).write_text(json.dumps({"tool": "ipwarmup sweep", "token": "t", "configs": {},
                                                "env_id": ENV, "seeds": [5]}))
    with pytest.raises(SystemExit):
        ipwarmup_cli.main(["sweep", "--env", ENV, "--seeds", "0", "--out", str(other)])
    assert "holds a different sweep" in capsys.readouterr().err


def test_a_rerun_with_more_seeds_extends_the_sweep_and_nothing_else_does(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    plan = plan_sweep(ENV, [1, 2], n_timesteps=64, params=parse_params(TINY))
    token = prepare_out(out, plan, "first command")
    assert prepare_out(out, plan_sweep(ENV, [0, 1, 2], n_timesteps=64, params=parse_params(TINY)), "second") == token
    marker = json.loads((out / SWEEP_FILE).read_text())
    assert marker["seeds"] == [1, 2, 0] and marker["command"] == "second" and marker["token"] == token
    prepare_out(out, plan_sweep(ENV, [2, 0, 1], n_timesteps=64, params=parse_params(TINY)), "")  # same seeds, reordered
    assert json.loads((out / SWEEP_FILE).read_text()) == marker
    for seeds, overrides, what in (([1], {}, "seeds"), ([3, 4], {}, "seeds"),
                                   ([0, 1, 2, 3], {"learning_rate": 1e-3}, "configs")):
        with pytest.raises(SweepError, match=f"holds a different sweep \\({what} differ\\)"):
            prepare_out(out, plan_sweep(ENV, seeds, n_timesteps=64, params={**parse_params(TINY), **overrides}))
    assert json.loads((out / SWEEP_FILE).read_text()) == marker


def test_an_unreachable_cluster_is_one_line_from_the_real_command(tmp_path: Path) -> None:
    done = _cli("sweep", "--env", ENV, "--seeds", "0", "-n", "64", "--out", str(tmp_path / "sw"), "--address",
                "127.0.0.1:1", timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cannot reach a Ray cluster" in done.stderr


# --------------------------------------------------------------------------------------------- tune


SPACE = {"learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}, "policy_kwargs.net_arch": [[8], [16, 16]],
         "n_epochs": {"low": 1, "high": 2}}


def test_tune_writes_a_best_configuration_train_accepts_and_continues(tmp_path: Path) -> None:
    space = tmp_path / "space.yml"
    space.write_text(yaml.safe_dump(SPACE))
    out = tmp_path / "tune"
    args = ["tune", "--env", ENV, "-n", "256", "--trials", "3", "--out", str(out), "--space", str(space),
            "--n-evaluations", "2", "--eval-episodes", "2", "-q", "-params", *TINY[:3], "eval_freq:0", "save_freq:0"]
    done = _cli(*args)
    assert done.returncode == 0, done.stderr
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 3 and set(trials["state"]) <= {"complete", "pruned"}
    assert (trials["evaluations"] >= 1).all()  # the tuning evaluations ran (every 256 // 2 steps)
    best = resolve_config(ENV, out / "best.yml")  # what train.py -conf FILE does with it
    row = trials[trials["value"] == trials[trials["state"] == "complete"]["value"].max()].iloc[0]
    assert best["learning_rate"] == pytest.approx(row["param:learning_rate"])
    assert best["policy_kwargs"]["net_arch"] in ([8], [16, 16]) and best["n_epochs"] in (1, 2)
    assert best["n_steps"] == 32 and best["n_timesteps"] == 256 and best["eval_freq"] == 0  # the base's, kept
    run = out / "trials" / f"{int(row['number']):04d}"
    assert yaml.safe_load((run / "config.yaml").read_text())["learning_rate"] == best["learning_rate"]
    again = _cli(*args)
    assert again.returncode == 0 and "all 3 trials already finished" in again.stdout
    assert len(pd.read_csv(out / "trials.csv")) == 3


@pytest.mark.parametrize(("space", "message"), [
    ({"learning_rat": [1e-3]}, "did you mean 'learning_rate'"),
    ({"learning_rate": {"low": 1e-3, "high": 1e-4}}, "needs numbers low < high"),
    ({"learning_rate": {"low": 10**400, "high": 10**401}}, "needs numbers low < high"),  # no float holds them
    ({"learning_rate": {"low": 0, "high": 1e-3, "log": True}}, "low > 0 with log"),
    ({"n_steps": []}, "has no choices"),
    ({"n_steps": {"min": 1}}, "must be {low: A, high: B"),
    ([1, 2], "must map hyperparameters"),
])
def test_bad_search_space_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], space: object,
                                      message: str) -> None:
    path = tmp_path / "space.yml"
    path.write_text(yaml.safe_dump(space))
    with pytest.raises(SystemExit) as exit_info:
        ipwarmup_cli.main(["tune", "--env", ENV, "--trials", "2", "--out", str(tmp_path / "t"), "--space", str(path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "t").exists()


def test_the_shipped_search_space_is_valid() -> None:
    from training.tune import DEFAULT_SPACE, check_space, load_space

    space = load_space(DEFAULT_SPACE)
    assert {p.name for p in space} >= {"learning_rate", "n_steps", "policy_kwargs.net_arch"}
    check_space(space, resolve_config(ENV))
    assert parse_space({"x": [1]}, "t")[0].choices == (1,)
