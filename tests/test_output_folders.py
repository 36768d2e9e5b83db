"""A tool never deletes or overwrites what it did not write: evaluate.py and export --out folders are created new
or carry the tool's marker, replacing one touches only the tool's files, a failure leaves the previous output,
and every argument is checked before any work."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from export_helpers import exported

import envs
from core.util import OUTPUT_MARKER
from deploy import runtime as rt
from evaluation import cli, runner
from evaluation.specs import EvaluationError
from training.export import ExportError, export_run

ENV = next(i for i in envs.ENV_IDS if "/NewIP-" in i) + ":horizon=5"


def evaluate(out: Path | str, *extra: str, plots: bool = False) -> dict[str, Any]:
    args = cli.build_parser().parse_args(["--policy", "aimd", "ses-standard", "--env", ENV, "--episodes", "2",
                                          "--reps", "20", "--out", str(out), *extra])
    return cli.execute(cli.resolve(args), Path(out), plots=plots, progress=False)


def no_staging_left(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.fixture
def no_episodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any episode run fails the test: what is checked must be checked before the work."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        pytest.fail("episodes ran before the arguments were checked")

    monkeypatch.setattr(runner, "run", refuse)


# --------------------------------------------------------------------------------------------- evaluate.py


def test_evaluate_never_replaces_a_folder_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           no_episodes: None) -> None:
    """Issue 11: a folder with manifest.json, thesis.tex and src/main.py was replaced by results."""
    thesis = tmp_path / "thesis"
    (thesis / "src").mkdir(parents=True)
    files = {"manifest.json": "{}", "thesis.tex": "\\documentclass{article}", "src/main.py": "print(1)"}
    for name, text in files.items():
        (thesis / name).write_text(text)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--policy", "aimd", "--env", ENV, "--out", str(thesis)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was not written by evaluate.py" in err[0]
    assert {str(p.relative_to(thesis)) for p in thesis.rglob("*") if p.is_file()} == set(files)
    assert all((thesis / n).read_text() == t for n, t in files.items())
    assert no_staging_left(tmp_path)


def test_out_dot_and_its_parents_are_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str],
                                                              no_episodes: None) -> None:
    """Issue 11: `evaluate.py --out .` ran the whole benchmark, then crashed leaving hidden folders."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in (".", "..", str(work), "./"):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["--policy", "aimd", "--env", ENV, "--out", out])
        assert exit_.value.code == 2
        assert "is the current folder or contains it" in capsys.readouterr().err
    assert os.listdir(work) == [] and os.listdir(tmp_path) == ["work"]


@pytest.mark.parametrize(("flag", "message"), [
    (["--metric", "retrun"], "--metric 'retrun' is not a KPI; did you mean 'return'?"),
    (["--reference", "ses-standrad"], "--reference 'ses-standrad' is not among the evaluated policies"),
])
def test_every_argument_is_checked_before_the_first_episode(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            no_episodes: None, flag: list[str], message: str) -> None:
    """Issue 11: `evaluate.py --metric typo` was rejected only after every episode had run."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--policy", "aimd", "ses-standard", "--env", ENV, "--out", str(tmp_path / "out"), *flag])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_replacing_results_touches_only_the_files_evaluate_wrote(tmp_path: Path) -> None:
    out = tmp_path / "results"
    evaluate(out, plots=True)
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots and (out / OUTPUT_MARKER).is_file()
    (out / "notes.txt").write_text("my notes")
    (out / "plots" / "mine.png").write_bytes(b"mine")
    before = (out / "episodes.csv").read_bytes()
    evaluate(out, "--seed", "2000100")  # no plots this time: evaluate's old plots go, the user's stay
    assert (out / "notes.txt").read_text() == "my notes" and (out / "plots" / "mine.png").read_bytes() == b"mine"
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["mine.png"]
    assert (out / "episodes.csv").read_bytes() != before
    marker = json.loads((out / OUTPUT_MARKER).read_text())
    assert marker["tool"] == "evaluate.py" and "notes.txt" not in marker["files"]
    assert sorted(marker["files"]) == sorted(str(p.relative_to(out)) for p in out.rglob("*")
                                             if p.is_file() and p.name not in (OUTPUT_MARKER, "notes.txt", "mine.png"))
    assert no_staging_left(tmp_path)


def test_a_result_file_edited_by_the_user_is_not_overwritten(tmp_path: Path, no_episodes: None) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "summary.md").write_text("my edits")
    (out / OUTPUT_MARKER).write_text(json.dumps({"tool": "evaluate.py", "format": 1,
                                                 "files": {"summary.md": ["0" * 64]}}))
    with pytest.raises(EvaluationError, match="summary.md was changed after evaluate.py wrote it"):
        evaluate(out)
    assert (out / "summary.md").read_text() == "my edits"


@pytest.mark.parametrize(("marker", "message"), [
    ({"tool": "evaluate.py", "format": 1, "files": {"../victim.txt": []}}, "not a file name inside the folder"),
    ({"tool": "evaluate.py", "format": 1, "files": {"/etc/hostname": []}}, "not a file name inside the folder"),
    ({"tool": "ipwarmup export", "format": 1, "files": {}}, "holds the output of 'ipwarmup export'"),
    ("[" * 100_000, "nested too deeply"),
])
def test_a_crafted_marker_cannot_make_evaluate_delete_other_files(tmp_path: Path, marker: Any, message: str,
                                                                   no_episodes: None) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (tmp_path / "victim.txt").write_text("keep")
    (out / OUTPUT_MARKER).write_text(marker if isinstance(marker, str) else json.dumps(marker))
    with pytest.raises(EvaluationError, match=message):
        evaluate(out)
    assert (tmp_path / "victim.txt").read_text() == "keep"


# --------------------------------------------------------------------------------------------- export


def test_export_never_writes_into_a_folder_it_did_not_write(tmp_path: Path) -> None:
    """Issue 11: `ipwarmup export --out` silently overwrote policy.json and schedule.csv in any folder."""
    run, _ = exported()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "policy.json").write_text('{"theirs": true}')
    with pytest.raises(ExportError, match="was not written by ipwarmup export"):
        export_run(run, theirs, days=2)
    assert os.listdir(theirs) == ["policy.json"] and (theirs / "policy.json").read_text() == '{"theirs": true}'


def test_a_failed_export_leaves_the_previous_export_intact_and_no_empty_folder(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: every failed export left an empty --out; a crash mid-export broke a working export."""
    import training.export as export

    run, _ = exported()
    out = tmp_path / "out"
    export_run(run, out, days=3)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(export, "rollout_schedule", crash)
    with pytest.raises(RuntimeError):
        export_run(run, out, days=4)
    with pytest.raises(RuntimeError):
        export_run(run, tmp_path / "new" / "nested" / "out", days=4)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging folder, no empty new/nested/
    rt.load(out)


def test_a_crash_while_publishing_leaves_a_folder_the_next_export_repairs(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between two renames: the marker already lists old and new files, so nothing is orphaned."""
    import core.util

    run, _ = exported()
    out = tmp_path / "out"
    export_run(run, out, days=3)
    real_replace, calls = os.replace, []

    def replace_then_die(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 4:  # the marker, then two files, then the crash
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(core.util.os, "replace", replace_then_die)
    with pytest.raises(OSError, match="power cut"):
        export_run(run, out, days=5)
    monkeypatch.setattr(core.util.os, "replace", real_replace)
    export_run(run, out, days=5)
    assert len(json.loads((out / "schedule.json").read_text())["days"]) == 5
    rt.load(out)
    assert sorted(os.listdir(out)) == sorted([OUTPUT_MARKER, "policy.json", "policy.onnx", "schedule.csv",
                                              "schedule.json"])


def test_re_export_replaces_only_its_own_files(tmp_path: Path) -> None:
    run, _ = exported()
    out = tmp_path / "out"
    export_run(run, out, days=3)
    (out / "README.txt").write_text("deployed by ops")
    export_run(run, out, days=6)
    assert (out / "README.txt").read_text() == "deployed by ops"
    assert len(json.loads((out / "schedule.json").read_text())["days"]) == 6
    assert rt.load(out).card["schedule"]["env_kwargs"]["horizon"] == 6


def test_two_exports_at_once_do_not_collide(tmp_path: Path) -> None:
    """Issue 11: export's temporary names were fixed, so two exports collided."""
    run, _ = exported()
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def one(days: int) -> None:
        try:
            export_run(run, out, days=days)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(d,)) for d in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    card = rt.load(out).card  # whichever finished last, the card and its graph belong together
    assert len(json.loads((out / "schedule.json").read_text())["days"]) == card["schedule"]["env_kwargs"]["horizon"]
    assert no_staging_left(tmp_path)


def test_an_empty_folder_may_be_used_and_is_then_the_tools(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    export_run(exported()[0], out, days=2)
    assert json.loads((out / OUTPUT_MARKER).read_text())["tool"] == "ipwarmup export"
    shutil.rmtree(out)


def test_train_out_must_be_new_or_empty(tmp_path: Path) -> None:
    """train.py writes config.yaml, model.zip ... by name: a folder holding other files is refused."""
    from training.config import ConfigError
    from training.run import train

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "model.zip").write_bytes(b"someone else's")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        train(ENV.split(":")[0], 0, theirs, 64, overrides={"n_envs": 4, "n_steps": 16, "batch_size": 32},
              tensorboard=False)
    assert os.listdir(theirs) == ["model.zip"] and (theirs / "model.zip").read_bytes() == b"someone else's"
