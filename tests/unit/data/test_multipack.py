"""Multipack's bins: best-fit-decreasing, its emptiest bins repacked by minimum bin slack."""

from __future__ import annotations

import math
import random

import pytest

from stockpot_runtime.data import packing
from stockpot_runtime.data.packing import _fullest_fill, best_fit_decreasing, minimum_bin_slack, multipack_bins

pytestmark = pytest.mark.unit


def assert_packing(bins: list[list[int]], lengths: list[int], capacity: int) -> None:
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))  # every document once
    assert all(sum(lengths[i] for i in b) <= capacity for b in bins)


def test_best_fit_puts_each_document_where_it_leaves_the_least_room() -> None:
    # 6 and 5 open bins with rooms 4 and 5; 4 fills the first exactly (not the first with room — the same here),
    # 3 then goes to the second (room 5 -> 2), 2 fills it.
    assert best_fit_decreasing([3, 6, 2, 5, 4], 10) == [[1, 4], [3, 0, 2]]
    # rooms 1 (after 9) and 5 (after 5): 1 goes to the tighter first bin although both have room
    assert best_fit_decreasing([5, 9, 1], 10) == [[1, 2], [0]]


@pytest.mark.parametrize(
    ("available", "room", "fill"),
    [
        ({3: 2, 5: 1}, 6, {3: 2}),  # greedy takes 5 and wastes 1; 3 + 3 fills it
        ({7: 5, 4: 2}, 30, {7: 3, 4: 2}),  # 7 x 4 = 28 greedily; 7 x 3 + 4 x 2 = 29 (copies in groups 1, 2)
        ({2: 3, 5: 1}, 9, {5: 1, 2: 2}),  # greedy is exact: kept
        ({4: 1}, 3, {}),  # nothing fits
    ],
)
def test_fullest_fill(available: dict[int, int], room: int, fill: dict[int, int]) -> None:
    assert _fullest_fill(available, sorted(available), room) == fill


def test_minimum_bin_slack_needs_fewer_bins_than_best_fit_here() -> None:
    lengths = [5, 3, 3, 2, 9, 4, 9, 3]  # 38 tokens in bins of 10: at least 4 bins
    assert len(best_fit_decreasing(lengths, 10)) == 5  # 9 | 9 | 5 4 | 3 3 3 | 2
    bins = minimum_bin_slack(lengths, 10)
    assert_packing(bins, lengths, 10)
    assert sorted(sorted(lengths[i] for i in b) for b in bins) == [[2, 3, 5], [3, 3, 4], [9], [9]]
    assert bins[2] == [0, 1, 3]  # 5, then the 3 with the lowest index, then 2: packing is deterministic
    assert len(multipack_bins(lengths, 10)) == 4


@pytest.mark.parametrize("seed", range(20))
def test_multipack_is_a_packing_never_worse_than_best_fit(seed: int) -> None:
    rng = random.Random(seed)
    capacity = rng.choice([16, 64, 256])
    lengths = [rng.randint(1, capacity) for _ in range(rng.randint(1, 300))]
    bins = multipack_bins(lengths, capacity)
    assert_packing(bins, lengths, capacity)
    assert math.ceil(sum(lengths) / capacity) <= len(bins) <= len(best_fit_decreasing(lengths, capacity))


def test_only_the_emptiest_bins_are_repacked(monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = [10] * 6 + [5, 3, 3, 2, 9, 4, 9, 3]  # six full bins, then the instance above
    monkeypatch.setattr(packing, "REPACKED_BINS", 5)  # the five emptiest bins: all but the full ones
    bins = multipack_bins(lengths, 10)
    assert_packing(bins, lengths, 10)
    assert len(bins) == 6 + 4
    assert sorted(bins[:1]) == [[0]]  # a full bin is kept as best-fit made it: the fullest comes first
    monkeypatch.setattr(packing, "REPACKED_BINS", 1)  # one bin alone cannot be packed into fewer
    assert len(multipack_bins(lengths, 10)) == len(best_fit_decreasing(lengths, 10)) == 6 + 5
