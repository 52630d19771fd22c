"""Every adapter variant trains, and what it publishes loads on the original base and beats it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from stockpot_runtime.data.collate import pad_collate
from stockpot_runtime.data.dataset import load_splits, tokenize_records
from stockpot_runtime.spec import DataSpec
from stockpot_runtime.train.run import train
from tests.runtime.train.conftest import make_run

pytestmark = pytest.mark.runtime

VARIANTS: dict[str, dict[str, Any]] = {
    "lora": {"type": "lora"},
    "dora": {"type": "lora", "dora": True},
    "rslora": {"type": "lora", "rslora": True},
    "lora-plus": {"type": "lora", "loraPlusLrRatio": 16},
    "gaussian": {"type": "lora", "init": "gaussian"},
    "pissa": {"type": "lora", "init": "pissa"},
    "olora": {"type": "lora", "init": "olora"},
    "vera": {"type": "vera", "r": 16},
    "full-frozen-bottom": {"type": "full", "freezeLayers": 1},
}


def mean_loss(model: Any, data: Path, tokenizer: Any) -> float:
    spec = DataSpec(train=str(data), maxLength=64, valSplit=0.0)
    examples = tokenize_records(load_splits(spec, data).train[:64], tokenizer, spec)
    batch = pad_collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        return float(model(**batch).loss)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_adapter_variant_trains_and_publishes_a_loadable_artifact(
    variant: str, toy_model: Path, task_rows: Callable[..., Path], tmp_path: Path
) -> None:
    data = task_rows(n=256)
    run = make_run(
        toy_model,
        data,
        tmp_path / "artifact",
        peft={"r": 8, "alpha": 16, **VARIANTS[variant]},
        training={"epochs": 2, "lr": 1e-2 if variant != "full-frozen-bottom" else 2e-3, "batchSize": 16},
    )
    summary = train(run)
    final = tmp_path / "artifact" / "final"
    tokenizer = AutoTokenizer.from_pretrained(final)
    base = AutoModelForCausalLM.from_pretrained(toy_model).eval()
    base_loss = mean_loss(base, data, tokenizer)
    if run.peft.type == "full":
        trained = AutoModelForCausalLM.from_pretrained(final).eval()
        layer0 = "model.layers.0.self_attn.q_proj.weight"
        assert torch.equal(trained.state_dict()[layer0], base.state_dict()[layer0])  # frozen layer unchanged
    else:
        from peft import PeftModel

        trained = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(toy_model), final).eval()
        config = json.loads((final / "adapter_config.json").read_text())
        if variant in ("pissa", "olora"):
            assert config["r"] == 16  # converted to a plain LoRA of rank 2r for the original base
    assert mean_loss(trained, data, tokenizer) < base_loss - 0.5, summary.history[-2:]
