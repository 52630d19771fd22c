"""`make demo` end to end: it must keep running on a fresh machine, and say what it did."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_the_local_stack_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stockpot_local.demo"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "finetune.stockpot.dev/support-bot created" in out
    assert 'The FineTune "typo" is invalid: spec.training.lr' in out
    assert "job.batch/toy-publish condition met" in out
    assert "finetune.stockpot.dev/add condition met" in out  # kubectl wait --for=condition=Succeeded
    assert '"result": "Succeeded"' in out  # the trainer's summary line in the pod log
    assert "final/model.safetensors" in out  # the fine-tuned model's manifest, read back from S3
    assert "matches status.artifact.manifestSha256" in out
    assert '"summary": "60/60 (100%)"' in out
    assert "every process stopped" in out
