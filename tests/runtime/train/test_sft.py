"""SFT and pretraining on the toy model: the objective falls, the task is learned, the artifact is complete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stockpot_runtime.storage.manifest import read_manifest, verify
from stockpot_runtime.storage.progress import read_progress
from stockpot_runtime.train.run import train
from tests.runtime.train.conftest import accuracy, make_run, write_jsonl

pytestmark = pytest.mark.runtime


def test_sft_learns_the_add_task(learner_model: Path, task_rows: Callable[..., Path], tmp_path: Path) -> None:
    """Full fine-tuning takes held-out accuracy from < 10 % to >= 90 % (about 30 s on 2 CPU cores)."""
    before = accuracy(learner_model)
    run = make_run(
        learner_model,
        task_rows(n=2000),
        tmp_path / "artifact",
        peft={"type": "full"},
        training={
            "epochs": 3,
            "lr": 1e-3,
            "batchSize": 16,
            "loggingSteps": 20,
            "scheduler": "cosine",
            "warmupRatio": 0.05,
            "weightDecay": 0.0,
        },
    )
    summary = train(run)
    after = accuracy(tmp_path / "artifact" / "final")
    assert before < 0.10
    assert after >= 0.90, summary.history[-3:]
    manifest = read_manifest(str(tmp_path / "artifact"))
    assert manifest["kind"] == "model"
    assert manifest["lineage"]["baseModel"] == str(learner_model)
    assert manifest["lineage"]["dataDigest"].startswith("sha256:")
    verify(str(tmp_path / "artifact"))
    progress = read_progress(str(tmp_path / "artifact"))
    assert progress is not None
    assert progress["step"] == progress["totalSteps"] == summary.steps


def test_pretrain_loss_falls_on_plain_text(toy_model: Path, tmp_path: Path) -> None:
    texts = [{"text": f"the sum of {a} and {b} is {a + b}"} for a in range(10) for b in range(10)] * 3
    run = make_run(
        toy_model,
        write_jsonl(tmp_path / "corpus.jsonl", texts),
        tmp_path / "artifact",
        method={"task": "pretrain"},
        training={"epochs": 4, "lr": 3e-3, "batchSize": 4},
        peft={"type": "full"},
        data={"format": "plaintext", "packing": "concat"},
    )
    summary = train(run)
    losses = [r["loss"] for r in summary.history if "loss" in r]
    assert losses[-1] < 0.6 * losses[0]
    assert read_manifest(str(tmp_path / "artifact"))["kind"] == "model"
