"""The refactoring invariant (benchmarks/invariant.py): training, resuming, generating and
evaluating give, bit for bit, what the code gave when the fingerprints were recorded (before the
training core was reshaped). Run under portable kernels, so any x86-64 machine computes the
same bits; see the script's docstring."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
FINGERPRINTS = ROOT / "benchmarks" / "invariant-small.json"


def test_training_generating_and_evaluating_are_unchanged(real_data):
    recorded = json.loads(FINGERPRINTS.read_text())
    assert set(recorded["cases"]) == {"default", "cdcgan-bce", "cgan-wgan-gp", "rpgan-r1r2-ema"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "invariant.py"),
            "check",
            str(FINGERPRINTS),
            "--data",
            str(real_data),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert result.stdout.strip().endswith("invariant holds")
