"""sft and pretrain: next-token cross-entropy on the label tokens (assistant-only for conversations).

Items are tokenized examples, or packed sequences when ``data.packing`` is concat or multipack; a packed
micro-batch is flattened into one row whose attention stays within each document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stockpot_runtime.data.collate import block_causal_mask, pad_collate
from stockpot_runtime.data.dataset import pack, tokenize_records
from stockpot_runtime.data.masking import TokenizedExample
from stockpot_runtime.data.packing import PackedSequence

from .base import Batch, Context, LossOutput, Stateless, lm_loss_sum, model_inputs, scored_tokens

Item = TokenizedExample | PackedSequence


class CausalLM(Stateless):
    """Language modelling on label tokens; the unit is a scored token."""

    def __init__(self, name: str, train_items: Sequence[Item], eval_items: Sequence[Item], pad_token_id: int) -> None:
        self.name = name
        self.train_items = list(train_items)
        self.eval_items = list(eval_items)
        self.pad_token_id = pad_token_id

    def lengths(self, items: Sequence[Item]) -> list[int]:
        return [len(item) for item in items]

    def collate(self, items: Sequence[Item]) -> Batch:
        """Right-padded rows; packed rows get a per-row block-diagonal causal mask from their position ids."""
        batch: Batch = pad_collate(items, self.pad_token_id)
        batch["real_tokens"] = int(batch["attention_mask"].sum())
        if "position_ids" in batch:
            batch["attention_mask"] = block_causal_mask(batch["position_ids"])
        return batch

    def weight(self, batch: Batch) -> float:
        return float(scored_tokens(batch["labels"]))

    def tokens(self, batch: Batch) -> int:
        return int(batch["real_tokens"])

    def loss(self, model: Any, batch: Batch) -> LossOutput:
        logits = model(**model_inputs(batch)).logits
        total = lm_loss_sum(logits, batch["labels"])
        return LossOutput(total)


def examples(context: Context) -> tuple[list[Item], list[Item]]:
    """Tokenized (and, for training, packed as the spec says) training and evaluation items."""
    spec, tokenizer = context.run.data, context.tokenizer
    train = pack(tokenize_records(context.splits.train, tokenizer, spec), spec).sequences
    evaluation: list[Item] = list(tokenize_records(context.splits.validation, tokenizer, spec))
    return [t for t in train if any(label >= 0 for label in t.labels)], evaluation


def build(context: Context) -> CausalLM:
    train, evaluation = examples(context)
    return CausalLM(context.run.method.task, train, evaluation, int(context.tokenizer.pad_token_id))
