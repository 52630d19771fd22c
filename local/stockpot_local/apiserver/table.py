"""``kubectl get`` Table responses: CRD printer columns and default columns for built-ins (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from . import jsonpath
from .resources import ResourceType

Obj = dict[str, Any]
Column = tuple[dict[str, Any], Callable[[Obj], Any]]
TABLE_MEDIA = "as=Table"


def _col(name: str, col_type: str = "string", fmt: str = "", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": col_type, "format": fmt, "description": name, "priority": priority}


def _meta(field: str) -> Callable[[Obj], Any]:
    return lambda o: o["metadata"].get(field)


def human_duration(seconds: float) -> str:
    """Kubernetes' short human durations (``45s``, ``3m20s``, ``5h``, ``12d``), as ``kubectl get`` shows ages."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d" if days < 2920 else f"{days // 365}y"


def age(timestamp: Any, now: datetime | None = None) -> str | None:
    if not isinstance(timestamp, str):
        return None
    try:
        when = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return timestamp
    return human_duration(((now or datetime.now(UTC)) - when).total_seconds())


NAME: Column = (_col("Name", fmt="name"), _meta("name"))
AGE: Column = (_col("Age", "date"), lambda o: age(o["metadata"].get("creationTimestamp")))


def _pod_ready(pod: Obj) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        reason = (state.get("waiting") or state.get("terminated") or {}).get("reason")
        if reason and status.get("phase") not in ("Succeeded",):
            return str(reason)
    return str(status.get("reason") or status.get("phase") or "Unknown")


def _restarts(pod: Obj) -> int:
    return sum(int(s.get("restartCount", 0)) for s in (pod.get("status") or {}).get("containerStatuses") or [])


def _job_status(job: Obj) -> str:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed", "Suspended"):
            return str(cond["type"])
    return "Running"


def _job_completions(job: Obj) -> str:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    return f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}"


def _deploy_ready(d: Obj) -> str:
    return f"{(d.get('status') or {}).get('readyReplicas', 0)}/{(d.get('spec') or {}).get('replicas', 1)}"


def _ports(svc: Obj) -> str:
    ports = (svc.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _event_last_seen(event: Obj) -> str | None:
    when = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    if isinstance(when, str) and "." in when:
        when = when.split(".")[0] + "Z"
    return age(when)


def _event_object(event: Obj) -> str:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "events"): [
        (_col("Last Seen", "date"), _event_last_seen),
        (_col("Type"), lambda o: o.get("type", "")),
        (_col("Reason"), lambda o: o.get("reason", "")),
        (_col("Object"), _event_object),
        (_col("Message"), lambda o: o.get("message", "")),
    ],
    ("", "pods"): [
        NAME,
        (_col("Ready"), _pod_ready),
        (_col("Status"), _pod_status),
        (_col("Restarts", "integer"), _restarts),
        AGE,
        (_col("Node", priority=1), lambda o: (o.get("spec") or {}).get("nodeName", "<none>")),
    ],
    ("batch", "jobs"): [NAME, (_col("Status"), _job_status), (_col("Completions"), _job_completions), AGE],
    ("apps", "deployments"): [
        NAME,
        (_col("Ready"), _deploy_ready),
        (_col("Up-to-date", "integer"), lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
        (_col("Available", "integer"), lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
        AGE,
    ],
    ("", "services"): [
        NAME,
        (_col("Type"), lambda o: (o.get("spec") or {}).get("type", "ClusterIP")),
        (_col("Cluster-IP"), lambda o: (o.get("spec") or {}).get("clusterIP", "<none>")),
        (_col("Port(s)"), _ports),
        AGE,
    ],
    ("", "namespaces"): [NAME, (_col("Status"), lambda o: (o.get("status") or {}).get("phase", "")), AGE],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        NAME,
        (_col("Created At", "date"), _meta("creationTimestamp")),
    ],
}


def _printer_column(spec: dict[str, Any]) -> Column:
    definition = _col(spec["name"], spec.get("type", "string"), spec.get("format", ""), int(spec.get("priority", 0)))
    definition["description"] = spec.get("description", spec["name"])
    path = spec["jsonPath"]

    def cell(obj: Obj) -> Any:
        values = jsonpath.evaluate(obj, path)
        value = values[0] if values else None
        return age(value) if definition["type"] == "date" else value

    return definition, cell


def columns_for(rt: ResourceType) -> list[Column]:
    if not rt.builtin:
        if rt.printer_columns:
            return [NAME, *(_printer_column(c) for c in rt.printer_columns)]
        return [NAME, AGE]
    return BUILTIN_COLUMNS.get(rt.group_resource, [NAME, AGE])


def _row_object(obj: Obj, include: str) -> Obj:
    if include == "Object":
        return obj
    if include == "None":
        return {}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(rt: ResourceType, objs: list[Obj], list_meta: Obj, include_object: str = "Metadata") -> Obj:
    columns = columns_for(rt)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [definition for definition, _ in columns],
        "rows": [{"cells": [cell(o) for _, cell in columns], "object": _row_object(o, include_object)} for o in objs],
    }


def wants_table(accept: str) -> bool:
    return any(TABLE_MEDIA in part and "meta.k8s.io" in part for part in accept.split(","))
