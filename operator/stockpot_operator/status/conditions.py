"""Kubernetes conditions (metav1.Condition) kept by the rules of the API conventions.

- ``lastTransitionTime`` changes only when ``status`` flips; a new reason or message alone does not move it.
- Every write records the ``observedGeneration`` it was made for.
- Mutually exclusive conditions (Running / Succeeded / Failed …) are switched off together by ``set_exclusive``.
- Types and reasons are CamelCase constants: no free-form strings at call sites.

Functions are pure: they take a list of condition dicts and return a new list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

Conditions = list[dict[str, Any]]
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class ConditionType(StrEnum):
    ADMITTED = "Admitted"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INVALID = "Invalid"
    WAITING = "Waiting"
    READY = "Ready"
    PASSED = "Passed"


class Reason(StrEnum):
    SPEC_VALID = "SpecValid"
    SPEC_INVALID = "SpecInvalid"
    JOB_CREATED = "JobCreated"
    PODS_RUNNING = "PodsRunning"
    QUEUED_BY_KUEUE = "QueuedByKueue"
    ADMITTED_BY_KUEUE = "AdmittedByKueue"
    EVICTED = "Evicted"
    SUSPENDED_BY_USER = "SuspendedByUser"
    RESUMED = "Resumed"
    ARTIFACT_COMMITTED = "ArtifactCommitted"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    REFERENCE_NOT_FOUND = "ReferenceNotFound"
    REFERENCE_NOT_READY = "ReferenceNotReady"
    THRESHOLDS_MET = "ThresholdsMet"
    THRESHOLDS_MISSED = "ThresholdsMissed"
    REPLICAS_READY = "ReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    GATE_NOT_PASSED = "GateNotPassed"


def now() -> str:
    """RFC 3339 UTC timestamp at second precision, as Kubernetes writes it."""
    return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Iterable[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: Iterable[dict[str, Any]], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.get("status") == "True"


def set_condition(
    conditions: Sequence[dict[str, Any]],
    type_: str,
    status: bool | str,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    at: str | None = None,
) -> Conditions:
    """Return ``conditions`` with ``type_`` set; its transition time moves only if the status changed."""
    if not _CAMEL.match(type_) or not _CAMEL.match(reason):
        raise ValueError(f"condition type and reason must be CamelCase: {type_!r}, {reason!r}")
    value = {True: "True", False: "False"}.get(status, status) if isinstance(status, bool) else status
    if value not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    previous = find(conditions, type_)
    transition = previous["lastTransitionTime"] if previous and previous.get("status") == value else (at or now())
    updated: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    out = [dict(c) for c in conditions if c.get("type") != type_]
    index = next((i for i, c in enumerate(conditions) if c.get("type") == type_), len(out))
    out.insert(index, updated)
    return out


def set_exclusive(
    conditions: Sequence[dict[str, Any]],
    group: Iterable[str],
    type_: str,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    at: str | None = None,
) -> Conditions:
    """Set ``type_`` True and every other present member of ``group`` False with the same reason."""
    out = set_condition(conditions, type_, True, reason, message, generation=generation, at=at)
    for other in group:
        if other != type_ and find(out, other) is not None:
            out = set_condition(out, other, False, reason, generation=generation, at=at)
    return out


def remove(conditions: Sequence[dict[str, Any]], type_: str) -> Conditions:
    return [dict(c) for c in conditions if c.get("type") != type_]
