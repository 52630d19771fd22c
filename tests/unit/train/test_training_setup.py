"""Pure pieces of the trainer: hardware checks, adapters' configs, parameter groups, step arithmetic, batching."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from prometheus_client import generate_latest

from stockpot_runtime.spec import TrainRun
from stockpot_runtime.spec.peft import PeftSpec
from stockpot_runtime.spec.training import TrainingSpec
from stockpot_runtime.train import adapters, loading
from stockpot_runtime.train.loop import BatchPlan
from stockpot_runtime.train.metrics import TrainingMetrics
from stockpot_runtime.train.optimization import parameter_groups, warmup_steps
from stockpot_runtime.train.run import lineage, loop_settings, storage_env

pytestmark = pytest.mark.unit


def run_spec(**sections: Any) -> TrainRun:
    return TrainRun.model_validate(
        {
            "model": {"uri": "s3://models/base"},
            "data": {"train": "s3://data/train.jsonl"},
            "artifactUri": "s3://out/x",
            **sections,
        }
    )


def test_gpu_only_settings_are_refused_on_cpu_naming_field_and_fix() -> None:
    run = run_spec(peft={"quantization": "4bit"}, training={"optimizer": "paged_adamw_8bit", "precision": "fp16"})
    problems = loading.hardware_problems(run, cuda=False)
    assert [p.split(":")[0] for p in problems] == ["peft.quantization", "training.optimizer", "training.precision"]
    assert "quantization: none" in problems[0]
    assert loading.hardware_problems(run, cuda=True) == []
    with pytest.raises(loading.HardwareError, match="no CUDA GPU"):
        loading.require_hardware(run, cuda=False)


@pytest.mark.parametrize(("precision", "expected"), [("auto", None), ("fp32", None), ("bf16", torch.bfloat16)])
def test_cpu_placement(precision: str, expected: torch.dtype | None) -> None:
    where = loading.placement(TrainingSpec(precision=precision).precision, cuda=False)
    assert where.device.type == "cpu"
    assert where.autocast_dtype == expected


def test_qlora_config_is_nf4_with_double_quantization() -> None:
    config = loading.quantization_config(PeftSpec(quantization="4bit").quantization, torch.bfloat16)
    assert config.load_in_4bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant
    assert loading.quantization_config(PeftSpec().quantization, None) is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {"r": 64, "lora_alpha": 16, "use_dora": False, "use_rslora": False, "init_lora_weights": True}),
        ({"dora": True, "rslora": True}, {"use_dora": True, "use_rslora": True}),
        ({"init": "pissa"}, {"init_lora_weights": "pissa"}),
        ({"init": "olora"}, {"init_lora_weights": "olora"}),
        ({"targetModules": ["q_proj", "v_proj"]}, {"target_modules": {"q_proj", "v_proj"}}),
    ],
)
def test_lora_config_mapping(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    config = adapters.peft_config(PeftSpec.model_validate(spec))
    for key, value in expected.items():
        assert getattr(config, key) == value, key


def test_vera_and_full_configs() -> None:
    assert type(adapters.peft_config(PeftSpec(type="vera", r=32))).__name__ == "VeraConfig"
    assert adapters.peft_config(PeftSpec(type="full")) is None


class TwoLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lora_A = torch.nn.ModuleDict({"default": torch.nn.Linear(4, 2, bias=False)})
        self.lora_B = torch.nn.ModuleDict({"default": torch.nn.Linear(2, 4, bias=True)})
        self.norm = torch.nn.LayerNorm(4)


def test_parameter_groups_split_decay_and_scale_lora_plus_b_matrices() -> None:
    model = torch.nn.ModuleDict({"layer": TwoLayer()})
    groups = parameter_groups(model, TrainingSpec(lr=1e-3, weight_decay=0.1), PeftSpec(lora_plus_lr_ratio=16))
    by_lr = {(g["lr"], g["weight_decay"]): sum(p.numel() for p in g["params"]) for g in groups}
    assert by_lr == {(1e-3, 0.1): 8, (1.6e-2, 0.1): 8, (1.6e-2, 0.0): 4, (1e-3, 0.0): 8}


def test_warmup_and_step_arithmetic() -> None:
    assert warmup_steps(TrainingSpec(warmup_ratio=0.03), 100) == 3
    run = run_spec(training={"epochs": 3, "batchSize": 4, "gradientAccumulationSteps": 4})
    settings = loop_settings(run, items=100, world=1)
    assert (settings.micro_batches, settings.total_steps) == (75, 19)
    assert loop_settings(run, items=100, world=2).total_steps == 9  # 25 batches -> 12 per rank -> 36 micro
    assert loop_settings(run_spec(training={"maxSteps": 7}), items=10, world=1).total_steps == 7
    with pytest.raises(ValueError, match="no optimizer step"):
        loop_settings(run, items=4, world=8)


def test_batch_plan_is_deterministic_disjoint_across_ranks_and_reshuffled_per_epoch() -> None:
    lengths = [i % 13 + 1 for i in range(40)]
    plans = [BatchPlan(lengths, 4, seed=1, rank=r, world=2) for r in range(2)]
    epoch0 = [plans[r].micro_batch(i)[1] for r in range(2) for i in range(plans[r].per_epoch)]
    assert sorted(i for batch in epoch0 for i in batch) == list(range(40))
    again = BatchPlan(lengths, 4, seed=1, rank=0, world=2)
    assert [again.micro_batch(i) for i in range(5)] == [plans[0].micro_batch(i) for i in range(5)]
    assert plans[0].micro_batch(5)[0] == 1
    assert plans[0].micro_batch(5)[1] != plans[0].micro_batch(0)[1] or plans[0].micro_batch(6) != plans[0].micro_batch(
        1
    )


def test_storage_env_fills_only_what_the_pod_lacks() -> None:
    run = run_spec(storage={"endpoint": "http://s3.local:8333", "region": "eu-west-1"})
    assert storage_env(run, {}) == {
        "AWS_ENDPOINT_URL": "http://s3.local:8333",
        "AWS_REGION": "eu-west-1",
        "STOCKPOT_S3_ADDRESSING_STYLE": "path",
    }
    assert "AWS_ENDPOINT_URL" not in storage_env(run, {"AWS_ENDPOINT_URL": "http://other"})


def test_lineage_hash_ignores_where_the_run_came_from() -> None:
    a = lineage(run_spec(lineage={"name": "a"}), "sha256:d")
    b = lineage(run_spec(lineage={"name": "b"}), "sha256:d")
    c = lineage(run_spec(training={"lr": 1e-4}), "sha256:d")
    assert a["configHash"] == b["configHash"] != c["configHash"]
    assert a["baseModel"] == "s3://models/base"


def test_metrics_follow_the_log_records() -> None:
    metrics = TrainingMetrics()
    metrics.observe(
        {"step": 3, "loss": 1.5, "lr": 1e-4, "epoch": 0.5, "tokens_per_second": 900.0, "tokens": 120, "samples": 8}
    )
    metrics.observe({"step": 3, "eval_loss": 1.7})
    text = generate_latest(metrics.registry).decode()
    for line in (
        "stockpot_train_step 3.0",
        "stockpot_train_loss 1.5",
        "stockpot_train_eval_loss 1.7",
        "stockpot_train_tokens_total 120.0",
        "stockpot_train_samples_total 8.0",
    ):
        assert line in text
