"""Pod phase and conditions from container states (pure)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def pod_phase(restart_policy: str, init_done: bool, init_failed: bool, containers: list[Obj]) -> str:
    """Phase by the Kubernetes rules, from container statuses (``state`` of each)."""
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    states = [c["state"] for c in containers]
    if any("running" in s for s in states):
        return "Running"
    if all("terminated" in s for s in states):
        codes = [s["terminated"]["exitCode"] for s in states]
        if restart_policy == "Always":
            return "Running"
        if all(code == 0 for code in codes):
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"  # OnFailure: the failed ones restart
    if any("terminated" in s for s in states) or any(
        s.get("waiting", {}).get("reason") != "ContainerCreating" for s in states
    ):
        return "Running" if any(c.get("restartCount") for c in containers) else "Pending"
    return "Pending"


def pod_conditions(phase: str, init_done: bool, containers: list[Obj], since: dict[str, str], at: str) -> list[Obj]:
    """PodScheduled, Initialized, ContainersReady, Ready — with transition times kept in ``since``."""
    all_ready = bool(containers) and all(c["ready"] for c in containers) and phase == "Running"
    values = {
        "PodScheduled": True,
        "Initialized": init_done,
        "ContainersReady": all_ready,
        "Ready": all_ready,
    }
    out = []
    for kind, value in values.items():
        status = "True" if value else "False"
        key = f"{kind}={status}"
        if key not in since:
            since.pop(f"{kind}={'False' if value else 'True'}", None)
            since[key] = at
        condition: Obj = {"type": kind, "status": status, "lastTransitionTime": since[key]}
        if not value and kind in ("ContainersReady", "Ready") and phase == "Running":
            condition["reason"] = "ContainersNotReady"
        if not value and phase in ("Succeeded", "Failed") and kind in ("ContainersReady", "Ready"):
            condition["reason"] = "PodCompleted"
        out.append(condition)
    return out
