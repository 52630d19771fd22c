"""Packing several tokenized documents into one sequence, attention kept inside each document.

- ``pack_greedy(examples, max_length)``: concatenation in order into blocks of ``max_length`` (a document
  that does not fit starts the next block; documents are never split).
- ``pack_multipack(examples, max_length)``: first-fit-decreasing bins of at most ``max_length`` tokens.

Each ``PackedSequence`` has ``input_ids``, ``labels`` and ``position_ids`` that restart at 0 for every document
(the convention of transformers' ``DataCollatorWithFlattening``); ``collate.packed_collate`` adds the
block-diagonal causal mask the eager/sdpa attention needs (flash-attention varlen kernels use position_ids). The first label of each document is -100 so no document learns to predict
its neighbour. ``padding_efficiency(sequences, max_length)`` = real tokens / (sequences x max_length).
Documents longer than ``max_length`` are truncated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .masking import IGNORE_INDEX, TokenizedExample


@dataclass(frozen=True)
class PackedSequence:
    """Documents concatenated; ``doc_lengths`` lists their lengths in order."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    doc_lengths: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.input_ids)


def _join(docs: Sequence[TokenizedExample]) -> PackedSequence:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for doc in docs:
        ids += doc.input_ids
        labels += [IGNORE_INDEX, *doc.labels[1:]]
        positions += range(len(doc.input_ids))
    return PackedSequence(ids, labels, positions, tuple(len(d) for d in docs))


def _truncate(examples: Sequence[TokenizedExample], max_length: int) -> list[TokenizedExample]:
    return [TokenizedExample(e.input_ids[:max_length], e.labels[:max_length]) for e in examples if len(e.input_ids) > 0]


def pack_greedy(examples: Sequence[TokenizedExample], max_length: int) -> list[PackedSequence]:
    """Next-fit packing in the given order."""
    bins: list[list[TokenizedExample]] = []
    used = max_length + 1
    for doc in _truncate(examples, max_length):
        if used + len(doc) > max_length:
            bins.append([])
            used = 0
        bins[-1].append(doc)
        used += len(doc)
    return [_join(b) for b in bins]


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into bins of total at most ``capacity`` (each length <= capacity)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        slot = next((b for b, room in enumerate(free) if room >= lengths[i]), None)
        if slot is None:
            bins.append([i])
            free.append(capacity - lengths[i])
        else:
            bins[slot].append(i)
            free[slot] -= lengths[i]
    return bins


def pack_multipack(examples: Sequence[TokenizedExample], max_length: int) -> list[PackedSequence]:
    """First-fit-decreasing packing; documents in a bin keep their original relative order."""
    docs = _truncate(examples, max_length)
    bins = first_fit_decreasing([len(d) for d in docs], max_length)
    return [_join([docs[i] for i in sorted(b)]) for b in bins]


def padding_efficiency(sequences: Sequence[PackedSequence | TokenizedExample], max_length: int) -> float:
    """Real tokens divided by the tokens of the sequences padded to ``max_length``."""
    if not sequences:
        return 0.0
    return sum(len(s) for s in sequences) / (len(sequences) * max_length)
