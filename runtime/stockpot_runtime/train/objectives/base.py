"""What every objective gives the loop, and the log-probability helpers they share.

An objective owns its training and evaluation items (tokenized examples, pairs, prompts) and turns a batch
of them into a loss. Losses are **sums** over the objective's unit (label tokens for language modelling,
pairs or completions for preference methods) together with the batch's ``weight`` in that unit, so the
loop can normalise a whole optimizer step — all its micro-batches — by the step's total weight (gradient
accumulation then equals one big batch). Metrics are sums in the same unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from stockpot_runtime.data.dataset import Splits
from stockpot_runtime.data.masking import IGNORE_INDEX
from stockpot_runtime.spec.model import ModelSource
from stockpot_runtime.spec.runs import TrainRun

Batch = dict[str, Any]


@dataclass
class LossOutput:
    """A batch's loss and metrics, both summed over its units."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    """A training method: items, batching and the loss."""

    name: str
    train_items: Sequence[Any]
    eval_items: Sequence[Any]

    def lengths(self, items: Sequence[Any]) -> list[int]:
        """A size per item, for length-grouped batching."""
        ...

    def collate(self, items: Sequence[Any]) -> Batch:
        """Tensors (and anything else ``loss`` needs) for a micro-batch."""
        ...

    def weight(self, batch: Batch) -> float:
        """How many units (tokens, pairs, completions) the batch's loss sums over."""
        ...

    def tokens(self, batch: Batch) -> int:
        """Real (non-pad) tokens the batch feeds through the model, for throughput."""
        ...

    def loss(self, model: Any, batch: Batch) -> LossOutput:
        """The summed loss of the batch (the model is in train or eval mode as the loop decides)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Objective state that must survive a resume (e.g. BCO's running reward mean)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Stateless:
    """Mixin for objectives without state of their own."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


def model_inputs(batch: Batch) -> dict[str, torch.Tensor]:
    """The keyword arguments a transformers model takes from a collated batch."""
    return {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the next-token labels and the mask of scored tokens.

    ``logits`` [b, n, v] and ``labels`` [b, n] (IGNORE_INDEX where not scored) → both [b, n-1].
    """
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = torch.gather(logps, 2, shifted.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * mask, mask


def sequence_logps(model: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed label log-probabilities per sequence and the number of scored tokens per sequence."""
    logits = model(**model_inputs(batch)).logits
    picked, mask = token_logps(logits, batch["labels"])
    return picked.sum(-1), mask.sum(-1)


def lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over the scored labels."""
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def scored_tokens(labels: torch.Tensor) -> int:
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


@dataclass
class Context:
    """What an objective's builder may use: the run, tokenizer, data and ways to load frozen models."""

    run: TrainRun
    tokenizer: Any
    splits: Splits
    device: torch.device
    policy_is_adapter: bool
    load_frozen: Callable[[ModelSource | None], Any]
    """A frozen model in eval mode on the device: the given source, or the base model for None."""
