"""KTO: prospect-theoretic loss on unpaired completions labelled desirable or not.

For each example ``ρ = log π(y|x) − log π_ref(y|x)`` and the reference point ``z₀ = max(0, mean KL)``, estimated
on mismatched pairs (each prompt with the next example's completion, as in the KTO paper):

- desirable:   ``λ_D · (1 − σ(β·(ρ − z₀)))``
- undesirable: ``λ_U · (1 − σ(β·(z₀ − ρ)))``

The unit is an example; metrics are the share of examples whose implicit reward ``β·ρ`` has the label's
sign, and the signed reward (positive for desirable, negated for undesirable) — both rise as KTO learns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stockpot_runtime.data.collate import pad_collate
from stockpot_runtime.data.dataset import kto_rows
from stockpot_runtime.data.masking import IGNORE_INDEX, TokenizedExample, prompt_tokens, tokenize_completion
from stockpot_runtime.data.templates import resolve_template
from stockpot_runtime.spec.method import KtoConfig

from .base import Batch, Context, LossOutput, Stateless, sequence_logps
from .reference import Reference, reference_for


@dataclass(frozen=True)
class Example:
    prompt: list[int]
    completion: list[int]
    completion_labels: list[int]
    desirable: bool

    def __len__(self) -> int:
        return len(self.prompt) + len(self.completion)


def split_example(example: TokenizedExample, desirable: bool) -> Example:
    start = prompt_tokens(example)
    return Example(example.input_ids[:start], example.input_ids[start:], example.labels[start:], desirable)


def mismatched(items: Sequence[Example]) -> list[TokenizedExample]:
    """Each prompt followed by the next example's completion (the KL estimate's samples)."""
    out = []
    for i, item in enumerate(items):
        other = items[(i + 1) % len(items)]
        out.append(
            TokenizedExample(
                item.prompt + other.completion, [IGNORE_INDEX] * len(item.prompt) + other.completion_labels
            )
        )
    return out


class Kto(Stateless):
    def __init__(
        self,
        config: KtoConfig,
        train_items: Sequence[Example],
        eval_items: Sequence[Example],
        pad_token_id: int,
        reference: Reference,
    ) -> None:
        self.name, self.config = "kto", config
        self.train_items, self.eval_items = list(train_items), list(eval_items)
        self.pad_token_id, self.reference = pad_token_id, reference

    def lengths(self, items: Sequence[Example]) -> list[int]:
        return [len(item) for item in items]

    def collate(self, items: Sequence[Example]) -> Batch:
        matched = [
            TokenizedExample(i.prompt + i.completion, [IGNORE_INDEX] * len(i.prompt) + i.completion_labels)
            for i in items
        ]
        batch: Batch = pad_collate(matched + mismatched(items), self.pad_token_id)
        batch["examples"] = len(items)
        batch["desirable"] = torch.tensor([i.desirable for i in items])
        return batch

    def weight(self, batch: Batch) -> float:
        return float(batch["examples"])

    def tokens(self, batch: Batch) -> int:
        return int(batch["attention_mask"].sum())

    def loss(self, model: Any, batch: Batch) -> LossOutput:
        n, beta = batch["examples"], self.config.beta
        logps, _ = sequence_logps(model, batch)
        ref, _ = self.reference.sequence_logps(model, batch)
        ratio = logps - ref
        z0 = ratio[n:].detach().mean().clamp(min=0)
        rho, desirable = ratio[:n], batch["desirable"]
        losses = torch.where(
            desirable,
            self.config.desirable_weight * (1 - torch.sigmoid(beta * (rho - z0))),
            self.config.undesirable_weight * (1 - torch.sigmoid(beta * (z0 - rho))),
        )
        signed = torch.where(desirable, beta * rho, -beta * rho).detach()
        return LossOutput(
            losses.sum(),
            {
                "reward_accuracy": float((signed > 0).float().sum()),
                "signed_reward": float(signed.sum()),
                "kl": float(z0) * n,
            },
        )


def build(context: Context) -> Kto:
    template = resolve_template(context.run.data.chat_template, context.tokenizer)
    max_length = context.run.data.max_length

    def examples(records: Sequence[Any]) -> list[Example]:
        return [
            split_example(
                tokenize_completion(context.tokenizer, template, r["prompt"], r["completion"], max_length=max_length),
                r["label"],
            )
            for r in kto_rows(records)
        ]

    return Kto(
        context.run.method.resolved_kto(),
        examples(context.splits.train),
        examples(context.splits.validation),
        int(context.tokenizer.pad_token_id),
        reference_for(context),
    )
