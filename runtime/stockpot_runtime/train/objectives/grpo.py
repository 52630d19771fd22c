"""GRPO: sample a group of completions per prompt, score them with verifiable rewards, reinforce the better ones.

For each prompt, ``numGenerations`` completions are sampled from the current policy (temperature, at most
``maxCompletionLength`` tokens) and scored by the weighted rewards (``rewards``: accuracy, format, math,
json-schema, or sandboxed user code). A completion's advantage is its reward standardised within its group,
``A = (r − mean) / (std + 1e-4)``; the per-token loss is

``−exp(log π − sg(log π)) · A + β · (exp(log π_ref − log π) − (log π_ref − log π) − 1)``

(one on-policy update per generation, so the ratio is 1 with the policy-gradient; the second term is the k3
KL estimator towards the reference). Each completion's loss is its per-token mean; the unit is a completion.
Metrics: mean total reward, each reward's mean, and the KL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from stockpot_runtime.data.collate import pad_collate
from stockpot_runtime.data.formats import Conversation
from stockpot_runtime.data.masking import IGNORE_INDEX, TokenizedExample
from stockpot_runtime.data.templates import ChatTemplate, resolve_template
from stockpot_runtime.spec.method import GrpoConfig

from .. import rewards
from .base import Batch, Context, LossOutput, Stateless, model_inputs, token_logps
from .reference import Reference, reference_for


@dataclass(frozen=True)
class Prompt:
    """A prompt's token ids and text, and its row (reference answers for the rewards)."""

    input_ids: list[int]
    text: str
    row: dict[str, Any] = field(hash=False)

    def __len__(self) -> int:
        return len(self.input_ids)


def prompts(records: Sequence[Any], tokenizer: Any, template: ChatTemplate, max_length: int) -> list[Prompt]:
    """Every message before the final assistant turn is the prompt; the whole conversation is the row."""
    out = []
    for record in records:
        if not isinstance(record, Conversation):
            raise ValueError(f"grpo needs conversations (prompt and reference answer), got {type(record).__name__}")
        messages = record.messages
        cut = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
        text = template.render(messages[:cut], record.tools, add_generation_prompt=True)
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])[-max_length:]
        out.append(Prompt(ids, text, {"messages": messages}))
    return out


def group_advantages(scores: torch.Tensor, group: int) -> torch.Tensor:
    """Rewards standardised within each group of ``group`` consecutive completions."""
    grouped = scores.view(-1, group)
    mean, std = grouped.mean(dim=1, keepdim=True), grouped.std(dim=1, keepdim=True, unbiased=False)
    return ((grouped - mean) / (std + 1e-4)).view(-1)


class Grpo(Stateless):
    def __init__(
        self,
        config: GrpoConfig,
        train_items: Sequence[Prompt],
        eval_items: Sequence[Prompt],
        tokenizer: Any,
        reference: Reference | None,
    ) -> None:
        self.name, self.config = "grpo", config
        self.train_items, self.eval_items = list(train_items), list(eval_items)
        self.tokenizer, self.reference = tokenizer, reference
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.scorer = rewards.RewardScorer(config)

    def lengths(self, items: Sequence[Prompt]) -> list[int]:
        return [len(item) for item in items]

    def collate(self, items: Sequence[Prompt]) -> Batch:
        return {"prompts": list(items)}

    def weight(self, batch: Batch) -> float:
        return float(len(batch["prompts"]) * self.config.num_generations)

    def tokens(self, batch: Batch) -> int:
        return int(batch.get("tokens", 0))

    def sample(self, model: Any, items: Sequence[Prompt]) -> list[list[int]]:
        """``numGenerations`` completions (token ids, up to and including eos) per prompt, in prompt order."""
        inner = getattr(model, "module", model)
        width = max(len(p) for p in items)
        device = next(inner.parameters()).device
        ids = torch.tensor([[self.pad_token_id] * (width - len(p)) + p.input_ids for p in items], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in items], device=device)
        was_training = inner.training
        inner.eval()
        with torch.no_grad():
            out = inner.generate(
                input_ids=ids.repeat_interleave(self.config.num_generations, dim=0),
                attention_mask=mask.repeat_interleave(self.config.num_generations, dim=0),
                do_sample=True,
                temperature=self.config.temperature,
                top_p=1.0,
                top_k=0,
                max_new_tokens=self.config.max_completion_length,
                pad_token_id=self.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        inner.train(was_training)
        return [_until_eos(row.tolist(), self.tokenizer.eos_token_id) for row in out[:, width:]]

    def loss(self, model: Any, batch: Batch) -> LossOutput:
        items: list[Prompt] = batch["prompts"]
        group = self.config.num_generations
        completions = self.sample(model, items)
        expanded = [item for item in items for _ in range(group)]
        texts = [self.tokenizer.decode(c, skip_special_tokens=True) for c in completions]
        columns = self.scorer.columns([p.text for p in expanded], texts, [p.row for p in expanded])
        total = torch.tensor(self.scorer.total(columns), dtype=torch.float32)
        sequences = [
            TokenizedExample(p.input_ids + c, [IGNORE_INDEX] * len(p.input_ids) + c)
            for p, c in zip(expanded, completions, strict=True)
        ]
        device = next(getattr(model, "module", model).parameters()).device
        seq = {k: v.to(device) for k, v in pad_collate(sequences, self.pad_token_id).items()}
        batch["tokens"] = int(seq["attention_mask"].sum())
        logps, scored = token_logps(model(**model_inputs(seq)).logits, seq["labels"])
        advantages = group_advantages(total, group).to(device)
        per_token = -torch.exp(logps - logps.detach()) * advantages[:, None]
        kl = torch.zeros_like(logps)
        if self.reference is not None and self.config.beta > 0:
            with torch.no_grad():
                ref_logps, _ = token_logps(self.reference.logits(model, seq), seq["labels"])
            diff = ref_logps - logps
            kl = torch.exp(diff) - diff - 1
            per_token = per_token + self.config.beta * kl
        counts = scored.sum(-1).clamp(min=1)
        per_completion = (per_token * scored).sum(-1) / counts
        kl_mean = float(((kl * scored).sum(-1) / counts).detach().sum())
        metrics = {"reward": float(total.sum()), "kl": kl_mean}
        metrics.update({f"reward_{name}": float(sum(values)) for name, values in columns.items()})
        return LossOutput(per_completion.sum(), metrics)


def _until_eos(ids: list[int], eos: int | None) -> list[int]:
    if eos is not None and eos in ids:
        return ids[: ids.index(eos) + 1]
    return ids


def build(context: Context) -> Grpo:
    config = context.run.method.resolved_grpo()
    template = resolve_template(context.run.data.chat_template, context.tokenizer)
    max_length = context.run.data.max_length

    def items(records: Sequence[Any]) -> list[Prompt]:
        return prompts(records, context.tokenizer, template, max_length)

    reference = reference_for(context) if config.beta > 0 else None
    return Grpo(config, items(context.splits.train), items(context.splits.validation), context.tokenizer, reference)
