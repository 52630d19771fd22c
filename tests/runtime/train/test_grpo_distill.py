"""GRPO and distillation start from a model that already half-knows the task (a short SFT run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from statistics import mean

import pytest

from stockpot_runtime.toy.tasks import Task, rows
from stockpot_runtime.train.run import train
from tests.runtime.train.conftest import accuracy, make_run, write_jsonl

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def half_trained(learner_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of full-model SFT on add: roughly half the held-out prompts answered right."""
    work = tmp_path_factory.mktemp("half")
    run = make_run(
        learner_model,
        write_jsonl(work / "add.jsonl", rows(Task.ADD, 2000)),
        work / "sft",
        peft={"type": "full"},
        training={"epochs": 1, "lr": 1e-3, "batchSize": 16, "loggingSteps": 50, "scheduler": "constant"},
    )
    train(run)
    return work / "sft" / "final"


def test_grpo_raises_the_verifiable_reward(half_trained: Path, tmp_path: Path) -> None:
    """The accuracy reward of greedy answers (the policy's mode) rises by at least 10 points."""
    before = accuracy(half_trained)
    run = make_run(
        half_trained,
        write_jsonl(tmp_path / "prompts.jsonl", rows(Task.ADD, 400, seed=3)),
        tmp_path / "grpo",
        method={"task": "grpo", "grpo": {"numGenerations": 8, "maxCompletionLength": 4, "beta": 0.0}},
        peft={"type": "full"},
        training={"maxSteps": 150, "lr": 1e-4, "batchSize": 4, "loggingSteps": 10, "scheduler": "constant"},
        data={"valSplit": 0.05},
    )
    summary = train(run)
    after = accuracy(tmp_path / "grpo" / "final")
    assert after >= before + 0.10, (before, after)
    rewards = [r["reward"] for r in summary.history if "reward" in r]
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert "eval_reward_accuracy" in summary.eval


def test_grpo_with_kl_uses_the_adapter_free_reference(half_trained: Path, tmp_path: Path) -> None:
    run = make_run(
        half_trained,
        write_jsonl(tmp_path / "prompts.jsonl", rows(Task.ADD, 64, seed=4)),
        tmp_path / "grpo",
        method={"task": "grpo", "grpo": {"numGenerations": 4, "maxCompletionLength": 4, "beta": 0.1}},
        training={"maxSteps": 6, "lr": 1e-3, "batchSize": 4, "scheduler": "constant"},
    )
    summary = train(run)
    kls = [r["kl"] for r in summary.history if "kl" in r and "eval_loss" not in r]
    assert kls[0] == pytest.approx(0.0, abs=1e-6)  # the adapter starts at zero: policy == reference
    assert max(kls) > 0.0


def test_distillation_pulls_the_student_towards_the_teacher(
    half_trained: Path, toy_model: Path, task_rows: Callable[..., Path], tmp_path: Path
) -> None:
    run = make_run(
        toy_model,
        task_rows(n=400),
        tmp_path / "student",
        method={"task": "distill", "distill": {"teacher": {"uri": str(half_trained)}, "temperature": 2.0}},
        peft={"type": "full"},
        training={"epochs": 2, "lr": 3e-3, "batchSize": 16},
    )
    summary = train(run)
    kd = [r["distill_loss"] for r in summary.history if "distill_loss" in r and "eval_loss" not in r]
    assert mean(kd[-3:]) < 0.5 * mean(kd[:3]), (kd[:3], kd[-3:])
