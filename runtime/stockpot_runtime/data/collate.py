"""Batching for unpacked and packed sequences.

- ``pad_collate(items, pad_token_id)``: pads ``input_ids`` (pad id), ``labels`` (-100), ``attention_mask`` (0)
  and, when present, ``position_ids`` to the longest item; returns torch tensors.
- ``packed_collate(items, block_mask=True)``: flattens packed rows into one row with ``position_ids``
  restarting per document (the ``DataCollatorWithFlattening`` layout). transformers 5 does not derive a
  block-diagonal mask from position_ids on the eager/sdpa path (measured: logits leak across documents), so
  by default a 4D additive float ``attention_mask`` [1, 1, n, n] (0 where causal and within-document,
  dtype-min elsewhere; eager ignores boolean 4D masks) is added; pass
  ``block_mask=False`` for flash-attention varlen kernels, which use position_ids alone.
- ``block_causal_mask(position_ids)``: that 4D mask for any [batch, n] position_ids.
- ``length_grouped_batches(lengths, batch_size, seed)``: batches of indices with similar lengths, shuffled.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from .masking import IGNORE_INDEX, TokenizedExample
from .packing import PackedSequence


def pad_collate(items: Sequence[TokenizedExample | PackedSequence], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest item in the batch."""
    width = max(len(item) for item in items)
    out: dict[str, Any] = {"input_ids": [], "labels": [], "attention_mask": []}
    packed = all(isinstance(item, PackedSequence) for item in items)
    if packed:
        out["position_ids"] = []
    for item in items:
        pad = width - len(item)
        out["input_ids"].append(item.input_ids + [pad_token_id] * pad)
        out["labels"].append(item.labels + [IGNORE_INDEX] * pad)
        out["attention_mask"].append([1] * len(item) + [0] * pad)
        if packed and isinstance(item, PackedSequence):
            out["position_ids"].append(item.position_ids + [0] * pad)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


def block_causal_mask(position_ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[batch, 1, n, n] additive mask: 0 where query i may attend key j (j <= i, same document), else dtype-min.

    A document starts wherever the position id is 0.
    """
    doc = torch.cumsum((position_ids == 0).long(), dim=-1)
    n = position_ids.shape[-1]
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool, device=position_ids.device))
    allowed = ((doc[:, :, None] == doc[:, None, :]) & causal)[:, None]
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


def packed_collate(items: Sequence[PackedSequence], block_mask: bool = True) -> dict[str, torch.Tensor]:
    """One flattened row; attention is restricted per document (position_ids, plus the 4D mask by default)."""
    ids = [t for item in items for t in item.input_ids]
    labels = [t for item in items for t in item.labels]
    positions = [p for item in items for p in item.position_ids]
    batch = {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
    }
    if block_mask:
        batch["attention_mask"] = block_causal_mask(batch["position_ids"])
    return batch


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, mega: int = 50) -> list[list[int]]:
    """Shuffle, sort by length inside groups of ``mega`` batches, cut into batches and shuffle the batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    group = batch_size * mega
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches
