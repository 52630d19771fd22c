"""Turn a ``DataSpec`` and local files into what the trainers consume.

- ``load_splits(spec, train_path, eval_path=None) -> Splits``: reads, detects and validates the rows; the
  validation rows come from ``eval_path`` or a deterministic ``spec.effective_val_split`` hold-out.
- ``tokenize_records(records, tokenizer, spec)``: SFT/pretrain examples (``TokenizedExample``): conversations
  through the chat template with assistant-only labels (unless ``train_on_responses_only`` is false),
  plain text with eos, pre-tokenized rows as given (labels default to input_ids).
- ``pack(examples, spec) -> PackedData``: applies ``spec.packing`` and reports padding efficiency.
- ``preference_rows`` / ``kto_rows``: TRL 1.x conversational rows (``prompt``/``chosen``/``rejected`` and
  ``prompt``/``completion``/``label`` as message lists) for DPO and KTO trainers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockpot_runtime.spec.data import DataFormat, DataSpec, Packing

from .formats import Conversation, Desirability, Preference, Record, Text, TokenIds
from .masking import TokenizedExample, tokenize_conversation, tokenize_text
from .packing import PackedSequence, pack_greedy, pack_multipack, padding_efficiency
from .readers import load_records, split_validation
from .templates import resolve_template


@dataclass(frozen=True)
class Splits:
    """Normalised training and validation records and their detected format."""

    format: DataFormat
    train: list[Record]
    validation: list[Record]


@dataclass(frozen=True)
class PackedData:
    """Sequences ready for a collator and the share of real tokens when padded to max_length."""

    sequences: list[TokenizedExample] | list[PackedSequence]
    padding_efficiency: float


def load_splits(spec: DataSpec, train_path: Path, eval_path: Path | None = None) -> Splits:
    """Training and validation records; eval rows must have the training rows' format."""
    fmt, records = load_records(train_path, spec.format)
    if eval_path is not None:
        _, validation = load_records(eval_path, fmt)
        return Splits(fmt, records, validation)
    train, validation = split_validation(records, spec.effective_val_split, spec.seed)
    return Splits(fmt, train, validation)


def _tokens(record: TokenIds, max_length: int) -> TokenizedExample:
    labels = record.labels if record.labels is not None else record.input_ids
    return TokenizedExample(record.input_ids[:max_length], labels[:max_length])


def tokenize_records(records: Sequence[Record], tokenizer: Any, spec: DataSpec) -> list[TokenizedExample]:
    """SFT/pretrain examples; preference and KTO records are rejected (use preference_rows / kto_rows)."""
    template = (
        resolve_template(spec.chat_template, tokenizer) if any(isinstance(r, Conversation) for r in records) else None
    )
    out: list[TokenizedExample] = []
    for record in records:
        if isinstance(record, Conversation) and template is not None:
            out.append(
                tokenize_conversation(
                    tokenizer, template, record, spec.max_length, train_on_prompt=not spec.train_on_responses_only
                )
            )
        elif isinstance(record, Text):
            out.append(tokenize_text(tokenizer, record.text, spec.max_length))
        elif isinstance(record, TokenIds):
            out.append(_tokens(record, spec.max_length))
        else:
            raise ValueError(f"{type(record).__name__} rows are for preference training, not sft/pretrain")
    return out


def pack(examples: Sequence[TokenizedExample], spec: DataSpec) -> PackedData:
    """Apply ``spec.packing`` (none, concat or multipack)."""
    if spec.packing == Packing.CONCAT:
        packed = pack_greedy(examples, spec.max_length)
        return PackedData(packed, padding_efficiency(packed, spec.max_length))
    if spec.packing == Packing.MULTIPACK:
        packed = pack_multipack(examples, spec.max_length)
        return PackedData(packed, padding_efficiency(packed, spec.max_length))
    width = max((len(e) for e in examples), default=1)
    return PackedData(list(examples), padding_efficiency(list(examples), width))


def preference_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """TRL conversational preference rows."""
    rows = []
    for r in records:
        if not isinstance(r, Preference):
            raise ValueError(f"DPO needs prompt/chosen/rejected rows, got {type(r).__name__}")
        rows.append({"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected})
    return rows


def kto_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """TRL conversational unpaired-preference rows."""
    rows = []
    for r in records:
        if not isinstance(r, Desirability):
            raise ValueError(f"KTO needs prompt/completion/label rows, got {type(r).__name__}")
        rows.append({"prompt": r.prompt, "completion": r.completion, "label": r.label})
    return rows
