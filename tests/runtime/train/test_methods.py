"""Every method family trains on the toy model and its objective moves the right way."""

from __future__ import annotations

from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from stockpot_runtime.storage.manifest import read_manifest
from stockpot_runtime.train.run import train
from tests.runtime.train.conftest import make_run, preference_rows, write_jsonl

pytestmark = pytest.mark.runtime


def train_metric(history: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Mean of ``key`` over the first and over the last three logged training steps."""
    values = [r[key] for r in history if key in r and "eval_loss" not in r]
    return mean(values[:3]), mean(values[-3:])


@pytest.mark.parametrize("task", ["dpo", "ipo", "simpo", "orpo", "bco"])
def test_paired_preference_methods_learn_to_prefer_chosen(task: str, toy_model: Path, tmp_path: Path) -> None:
    run = make_run(
        toy_model,
        write_jsonl(tmp_path / "pairs.jsonl", preference_rows(160)),
        tmp_path / "artifact",
        method={"task": task},
        training={"epochs": 2, "lr": 1e-2, "batchSize": 8},
        peft={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
    )
    summary = train(run)
    first, last = train_metric(summary.history, "reward_accuracy")
    assert last >= 0.8, (first, last)
    assert last > first, (first, last)
    assert summary.eval["eval_reward_accuracy"] >= 0.7, summary.eval
    assert read_manifest(str(tmp_path / "artifact"))["lineage"]["task"] == task


def test_kto_learns_the_sign_of_each_label(toy_model: Path, tmp_path: Path) -> None:
    run = make_run(
        toy_model,
        write_jsonl(tmp_path / "kto.jsonl", preference_rows(160, fmt="kto")),
        tmp_path / "artifact",
        method={"task": "kto"},
        training={"epochs": 2, "lr": 1e-2, "batchSize": 8},
    )
    summary = train(run)
    first, last = train_metric(summary.history, "signed_reward")
    assert last > first, (first, last)
    assert last > 0, (first, last)
    assert summary.eval["eval_reward_accuracy"] >= 0.7, summary.eval


def test_reward_model_ranks_chosen_above_rejected(toy_model: Path, tmp_path: Path) -> None:
    run = make_run(
        toy_model,
        write_jsonl(tmp_path / "pairs.jsonl", preference_rows(160)),
        tmp_path / "artifact",
        method={"task": "reward_model"},
        training={"epochs": 2, "lr": 1e-2, "batchSize": 8},
    )
    summary = train(run)
    first, last = train_metric(summary.history, "reward_accuracy")
    assert last >= 0.8, (first, last)
    assert last > first, (first, last)
    assert summary.eval["eval_reward_accuracy"] >= 0.7, summary.eval
