"""Status conditions, following the Kubernetes rules: lastTransitionTime moves only when status flips."""

from __future__ import annotations

import datetime as dt
from typing import Any

Obj = dict[str, Any]


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def find(conditions: list[Obj], cond_type: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == cond_type), None)


def is_true(conditions: list[Obj], cond_type: str) -> bool:
    cond = find(conditions, cond_type)
    return cond is not None and cond.get("status") == "True"


def set_condition(
    conditions: list[Obj],
    cond_type: str,
    status: bool,
    reason: str,
    message: str = "",
    *,
    now: str | None = None,
    probe_time: bool = False,
) -> list[Obj]:
    """A new list with the condition set; an unchanged status keeps its lastTransitionTime."""
    stamp = now or now_rfc3339()
    text = "True" if status else "False"
    old = find(conditions, cond_type)
    changed = old is None or old.get("status") != text
    cond: Obj = {"type": cond_type, "status": text, "reason": reason, "message": message}
    cond["lastTransitionTime"] = stamp if changed or old is None else old.get("lastTransitionTime", stamp)
    if probe_time:
        cond["lastProbeTime"] = stamp if changed or old is None else old.get("lastProbeTime", stamp)
    if old is not None and not changed and old.get("reason") == reason and old.get("message") == message:
        cond = old
    return [cond if c.get("type") == cond_type else c for c in conditions] if old else [*conditions, cond]
