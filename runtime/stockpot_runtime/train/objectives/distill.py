"""distill: match a frozen teacher's softened next-token distribution, mixed with the usual LM loss.

Per scored token: ``α · T² · D(teacher_T, student_T) + (1 − α) · CE(student, label)``, where ``_T`` is the
softmax at temperature T and D is forward KL ``KL(t‖s)`` (mean-seeking), reverse KL ``KL(s‖t)``
(mode-seeking) or Jensen–Shannon. Teacher and student must share the tokenizer (same vocabulary size).
The unit is a scored token, as for sft.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from stockpot_runtime.data.masking import IGNORE_INDEX
from stockpot_runtime.spec.method import DistillConfig, Divergence

from .base import Batch, Context, LossOutput, model_inputs
from .causal_lm import CausalLM, Item, examples


def divergence(student: torch.Tensor, teacher: torch.Tensor, kind: Divergence) -> torch.Tensor:
    """Per-row divergence between two sets of log-probabilities ([tokens, vocab] → [tokens])."""
    if kind == Divergence.FORWARD_KL:
        return F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)
    if kind == Divergence.REVERSE_KL:
        return F.kl_div(teacher, student, log_target=True, reduction="none").sum(-1)
    mixture = torch.logsumexp(torch.stack([student, teacher]), dim=0) - torch.log(torch.tensor(2.0))
    return 0.5 * (
        F.kl_div(mixture, teacher, log_target=True, reduction="none").sum(-1)
        + F.kl_div(mixture, student, log_target=True, reduction="none").sum(-1)
    )


class Distill(CausalLM):
    def __init__(
        self, config: DistillConfig, teacher: Any, train_items: Sequence[Item], eval_items: Sequence[Item], pad: int
    ) -> None:
        super().__init__("distill", train_items, eval_items, pad)
        self.config, self.teacher = config, teacher

    def loss(self, model: Any, batch: Batch) -> LossOutput:
        inputs = model_inputs(batch)
        logits = model(**inputs).logits[:, :-1]
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits[:, :-1]
        if teacher_logits.shape[-1] != logits.shape[-1]:
            raise ValueError(
                f"method.distill.teacher: vocabulary {teacher_logits.shape[-1]} differs from the student's "
                f"{logits.shape[-1]} — teacher and student must share a tokenizer"
            )
        labels = batch["labels"][:, 1:]
        scored = labels != IGNORE_INDEX
        student, teacher = logits[scored].float(), teacher_logits[scored].float()
        t = self.config.temperature
        kd = divergence(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), self.config.divergence)
        ce = F.cross_entropy(student, labels[scored], reduction="none")
        per_token = self.config.alpha * t * t * kd + (1 - self.config.alpha) * ce
        return LossOutput(
            per_token.sum(), {"distill_loss": float(kd.detach().sum()), "lm_loss": float(ce.detach().sum())}
        )


def build(context: Context) -> Distill:
    config = context.run.method.distill
    if config is None:
        raise ValueError("method.distill: task distill needs distill.teacher")
    train, evaluation = examples(context)
    teacher = context.load_frozen(config.teacher)
    return Distill(config, teacher, train, evaluation, int(context.tokenizer.pad_token_id))
