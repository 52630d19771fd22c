"""Optimisation hyperparameters. Defaults follow Soup (lr 2e-5, 3 epochs, cosine, warmup 3 %, grad-accum 4)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import Field

from .base import Problem, SpecModel


class Scheduler(StrEnum):
    LINEAR = "linear"
    COSINE = "cosine"
    COSINE_WITH_RESTARTS = "cosine_with_restarts"
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"
    INVERSE_SQRT = "inverse_sqrt"


class Optimizer(StrEnum):
    ADAMW_TORCH = "adamw_torch"
    ADAMW_TORCH_FUSED = "adamw_torch_fused"
    ADAFACTOR = "adafactor"
    SGD = "sgd"
    ADAMW_8BIT = "adamw_8bit"
    PAGED_ADAMW_8BIT = "paged_adamw_8bit"


GPU_OPTIMIZERS = frozenset({Optimizer.ADAMW_8BIT, Optimizer.PAGED_ADAMW_8BIT})


class Precision(StrEnum):
    """auto: bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU."""

    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


class TrainingSpec(SpecModel):
    """How long and how fast to train."""

    epochs: int = Field(
        default=3, ge=1, le=1000, description="Passes over the training data (ignored when maxSteps is set)."
    )
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many optimizer steps.")
    lr: float = Field(default=2e-5, gt=0.0, le=1.0, description="Peak learning rate.")
    scheduler: Scheduler = Field(default=Scheduler.COSINE, description="Learning-rate schedule after warmup.")
    warmup_ratio: float = Field(
        default=0.03, ge=0.0, le=0.5, description="Fraction of steps spent warming up linearly."
    )
    weight_decay: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Decoupled (AdamW) weight decay; 0 disables it."
    )
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Gradient clipping norm.")
    optimizer: Optimizer = Field(default=Optimizer.ADAMW_TORCH, description="Optimizer; the 8-bit ones need a GPU.")
    batch_size: int = Field(default=4, ge=1, le=4096, description="Sequences per device per micro-batch.")
    gradient_accumulation_steps: int = Field(default=4, ge=1, le=1024, description="Micro-batches per optimizer step.")
    precision: Precision = Field(default=Precision.AUTO, description="auto, bf16, fp16 or fp32.")
    gradient_checkpointing: bool = Field(default=False, description="Recompute activations to save memory.")
    seed: int = Field(default=42, ge=0, le=2**32 - 1, description="Seed for initialisation, dropout and data order.")
    logging_steps: int = Field(default=10, ge=1, description="Report loss and learning rate every N steps.")
    eval_steps: int | None = Field(default=None, ge=1, description="Evaluate every N steps; unset: at each epoch end.")

    def problems(self) -> Iterator[Problem]:
        if self.precision == Precision.FP16 and self.optimizer == Optimizer.ADAFACTOR:
            yield Problem(("optimizer",), "adafactor is unstable with fp16; use bf16 or another optimizer")
