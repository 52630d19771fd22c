"""Paired preference methods: dpo, ipo, simpo, orpo and bco, on prompt/chosen/rejected rows.

With ``s(y) = log π(y|x)`` summed over the answer's tokens, ``ā(y)`` its per-token mean and ``ρ(y) = s(y) − s_ref(y)``:

- dpo:   ``−(1−ε)·logσ(β·h) − ε·logσ(−β·h)`` with ``h = ρ(chosen) − ρ(rejected)`` (ε: conservative label smoothing)
- ipo:   ``(h̄ − 1/(2β))²`` with ``h̄`` the same difference of per-token means (β is IPO's τ)
- simpo: ``−logσ(β·(ā(chosen) − ā(rejected)) − γ) + cpoAlpha·NLL(chosen)`` — no reference model
- orpo:  ``NLL(chosen) − β·logσ(log odds(chosen) − log odds(rejected))``, odds from ``ā`` — no reference model
- bco:   ``−logσ(r_c − δ) − logσ(−(r_r − δ))`` with ``r = β·ρ`` and δ the running mean of all rewards so far

The reference is the base model: the policy with its adapter switched off, or a frozen copy for full
fine-tuning. The unit is a pair; metrics are the implicit reward accuracy and margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from stockpot_runtime.data.collate import pad_collate
from stockpot_runtime.data.dataset import preference_rows
from stockpot_runtime.data.masking import TokenizedExample, tokenize_completion
from stockpot_runtime.data.templates import resolve_template
from stockpot_runtime.spec.method import PreferenceConfig, Task

from .base import Batch, Context, LossOutput, sequence_logps
from .reference import Reference, reference_for


@dataclass(frozen=True)
class Pair:
    chosen: TokenizedExample
    rejected: TokenizedExample


def tokenize_pairs(context: Context, records: Sequence[Any], max_prompt_length: int | None) -> list[Pair]:
    """Chosen and rejected answers, each after the same prompt, labelled on the answer only."""
    template = resolve_template(context.run.data.chat_template, context.tokenizer)
    max_length = context.run.data.max_length

    def encode(prompt: list[Any], answer: list[Any]) -> TokenizedExample:
        return tokenize_completion(
            context.tokenizer, template, prompt, answer, max_length=max_length, max_prompt_length=max_prompt_length
        )

    return [
        Pair(encode(r["prompt"], r["chosen"]), encode(r["prompt"], r["rejected"])) for r in preference_rows(records)
    ]


class PairedBatches:
    """Batching shared by pair objectives: chosen rows first, then rejected rows; the unit is a pair."""

    pad_token_id: int

    def lengths(self, items: Sequence[Pair]) -> list[int]:
        return [len(p.chosen) + len(p.rejected) for p in items]

    def collate(self, items: Sequence[Pair]) -> Batch:
        batch: Batch = pad_collate([p.chosen for p in items] + [p.rejected for p in items], self.pad_token_id)
        batch["pairs"] = len(items)
        return batch

    def weight(self, batch: Batch) -> float:
        return float(batch["pairs"])

    def tokens(self, batch: Batch) -> int:
        return int(batch["attention_mask"].sum())


class RunningMean:
    """Exact running mean of every value seen (BCO's δ); survives resume through its state."""

    def __init__(self) -> None:
        self.count, self.mean = 0, 0.0

    def update(self, values: torch.Tensor) -> float:
        n = values.numel()
        if n:
            self.mean += (float(values.sum()) - n * self.mean) / (self.count + n)
            self.count += n
        return self.mean


class Preference(PairedBatches):
    """One of dpo, ipo, simpo, orpo, bco on chosen/rejected pairs."""

    def __init__(
        self,
        task: Task,
        config: PreferenceConfig,
        *,
        train_items: Sequence[Pair],
        eval_items: Sequence[Pair],
        pad_token_id: int,
        reference: Reference | None,
    ) -> None:
        if task in (Task.DPO, Task.IPO, Task.BCO) and reference is None:
            raise ValueError(f"{task} needs a reference model")
        self.name, self.task, self.config = str(task), task, config
        self.train_items, self.eval_items = list(train_items), list(eval_items)
        self.pad_token_id, self.reference = pad_token_id, reference
        self.delta = RunningMean()

    def state_dict(self) -> dict[str, Any]:
        return {"delta_count": self.delta.count, "delta_mean": self.delta.mean}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.delta.count = int(state.get("delta_count", 0))
        self.delta.mean = float(state.get("delta_mean", 0.0))

    def loss(self, model: Any, batch: Batch) -> LossOutput:
        n = batch["pairs"]
        logps, counts = sequence_logps(model, batch)
        counts = counts.clamp(min=1)
        if self.reference is not None:
            ref, _ = self.reference.sequence_logps(model, batch)
        else:
            ref = torch.zeros_like(logps)
        losses, chosen_reward, rejected_reward = self._losses(logps, ref, counts, n)
        margin = (chosen_reward - rejected_reward).detach()
        return LossOutput(
            losses.sum(),
            {"reward_accuracy": float((margin > 0).float().sum()), "reward_margin": float(margin.sum())},
        )

    def _losses(
        self, logps: torch.Tensor, ref: torch.Tensor, counts: torch.Tensor, n: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-pair losses and the implicit rewards of chosen and rejected answers (chosen rows come first)."""
        chosen, rejected, ref_chosen, ref_rejected = logps[:n], logps[n:], ref[:n], ref[n:]
        n_chosen, n_rejected = counts[:n], counts[n:]
        beta, smoothing = self.config.beta, self.config.label_smoothing
        if self.task == Task.DPO:
            rc, rr = beta * (chosen - ref_chosen), beta * (rejected - ref_rejected)
            h = rc - rr
            return -(1 - smoothing) * F.logsigmoid(h) - smoothing * F.logsigmoid(-h), rc, rr
        if self.task == Task.IPO:
            rc, rr = (chosen - ref_chosen) / n_chosen, (rejected - ref_rejected) / n_rejected
            return (rc - rr - 1 / (2 * beta)) ** 2, beta * rc, beta * rr
        if self.task == Task.BCO:
            rc, rr = beta * (chosen - ref_chosen), beta * (rejected - ref_rejected)
            delta = self.delta.update(torch.cat([rc, rr]).detach()) if torch.is_grad_enabled() else self.delta.mean
            return -F.logsigmoid(rc - delta) - F.logsigmoid(-(rr - delta)), rc, rr
        mean_chosen, mean_rejected = chosen / n_chosen, rejected / n_rejected
        nll = -mean_chosen
        if self.task == Task.SIMPO:
            h = beta * (mean_chosen - mean_rejected) - self.config.simpo_gamma
            pref = -(1 - smoothing) * F.logsigmoid(h) - smoothing * F.logsigmoid(-h)
            return pref + self.config.cpo_alpha * nll, beta * mean_chosen, beta * mean_rejected
        # orpo: odds from the per-token mean probabilities (log1p(-exp(a)) = log(1 - p))
        log_odds = (mean_chosen - mean_rejected) - (
            torch.log1p(-torch.exp(mean_chosen).clamp(max=1 - 1e-6))
            - torch.log1p(-torch.exp(mean_rejected).clamp(max=1 - 1e-6))
        )
        return nll - beta * F.logsigmoid(log_odds), beta * mean_chosen, beta * mean_rejected


def build(context: Context) -> Preference:
    method = context.run.method
    config = method.resolved_preference()
    reference = reference_for(context) if method.task in (Task.DPO, Task.IPO, Task.BCO) else None
    return Preference(
        Task(method.task),
        config,
        train_items=tokenize_pairs(context, context.splits.train, config.max_prompt_length),
        eval_items=tokenize_pairs(context, context.splits.validation, config.max_prompt_length),
        pad_token_id=int(context.tokenizer.pad_token_id),
        reference=reference,
    )
