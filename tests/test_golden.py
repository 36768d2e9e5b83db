"""Golden episodes and a golden export: the same seed gives the same bytes, so a refactor cannot change behaviour.

The digests in ``tests/golden/digests.json`` were recorded from the code before a change meant to keep
behaviour. A change meant to alter behaviour (new dynamics, a new export format) regenerates them with
``python tests/test_golden.py`` and says so in its commit message.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs
from agents import load_policy

GOLDEN = Path(__file__).parent / "golden" / "digests.json"
POLICIES = ("ses-standard", "aimd", "ses-managed", "oracle", "random")
SEED = 7
INFO_KEYS = ("sent", "delivered", "inbox", "deferred", "bounced", "blocked", "complaints", "reputation")


def episode_digest(env_id: str, policy: str, seed: int = SEED) -> str:
    """sha256 over every observation, reward and per-provider count of one episode."""
    env = gymnasium.make(env_id)
    actor = load_policy(policy, env)
    digest = hashlib.sha256()
    obs, _ = env.reset(seed=seed)
    digest.update(np.asarray(obs, np.float32).tobytes())
    start = True
    while True:
        action, _ = actor.predict(obs[None], episode_start=np.array([start]), deterministic=True)
        start = False
        obs, reward, terminated, truncated, info = env.step(action[0])
        digest.update(np.asarray(obs, np.float32).tobytes())
        digest.update(np.float64(reward).tobytes())
        for key in INFO_KEYS:
            digest.update(np.asarray(info[key]).tobytes())
        if terminated or truncated:
            return digest.hexdigest()


PORTABLE_MATH = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}
"""torch picks its kernels by CPU (MKL's code paths, AVX2 or AVX-512 in ATen and oneDNN), and floating-point sums
in another order train other bytes: the digest recorded on one machine failed on an AMD EPYC with AVX-512, while
the simulator's golden episodes held. These settings pin the portable kernels, so the golden export records the
code, not the machine it trained on."""


def export_digests() -> dict[str, str]:
    """The golden export's digests, trained and exported in a child process with :data:`PORTABLE_MATH` (torch
    reads them when it loads)."""
    code = "import json, test_golden; print(json.dumps(test_golden.export_digests_here()))"
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, **PORTABLE_MATH}, capture_output=True,
                            text=True, cwd=Path(__file__).parent)
    assert result.returncode == 0, result.stderr
    digests: dict[str, str] = json.loads(result.stdout.splitlines()[-1])
    return digests


def export_digests_here() -> dict[str, str]:
    from export_helpers import exported

    folder = exported()[1]
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("policy.onnx", "schedule.csv")}


def recorded() -> dict[str, str]:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_golden_episodes_repeat_byte_for_byte(env_id: str) -> None:
    golden = recorded()
    for policy in POLICIES:
        assert episode_digest(env_id, policy) == golden[f"{env_id}|{policy}|{SEED}"], (env_id, policy)


def test_golden_export_repeats_byte_for_byte() -> None:
    golden = recorded()
    for name, digest in export_digests().items():
        assert digest == golden[name], name


if __name__ == "__main__":  # regenerate after an intended behaviour change
    sys.path.insert(0, str(Path(__file__).parent))
    digests = {f"{e}|{p}|{SEED}": episode_digest(e, p) for e in envs.ENV_IDS for p in POLICIES}
    digests.update(export_digests())
    GOLDEN.write_text(json.dumps(digests, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
