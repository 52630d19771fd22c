"""The corpus of bad resources: each is rejected, and the message names the offending field."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from stockpot_operator.api import DocumentError, parse_spec

pytestmark = pytest.mark.unit

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "bad_resources.yaml").read_text())


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 20
    assert len({c["case"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["case"])
def test_model_rejects_and_names_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_spec(case["resource"])
    paths = [error.path for error in caught.value.errors]
    assert case["field"] in paths, f"{case['field']} not in {paths}: {caught.value}"
    assert case["field"] in str(caught.value)


SCHEMA_BLIND = [c for c in CASES if c["crd"] == "webhook" and c["resource"]["apiVersion"] == "stockpot.dev/v1alpha1"]


@pytest.mark.parametrize("case", SCHEMA_BLIND, ids=lambda c: c["case"])
def test_webhook_only_cases_pass_the_schema(case: dict[str, Any], crd_validator) -> None:
    """These need the webhook (or pydantic): the schema alone lets them through — which is why it exists."""
    assert list(crd_validator(case["resource"]["kind"]).iter_errors(case["resource"])) == []


def test_every_error_is_reported_at_once() -> None:
    resource = {
        "apiVersion": "stockpot.dev/v1alpha1",
        "kind": "FineTune",
        "metadata": {"name": "many"},
        "spec": {
            "model": {"uri": "hf://a/b"},
            "data": {"train": "s3://datasets/t.jsonl", "format": "chatml"},
            "training": {"lr": 0, "epochs": 0, "warmupRatio": 2},
            "peft": {"r": -1},
            "output": {"uri": "s3://artifacts"},
        },
    }
    with pytest.raises(DocumentError) as caught:
        parse_spec(resource)
    paths = {error.path for error in caught.value.errors}
    assert {"spec.training.lr", "spec.training.epochs", "spec.training.warmupRatio", "spec.peft.r"} <= paths


def test_cross_field_problems_are_reported_together() -> None:
    resource = {
        "apiVersion": "stockpot.dev/v1alpha1",
        "kind": "FineTune",
        "metadata": {"name": "cross"},
        "spec": {
            "model": {"uri": "hf://a/b"},
            "data": {"train": "s3://datasets/t.jsonl", "format": "chatml"},
            "method": {"task": "dpo"},
            "peft": {"type": "full", "quantization": "4bit"},
            "resources": {"gpus": 0},
            "output": {"uri": "s3://artifacts"},
        },
    }
    with pytest.raises(DocumentError) as caught:
        parse_spec(resource)
    assert {error.path for error in caught.value.errors} >= {"spec.data.format", "spec.peft.quantization"}
