"""Packing several tokenized documents into one sequence, attention kept inside each document.

- ``pack_greedy(examples, max_length)``: concatenation in order into blocks of ``max_length`` (a document
  that does not fit starts the next block; documents are never split).
- ``pack_multipack(examples, max_length)``: bins of at most ``max_length`` tokens, as few as ``multipack_bins``
  finds (best-fit-decreasing, its emptiest bins repacked by minimum bin slack).

Each ``PackedSequence`` has ``input_ids``, ``labels`` and ``position_ids`` that restart at 0 for every document
(the convention of transformers' ``DataCollatorWithFlattening``); ``collate.packed_collate`` adds the
block-diagonal causal mask the eager/sdpa attention needs (flash-attention varlen kernels use position_ids). The first label of each document is -100 so no document learns to predict
its neighbour. ``padding_efficiency(sequences, max_length)`` = real tokens / (sequences x max_length).
Documents longer than ``max_length`` are truncated.
"""

from __future__ import annotations

import bisect
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


REPACKED_BINS = 512
"""How many of the emptiest best-fit-decreasing bins ``multipack_bins`` repacks by minimum bin slack."""


def multipack_bins(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into bins of total at most ``capacity`` (each length <= capacity).

    Best-fit-decreasing packs everything (O(n log n); the same bins as first-fit-decreasing on every set measured,
    whose bin scan is O(n x bins)). Its waste gathers in its emptiest bins, so their documents are packed again
    by minimum bin slack, which fills each bin as full as any subset of the remaining documents can; the repack
    is kept only when it needs fewer bins. At most ``REPACKED_BINS`` bins take part, which bounds its cost.
    """
    bins = best_fit_decreasing(lengths, capacity)
    bins.sort(key=lambda b: sum(lengths[i] for i in b), reverse=True)
    kept, tail = bins[:-REPACKED_BINS], bins[-REPACKED_BINS:]
    documents = [i for b in tail for i in b]
    repacked = minimum_bin_slack([lengths[i] for i in documents], capacity)
    if len(repacked) >= len(tail):
        return bins
    return kept + [[documents[j] for j in b] for b in repacked]


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Longest first, each into the bin it leaves with the least room (a new bin when none has room)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    rooms: list[tuple[int, int]] = []  # (room left, bin), sorted; full bins leave the list
    for i in order:
        slot = bisect.bisect_left(rooms, (lengths[i], -1))
        if slot == len(rooms):
            bins.append([i])
            room, b = capacity - lengths[i], len(bins) - 1
        else:
            room, b = rooms.pop(slot)
            bins[b].append(i)
            room -= lengths[i]
        if room > 0:
            bisect.insort(rooms, (room, b))
    return bins


def minimum_bin_slack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Gupta and Ho's minimum bin slack, one pass: the longest remaining document opens a bin, and the
    remaining documents whose lengths fill the rest of it most (``_fullest_fill``) join it."""
    waiting: dict[int, list[int]] = {}  # length -> indices, lowest last
    for i in sorted(range(len(lengths)), reverse=True):
        waiting.setdefault(lengths[i], []).append(i)
    sizes = sorted(waiting)  # the lengths still waiting
    bins: list[list[int]] = []

    def take(length: int, count: int, into: list[int]) -> None:
        for _ in range(count):
            into.append(waiting[length].pop())
        if not waiting[length]:
            del waiting[length]
            sizes.pop(bisect.bisect_left(sizes, length))

    while sizes:
        opened: list[int] = []
        longest = sizes[-1]
        take(longest, 1, opened)
        for length, count in _fullest_fill({n: len(waiting[n]) for n in sizes}, sizes, capacity - longest).items():
            take(length, count, opened)
        bins.append(opened)
    return bins


def _fullest_fill(available: dict[int, int], sizes: list[int], room: int) -> dict[int, int]:
    """How many documents of each length (at most ``available``) to add for the largest total <= ``room``.

    Longest-first greedy when it fills the room exactly (the usual case while short documents remain); otherwise
    a bounded subset sum over the distinct lengths: the reachable totals are the bits of one integer, each
    length's copies added in binary-split groups (1, 2, 4, …), and each total remembers the group that first
    reached it, so following them back from the best total spends every group at most once.
    """
    fitting = sizes[: bisect.bisect_right(sizes, room)]
    greedy: dict[int, int] = {}
    left = room
    for length in reversed(fitting):
        count = min(available[length], left // length)
        if count:
            greedy[length] = count
            left -= count * length
    if left == 0:
        return greedy
    reachable, mask = 1, (1 << (room + 1)) - 1
    reached_by: dict[int, tuple[int, int]] = {}
    for length in fitting:
        remaining, group = min(available[length], room // length), 1
        while remaining:
            copies = min(group, remaining)
            remaining, group = remaining - copies, group * 2
            new = (reachable << (copies * length)) & mask & ~reachable
            reachable |= new
            while new:
                lowest = new & -new
                new ^= lowest
                reached_by[lowest.bit_length() - 1] = (length, copies)
    total = reachable.bit_length() - 1
    if room - total >= left:
        return greedy
    fill: dict[int, int] = {}
    while total:
        length, copies = reached_by[total]
        fill[length] = fill.get(length, 0) + copies
        total -= length * copies
    return fill


def pack_multipack(examples: Sequence[TokenizedExample], max_length: int) -> list[PackedSequence]:
    """Documents into as few bins as ``multipack_bins`` finds; documents in a bin keep their relative order."""
    docs = _truncate(examples, max_length)
    bins = multipack_bins([len(d) for d in docs], max_length)
    return [_join([docs[i] for i in sorted(b)]) for b in bins]


def padding_efficiency(sequences: Sequence[PackedSequence | TokenizedExample], max_length: int) -> float:
    """Real tokens divided by the tokens of the sequences padded to ``max_length``."""
    if not sequences:
        return 0.0
    return sum(len(s) for s in sequences) / (len(sequences) * max_length)
