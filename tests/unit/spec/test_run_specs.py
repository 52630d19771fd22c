"""The runtime's input contract: light to import, strict to parse, every error at once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stockpot_runtime.spec import RunSpecError, TrainRun, load_run

pytestmark = pytest.mark.unit


def test_spec_import_does_not_pull_torch() -> None:
    code = "import sys, stockpot_runtime.spec; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def minimal_train_run() -> dict[str, object]:
    return {
        "model": {"uri": "s3://models/tiny"},
        "data": {"train": "s3://datasets/train.jsonl", "format": "chatml"},
        "artifactUri": "s3://artifacts/ns/finetune/x/uid",
    }


def test_defaults_follow_soup() -> None:
    run = TrainRun.model_validate(minimal_train_run())
    assert (run.training.lr, run.training.epochs, run.training.warmup_ratio) == (2e-5, 3, 0.03)
    assert (run.peft.r, run.peft.alpha, run.peft.dropout) == (64, 16, 0.05)
    assert run.data.effective_val_split == 0.1
    assert run.checkpoint.every_steps == 100
    assert run.method.resolved_preference().beta == 0.1


def test_round_trip_through_the_wire_form(tmp_path: Path) -> None:
    run = TrainRun.model_validate(minimal_train_run())
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run.to_wire()))
    assert load_run(TrainRun, path) == run
    assert "artifactUri" in run.to_wire()


def test_load_run_lists_every_problem(tmp_path: Path) -> None:
    bad = {**minimal_train_run(), "training": {"lr": -1, "batchSize": 0}, "surprise": 1}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(RunSpecError) as caught:
        load_run(TrainRun, path)
    assert {e.path for e in caught.value.errors} == {"training.lr", "training.batchSize", "surprise"}
    assert str(path) in str(caught.value)
