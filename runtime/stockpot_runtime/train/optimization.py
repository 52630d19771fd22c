"""The optimizer, its parameter groups and the learning-rate schedule, from ``TrainingSpec`` and ``PeftSpec``.

Weight decay applies to matrices only (biases and norm weights are not decayed). LoRA+ trains the B matrices
at ``lr × loraPlusLrRatio``. Warmup is ``ceil(warmupRatio × total steps)`` optimizer steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from stockpot_runtime.spec.peft import PeftSpec
from stockpot_runtime.spec.training import Optimizer, TrainingSpec


def parameter_groups(model: torch.nn.Module, training: TrainingSpec, peft: PeftSpec) -> list[dict[str, Any]]:
    """Groups by (decay, lr): matrices decay, vectors don't; LoRA+ B matrices get the scaled lr."""
    ratio = peft.lora_plus_lr_ratio
    groups: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = training.lr * ratio if ratio is not None and ".lora_B." in name else training.lr
        groups.setdefault((param.ndim >= 2, lr), []).append(param)
    return [
        {"params": params, "weight_decay": training.weight_decay if decay else 0.0, "lr": lr}
        for (decay, lr), params in sorted(groups.items(), key=lambda item: (not item[0][0], item[0][1]))
    ]


def build_optimizer(groups: list[dict[str, Any]], training: TrainingSpec) -> torch.optim.Optimizer:
    """The optimizer named in the spec (8-bit ones come from bitsandbytes and need a GPU)."""
    name = training.optimizer
    if name in (Optimizer.ADAMW_TORCH, Optimizer.ADAMW_TORCH_FUSED):
        return torch.optim.AdamW(
            groups, lr=training.lr, betas=(0.9, 0.999), eps=1e-8, fused=name == Optimizer.ADAMW_TORCH_FUSED
        )
    if name == Optimizer.SGD:
        return torch.optim.SGD(groups, lr=training.lr, momentum=0.9)
    if name == Optimizer.ADAFACTOR:
        from transformers.optimization import Adafactor

        return Adafactor(  # type: ignore[no-untyped-call]
            groups, lr=training.lr, scale_parameter=False, relative_step=False, warmup_init=False
        )
    import bitsandbytes as bnb

    cls = bnb.optim.PagedAdamW8bit if name == Optimizer.PAGED_ADAMW_8BIT else bnb.optim.AdamW8bit
    optimizer: torch.optim.Optimizer = cls(groups, lr=training.lr)
    return optimizer


def warmup_steps(training: TrainingSpec, total_steps: int) -> int:
    return math.ceil(training.warmup_ratio * total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, training: TrainingSpec, total_steps: int) -> Any:
    """transformers' schedule of that name, with warmup and decay measured in optimizer steps."""
    from transformers import get_scheduler

    return get_scheduler(
        str(training.scheduler),
        optimizer,
        num_warmup_steps=warmup_steps(training, total_steps),
        num_training_steps=total_steps,
    )
