"""The Deployment controller's decisions as pure functions: ReplicaSet per template hash, rollout steps
(RollingUpdate with maxSurge/maxUnavailable, Recreate) and the Deployment status."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any

from stockpot_local.controllers import conditions as cond
from stockpot_local.controllers.children import owner_reference

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj) -> str:
    """A stable short hash of a pod template (FNV-32a over canonical JSON, safe-encoded like kube's)."""
    value = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True, separators=(",", ":")).encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[b % len(_SAFE)] for b in str(value).encode())


def scaled_value(value: int | str | None, total: int, default: str, round_up: bool) -> int:
    """Resolve an IntOrString like '25%' against a total."""
    raw = default if value is None else value
    if isinstance(raw, int):
        return raw
    if raw.endswith("%"):
        exact = int(raw[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(raw)


def _replicas(rs: Obj) -> int:
    return int(rs["spec"].get("replicas") or 0)


def _available(rs: Obj) -> int:
    return int((rs.get("status") or {}).get("availableReplicas") or 0)


def _revision(rs: Obj) -> int:
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def new_replicaset(deploy: Obj, revision: int, replicas: int) -> Obj:
    template = copy.deepcopy(deploy["spec"]["template"])
    digest = template_hash(template)
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), HASH_LABEL: digest}
    selector = copy.deepcopy(deploy["spec"]["selector"])
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: digest}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deploy['metadata']['name']}-{digest}",
            "namespace": deploy["metadata"]["namespace"],
            "labels": meta["labels"],
            "annotations": {REVISION: str(revision)},
            "ownerReferences": [owner_reference(deploy)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }


@dataclass
class DeploymentPlan:
    """A ReplicaSet to create (or None), replica counts to set per ReplicaSet name, and the status."""

    create: Obj | None = None
    scale: dict[str, int] = field(default_factory=dict)
    status: Obj = field(default_factory=dict)


def _rolling(deploy: Obj, new: Obj, olds: list[Obj], replicas: int) -> dict[str, int]:
    strategy = (deploy["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled_value(strategy.get("maxSurge"), replicas, "25%", round_up=True)
    unavailable = scaled_value(strategy.get("maxUnavailable"), replicas, "25%", round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    scale: dict[str, int] = {}
    total = _replicas(new) + sum(_replicas(o) for o in olds)
    if not any(_replicas(o) for o in olds):
        target = replicas
    else:
        target = min(replicas, _replicas(new) + max(replicas + surge - total, 0))
    if target != _replicas(new):
        scale[new["metadata"]["name"]] = target
    min_available = replicas - unavailable
    new_unavailable = _replicas(new) - _available(new)
    budget = total - min_available - new_unavailable
    available = _available(new) + sum(_available(o) for o in olds)
    healthy_budget = available - min_available
    for old in sorted(olds, key=_revision):
        want = _replicas(old)
        unhealthy = min(max(want - _available(old), 0), max(budget, 0))
        want, budget = want - unhealthy, budget - unhealthy
        healthy = min(want, max(budget, 0), max(healthy_budget, 0))
        want, budget, healthy_budget = want - healthy, budget - healthy, healthy_budget - healthy
        if want != _replicas(old):
            scale[old["metadata"]["name"]] = want
    return scale


def _recreate(new: Obj, olds: list[Obj], replicas: int) -> dict[str, int]:
    scale = {o["metadata"]["name"]: 0 for o in olds if _replicas(o)}
    old_pods = sum(int((o.get("status") or {}).get("replicas") or 0) for o in olds)
    if not scale and old_pods == 0 and _replicas(new) != replicas:
        scale[new["metadata"]["name"]] = replicas
    return scale


def plan_deployment(deploy: Obj, replicasets: list[Obj], now: str) -> DeploymentPlan:
    """Decide ReplicaSet creation and scaling for one rollout step, and compute the status."""
    spec = deploy["spec"]
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    digest = template_hash(spec["template"])
    new = next((r for r in replicasets if (r["metadata"].get("labels") or {}).get(HASH_LABEL) == digest), None)
    olds = [r for r in replicasets if r is not new]
    plan = DeploymentPlan()
    recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
    if new is None:
        revision = max((_revision(r) for r in replicasets), default=0) + 1
        first = 0 if recreate and any(_replicas(o) for o in olds) else None
        new = new_replicaset(deploy, revision, 0)
        plan.create = new
        scale = _recreate(new, olds, replicas) if recreate else _rolling(deploy, new, olds, replicas)
        new["spec"]["replicas"] = first if first is not None else scale.pop(new["metadata"]["name"], 0)
        plan.scale = scale
    else:
        plan.scale = _recreate(new, olds, replicas) if recreate else _rolling(deploy, new, olds, replicas)
    plan.status = deployment_status(deploy, new, olds, replicas, created=plan.create is not None, now=now)
    return plan


def deployment_status(deploy: Obj, new: Obj, olds: list[Obj], replicas: int, *, created: bool, now: str) -> Obj:
    every = [new, *olds]
    total = sum(int((r.get("status") or {}).get("replicas") or 0) for r in every)
    ready = sum(int((r.get("status") or {}).get("readyReplicas") or 0) for r in every)
    available = sum(_available(r) for r in every)
    updated = int((new.get("status") or {}).get("replicas") or 0)
    strategy = (deploy["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    min_available = replicas - scaled_value(strategy.get("maxUnavailable"), replicas, "25%", round_up=False)
    status = copy.deepcopy(deploy.get("status") or {})
    conditions = status.get("conditions") or []
    if available >= min_available:
        conditions = cond.set_condition(
            conditions, "Available", True, "MinimumReplicasAvailable", "Deployment has minimum availability.", now=now
        )
    else:
        msg = "Deployment does not have minimum availability."
        conditions = cond.set_condition(conditions, "Available", False, "MinimumReplicasUnavailable", msg, now=now)
    name = new["metadata"]["name"]
    if updated == replicas and _available(new) >= replicas and total == replicas:
        reason, msg = "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.'
    elif created:
        reason, msg = "NewReplicaSetCreated", f'Created new replica set "{name}"'
    else:
        reason, msg = "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.'
    conditions = cond.set_condition(conditions, "Progressing", True, reason, msg, now=now)
    for c in conditions:
        c.setdefault("lastUpdateTime", now)
    status.update(
        observedGeneration=deploy["metadata"].get("generation", 1),
        replicas=total,
        updatedReplicas=updated,
        readyReplicas=ready,
        availableReplicas=available,
        unavailableReplicas=max(replicas - available, 0),
        conditions=conditions,
    )
    return status
