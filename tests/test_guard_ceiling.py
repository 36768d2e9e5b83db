"""benchmarks/guard_ceiling.py: the never-jump ceiling, and the same planner held to a training prior's day 1."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import guard_ceiling  # noqa: E402


def test_the_prior_s_day_one_costs_the_planner_return(capsys: pytest.CaptureFixture) -> None:
    """On a short NewIP-v1 episode, starting day 1 from the Randomized prior's floor (50 a provider) instead of
    NewIP's true cold acceptance (hundreds) loses return, and the paired line is printed against ses-standard."""
    guard_ceiling.main(["-n", "3", "-w", "1", "--env", "ipwarmup/NewIP-v1:horizon=8"])
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ipwarmup/NewIP-v1")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    nojump, floor, ses = (float(c) for c in cells[1:4])
    assert nojump > floor + 0.5
    assert re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] \d/3", cells[4])
    assert abs(float(cells[4].split()[0]) - (floor - ses)) < 0.011


@pytest.mark.parametrize("args, message", [(["--prior", "nope"], "unknown scenario"),
                                           (["--env", "ipwarmup/Nope-v1"], "unknown"),
                                           (["-n", "1"], "--episodes")])
def test_bad_input_is_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        guard_ceiling.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
