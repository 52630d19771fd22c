"""Interrupted runs resume from their newest complete checkpoint and continue exactly as if never stopped."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stockpot_runtime.spec import TrainRun
from stockpot_runtime.storage.checkpoints import CheckpointStore
from stockpot_runtime.storage.manifest import MANIFEST_NAME
from stockpot_runtime.storage.progress import read_progress
from stockpot_runtime.train.loop import Preempted
from stockpot_runtime.train.metrics import TrainingMetrics
from stockpot_runtime.train.run import train
from tests.runtime.train.conftest import make_run

pytestmark = pytest.mark.runtime

# LoRA dropout on, gradient accumulation, warmup + cosine: every piece of state a resume must restore matters.
SPEC: dict[str, Any] = {
    "training": {
        "maxSteps": 12,
        "lr": 5e-3,
        "batchSize": 8,
        "gradientAccumulationSteps": 2,
        "scheduler": "cosine",
        "warmupRatio": 0.2,
        "loggingSteps": 1,
    },
    "peft": {"type": "lora", "r": 8, "dropout": 0.1},
    "checkpoint": {"everySteps": 4, "keep": 2},
}


def losses(history: list[dict[str, Any]]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in history if "eval_loss" not in r}


def interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int, action: Callable[[], None]) -> None:
    """Run ``action`` when the loop logs ``step`` (the metrics observer sees every logged record)."""
    original = TrainingMetrics.observe

    def observe(self: TrainingMetrics, record: dict[str, Any]) -> None:
        original(self, record)
        if record.get("step") == step and "eval_loss" not in record:
            action()

    monkeypatch.setattr(TrainingMetrics, "observe", observe)


@pytest.fixture
def runs(toy_model: Path, task_rows: Callable[..., Path], tmp_path: Path) -> Callable[[str], TrainRun]:
    data = task_rows(n=400)
    return lambda name: make_run(toy_model, data, tmp_path / name, **SPEC)


def test_sigterm_checkpoints_and_the_resumed_run_matches_an_uninterrupted_one(
    runs: Callable[[str], TrainRun], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reference = losses(train(runs("straight")).history)

    interrupted = runs("interrupted")
    with monkeypatch.context() as patch:
        interrupt_at(patch, 6, lambda: os.kill(os.getpid(), signal.SIGTERM))
        with pytest.raises(Preempted) as stopped:
            train(interrupted)
    assert (stopped.value.step, stopped.value.checkpointed) == (6, True)
    assert not (tmp_path / "interrupted" / MANIFEST_NAME).exists()
    assert [ref.step for ref in CheckpointStore(tmp_path / "interrupted" / "checkpoints").complete()] == [4, 6]

    resumed = train(interrupted)
    assert resumed.resumes == 1
    continued = losses(resumed.history)
    assert sorted(continued) == list(range(7, 13))
    for step, loss in continued.items():
        assert loss == pytest.approx(reference[step], abs=1e-4), step
    progress = read_progress(str(tmp_path / "interrupted"))
    assert progress is not None
    assert progress["resumes"] == 1


def test_a_crash_loses_at_most_the_checkpoint_interval(
    runs: Callable[[str], TrainRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = losses(train(runs("straight")).history)

    def crash() -> None:
        raise RuntimeError("node lost")

    crashed = runs("crashed")
    with monkeypatch.context() as patch:
        interrupt_at(patch, 7, crash)
        with pytest.raises(RuntimeError, match="node lost"):
            train(crashed)
    continued = losses(train(crashed).history)
    assert min(continued) == 5  # resumed from the step-4 checkpoint: steps 5-7 are redone
    for step, loss in continued.items():
        assert loss == pytest.approx(reference[step], abs=1e-4), step


def test_a_finished_run_is_not_trained_again(runs: Callable[[str], TrainRun]) -> None:
    run = runs("done")
    first = train(run)
    again = train(run)
    assert again.artifact == first.artifact
    assert again.steps == 0


def test_activation_checkpointing_trains_the_same_losses(
    toy_model: Path, task_rows: Callable[..., Path], tmp_path: Path
) -> None:
    """Recomputed layers replay the RNG (LoRA dropout included), so checkpointing changes memory, not training."""
    data = task_rows(n=400)
    histories = []
    for checkpointing in (False, True):
        training = {**SPEC["training"], "maxSteps": 4, "gradientCheckpointing": checkpointing}
        run = make_run(toy_model, data, tmp_path / str(checkpointing), **{**SPEC, "training": training})
        histories.append(losses(train(run).history))
    assert sorted(histories[1]) == [1, 2, 3, 4]
    for step, loss in histories[1].items():
        assert loss == pytest.approx(histories[0][step], abs=1e-5), step
