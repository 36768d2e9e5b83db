"""benchmarks/sensitivity.py with a trained policy: it is played like a baseline and ranked as P."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from export_helpers import exported

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import sensitivity  # noqa: E402


def test_a_trained_policy_is_ranked_with_the_baselines_under_each_perturbation(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    run, _ = exported()
    out = tmp_path / "sens.csv"
    sensitivity.main(["--seeds", "20", "--only", "spike_penalty", "--policy", str(run),
                      "--policies", "ppo", "aimd", "--csv", str(out)])
    report = capsys.readouterr().out
    assert f"A aimd, P ppo (P: {run})" in report
    assert "| ppo vs aimd |" in report and "| ses-managed" not in report
    rows = list(csv.DictReader(out.open()))
    assert {r["policy"] for r in rows} == {"ppo", "aimd"}
    assert {r["policy_source"] for r in rows if r["policy"] == "ppo"} == {str(run)}
    assert len([r for r in rows if r["policy"] == "ppo"]) == 3 * 20  # default, x0.5, x2
    # The report is reproduced from the CSV alone.
    sensitivity.main(["--from-csv", str(out)])
    assert capsys.readouterr().out == report.rsplit("\n(wall time", 1)[0]


def test_ppo_without_a_policy_path_is_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        sensitivity.main(["--policies", "ppo", "aimd"])
    assert exc.value.code == 2
    assert "--policies ppo needs --policy PATH" in capsys.readouterr().err
