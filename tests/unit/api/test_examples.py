"""Every shipped example parses with its model and validates against its generated CRD schema."""

from pathlib import Path

import pytest
import yaml

from stockpot_operator.api import KINDS_BY_NAME, parse_spec

pytestmark = pytest.mark.unit

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "docs" / "examples").glob("*.yaml"))


def test_there_is_an_example_per_kind_and_method_family() -> None:
    docs = [yaml.safe_load(p.read_text()) for p in EXAMPLES]
    assert {d["kind"] for d in docs} == set(KINDS_BY_NAME)
    tasks = {d["spec"].get("method", {}).get("task", "sft") for d in docs if d["kind"] == "FineTune"}
    assert {"sft", "pretrain", "dpo", "simpo", "kto", "grpo", "reward_model", "distill"} <= tasks


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path, crd_validator) -> None:
    document = yaml.safe_load(path.read_text())
    parse_spec(document)
    errors = [e.message for e in crd_validator(document["kind"]).iter_errors(document)]
    assert errors == []
