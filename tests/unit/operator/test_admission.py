"""Admission: every problem at once, named by field — the models' errors plus what CEL cannot see."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from stockpot_operator.admission import finetune_problems, quantity

pytestmark = pytest.mark.unit


def document(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": {"uri": "hf://org/model"},
        "data": {"train": "s3://datasets/t.jsonl", "format": "chatml"},
        "output": {"uri": "s3://artifacts"},
        "credentials": {"s3Secret": "s3-credentials"},
        "resources": {"gpus": 1, "memory": "32Gi"},
    }
    for key, value in spec.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return {"apiVersion": "stockpot.dev/v1alpha1", "kind": "FineTune", "metadata": {"name": "ft"}, "spec": base}


def exists(*names: str) -> Any:
    return lambda name: name in names


def test_a_good_finetune_is_admitted() -> None:
    assert finetune_problems(document(), None, exists("s3-credentials")) == []


def test_every_problem_is_reported_at_once_with_its_field() -> None:
    bad = document(
        method={"task": "dpo"},
        resources={"gpus": 0, "memory": "4Gi", "shmSize": "8Gi"},
        credentials={"huggingFaceSecret": "hf"},
        peft={"quantization": "4bit"},
    )
    problems = finetune_problems(bad, None, exists())
    assert any(p.startswith("spec.data.format") for p in problems)
    assert any(p.startswith("spec.peft.quantization") for p in problems)
    # model errors come first; the rest is checked once the spec parses
    good_shape = document(resources={"memory": "4Gi", "shmSize": "8Gi"}, credentials={"huggingFaceSecret": "hf"})
    problems = finetune_problems(good_shape, None, exists())
    assert [p.split(":")[0] for p in problems] == [
        "spec.credentials.s3Secret",
        "spec.credentials.huggingFaceSecret",
        "spec.resources.shmSize",
    ]


def test_only_suspend_may_change_after_the_run_started() -> None:
    old = {**document(), "status": {"phase": "Running"}}
    assert finetune_problems(document(suspend=True), old, exists("s3-credentials")) == []
    changed = finetune_problems(document(training={"lr": 0.1}), old, exists("s3-credentials"))
    assert changed == [
        "spec: immutable once the run has started (only spec.suspend may change) — create a new FineTune"
    ]
    pending = {**document(), "status": {"phase": "Pending"}}
    assert finetune_problems(document(training={"lr": 0.1}), pending, exists("s3-credentials")) == []


@pytest.mark.parametrize(
    ("text", "value"), [("8Gi", 8 * 2**30), ("500M", 500 * 10**6), ("1.5", Decimal("1.5")), ("250m", Decimal("0.25"))]
)
def test_quantities(text: str, value: Decimal) -> None:
    assert quantity(text) == value
