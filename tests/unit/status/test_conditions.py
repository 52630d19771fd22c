"""Condition rules, table-tested."""

import pytest

from stockpot_operator.status.conditions import find, is_true, remove, set_condition, set_exclusive

pytestmark = pytest.mark.unit

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


@pytest.mark.parametrize(
    ("before", "status", "reason", "expected_time"),
    [
        ([], True, "PodsRunning", T1),  # new condition: stamped now
        (
            [{"type": "Running", "status": "True", "reason": "PodsRunning", "lastTransitionTime": T0}],
            True,
            "Resumed",
            T0,
        ),
        (
            [{"type": "Running", "status": "False", "reason": "JobCreated", "lastTransitionTime": T0}],
            True,
            "PodsRunning",
            T1,
        ),
        (
            [{"type": "Running", "status": "True", "reason": "PodsRunning", "lastTransitionTime": T0}],
            "Unknown",
            "Evicted",
            T1,
        ),
    ],
    ids=["new", "same-status-new-reason", "flip", "to-unknown"],
)
def test_transition_time_moves_only_on_flip(before, status, reason, expected_time) -> None:
    after = set_condition(before, "Running", status, reason, "msg", generation=3, at=T1)
    running = find(after, "Running")
    assert running is not None
    assert running["lastTransitionTime"] == expected_time
    assert running["reason"] == reason
    assert running["observedGeneration"] == 3


def test_input_is_not_mutated_and_order_is_kept() -> None:
    before = [
        {"type": "Admitted", "status": "True", "reason": "SpecValid", "lastTransitionTime": T0},
        {"type": "Running", "status": "False", "reason": "JobCreated", "lastTransitionTime": T0},
    ]
    snapshot = [dict(c) for c in before]
    after = set_condition(before, "Admitted", False, "SpecInvalid", at=T1)
    assert before == snapshot
    assert [c["type"] for c in after] == ["Admitted", "Running"]


def test_exclusive_group_switches_the_others_off() -> None:
    conditions = set_condition([], "Running", True, "PodsRunning", at=T0)
    conditions = set_condition(conditions, "Suspended", False, "Resumed", at=T0)
    conditions = set_exclusive(
        conditions,
        ("Running", "Succeeded", "Failed", "Suspended"),
        "Succeeded",
        "ArtifactCommitted",
        generation=1,
        at=T1,
    )
    assert is_true(conditions, "Succeeded")
    assert not is_true(conditions, "Running")
    running = find(conditions, "Running")
    assert running is not None
    assert running["lastTransitionTime"] == T1
    assert find(conditions, "Failed") is None  # absent members are not invented
    suspended = find(conditions, "Suspended")
    assert suspended is not None
    assert suspended["lastTransitionTime"] == T0  # was already False


@pytest.mark.parametrize(
    ("type_", "status", "reason"),
    [("running", True, "X"), ("Running", True, "not camel"), ("Running", "yes", "X")],
)
def test_rejects_bad_values(type_, status, reason) -> None:
    with pytest.raises(ValueError):
        set_condition([], type_, status, reason)


def test_remove() -> None:
    conditions = set_condition([], "Invalid", True, "SpecInvalid", at=T0)
    assert remove(conditions, "Invalid") == []
