"""reward_model: a one-logit sequence-classification head trained on pairs (Bradley–Terry).

``loss = −logσ(r(chosen) − r(rejected))`` with ``r`` the score at each sequence's last real token; the whole
conversation is scored, so every token is input and none is a label. The unit is a pair; metrics are the
accuracy (chosen scored higher) and the margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F

from stockpot_runtime.data.dataset import preference_rows
from stockpot_runtime.data.formats import Conversation
from stockpot_runtime.data.masking import tokenize_conversation
from stockpot_runtime.data.templates import resolve_template

from .base import Batch, Context, LossOutput, Stateless
from .preference import Pair, PairedBatches


class RewardModel(PairedBatches, Stateless):
    def __init__(self, train_items: Sequence[Pair], eval_items: Sequence[Pair], pad_token_id: int) -> None:
        self.name = "reward_model"
        self.train_items, self.eval_items = list(train_items), list(eval_items)
        self.pad_token_id = pad_token_id

    def loss(self, model: Any, batch: Batch) -> LossOutput:
        n = batch["pairs"]
        scores = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0].float()
        margin = scores[:n] - scores[n:]
        detached = margin.detach()
        return LossOutput(
            -F.logsigmoid(margin).sum(),
            {"reward_accuracy": float((detached > 0).float().sum()), "reward_margin": float(detached.sum())},
        )


def build(context: Context) -> RewardModel:
    template = resolve_template(context.run.data.chat_template, context.tokenizer)
    max_length = context.run.data.max_length

    def pairs(records: Sequence[Any]) -> list[Pair]:
        def encode(messages: list[Any]) -> Any:
            return tokenize_conversation(context.tokenizer, template, Conversation(messages), max_length, True)

        return [
            Pair(encode(r["prompt"] + r["chosen"]), encode(r["prompt"] + r["rejected"]))
            for r in preference_rows(records)
        ]

    return RewardModel(
        pairs(context.splits.train), pairs(context.splits.validation), int(context.tokenizer.pad_token_id)
    )
