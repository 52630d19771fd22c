"""LoRA dropout drawn sparsely and fused with the adapter's down-projection.

peft computes ``lora_A(dropout(x))`` for every adapted layer: one Bernoulli draw per input element (on CPU the
draw costs more than the layer's own matmul) and, for backward, a float mask plus the dropped copy of ``x``
kept per layer. Here the dropped positions are drawn directly — the gaps between drops of an i.i.d.
Bernoulli(p) sequence are geometric, so about ``p·n`` draws replace ``n`` — and only ``x`` (shared by the
layers that read the same input) and those positions are kept; backward re-applies them. The distribution
is peft's: each element dropped independently with probability ``p``, survivors scaled by ``1/(1-p)``.

``install_sparse_dropout(model)`` swaps the pair in every plain LoRA layer (DoRA and VeRA keep peft's path).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def drop_positions(n: int, p: float, device: torch.device | None = None) -> torch.Tensor:
    """Sorted flat indices in ``[0, n)``, each included independently with probability ``p``.

    Uses the default generator, so seeding and saved RNG states (checkpoints, activation recomputation) make
    the draw reproducible.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"dropout probability must be in (0, 1), got {p}")
    log_keep = math.log1p(-p)
    chunks = []
    end = -1  # the last position drawn so far
    while end < n - 1:
        expected = (n - 1 - end) * p
        count = int(expected + 6.0 * math.sqrt(expected) + 16)
        uniform = torch.rand(count, dtype=torch.float64, device=device)
        # kept elements before the next drop: Geometric(p) on {0, 1, …}; 1 - U lies in (0, 1]
        gaps = torch.floor(torch.log1p(-uniform) / log_keep).to(torch.int64) + 1
        positions = torch.cumsum(gaps, 0) + end
        chunks.append(positions)
        end = int(positions[-1])
    positions = torch.cat(chunks)
    return positions[positions < n]


def _dropped(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    out = x.clone(memory_format=torch.contiguous_format)
    out.view(-1).index_fill_(0, positions, 0.0)
    return out


class _DroppedLinear(torch.autograd.Function):
    """``F.linear(dropout(x), weight)`` keeping ``x`` and the dropped positions, not a mask and a copy."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
        positions = drop_positions(x.numel(), p, x.device)
        ctx.save_for_backward(x, weight, positions)
        ctx.scale = scale = 1.0 / (1.0 - p)
        return F.linear(_dropped(x, positions), weight) * scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, weight, positions = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ weight.to(grad.dtype)).to(x.dtype) * ctx.scale
            grad_x.view(-1).index_fill_(0, positions, 0.0)
        if ctx.needs_input_grad[1]:
            dropped = _dropped(x, positions).reshape(-1, x.shape[-1]).to(grad.dtype)
            grad_weight = (grad.reshape(-1, grad.shape[-1]).t() @ dropped).to(weight.dtype) * ctx.scale
        return grad_x, grad_weight, None


class DroppedLinear(nn.Linear):
    """A bias-free ``nn.Linear`` (peft's ``lora_A``) that applies dropout ``p`` to its input while training."""

    def __init__(self, source: nn.Linear, p: float) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = source.in_features, source.out_features
        self.weight = source.weight
        self.register_parameter("bias", None)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.p > 0.0:
            out: torch.Tensor = _DroppedLinear.apply(x, self.weight, self.p)  # type: ignore[no-untyped-call]
            return out
        return F.linear(x, self.weight)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropout={self.p}"


def install_sparse_dropout(model: nn.Module) -> int:
    """Fuse dropout into ``lora_A`` in every plain LoRA layer of ``model``; returns how many were swapped."""
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        variants = getattr(module, "lora_variant", {})
        for name, dropout in dropouts.items():
            down = module.lora_A[name]  # type: ignore[index]
            plain = name not in variants and isinstance(dropout, nn.Dropout) and dropout.p > 0.0
            if plain and type(down) is nn.Linear and down.bias is None:
                module.lora_A[name] = DroppedLinear(down, dropout.p)
                dropouts[name] = nn.Identity()
                swapped += 1
    return swapped
