"""The reference model of dpo, ipo, bco, kto and grpo: the base model the policy started from.

For adapters it is the policy itself with the adapter switched off (no second copy in memory); for full
fine-tuning, a frozen copy of the base loaded once.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Batch, Context, model_inputs, token_logps


class Reference:
    def __init__(self, frozen: Any | None) -> None:
        self.frozen = frozen

    def logits(self, policy: Any, batch: Batch) -> torch.Tensor:
        """The reference model's logits for the batch, without gradients."""
        with torch.no_grad():
            if self.frozen is not None:
                logits: torch.Tensor = self.frozen(**model_inputs(batch)).logits
                return logits
            inner = getattr(policy, "module", policy)
            with inner.disable_adapter():
                base_logits: torch.Tensor = inner(**model_inputs(batch)).logits
                return base_logits

    def sequence_logps(self, policy: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed label log-probabilities per sequence and scored-token counts under the reference."""
        picked, mask = token_logps(self.logits(policy, batch), batch["labels"])
        return picked.sum(-1), mask.sum(-1)


def reference_for(context: Context) -> Reference:
    return Reference(None if context.policy_is_adapter else context.load_frozen(None))
