"""The ReplicaSet controller (apps/v1): keeps `spec.replicas` active pods and reports their readiness."""

from __future__ import annotations

from dataclasses import dataclass, field

from stockpot_local.controllers.children import (
    pod_from_template,
    pod_is_active,
    pod_is_ready,
    random_suffix,
)
from stockpot_local.controllers.informer import (
    Expectations,
    Informer,
    Key,
    WorkQueue,
    key_of,
    owned_pod_handler,
    owner_uid,
)
from stockpot_local.controllers.status import status_patch
from stockpot_local.kubeclient import PODS, REPLICASETS, ApiError, KubeClient, Obj


@dataclass
class ReplicaSetPlan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    status: Obj = field(default_factory=dict)


def _deletion_rank(pod: Obj) -> tuple[int, int, str]:
    """Pods deleted first: unscheduled, then not running, then not ready, then the newest."""
    status = pod.get("status") or {}
    created = str(pod["metadata"].get("creationTimestamp", ""))
    newest_first = "".join(chr(0x10FFFF - ord(c)) for c in created)
    return (
        0 if not pod["spec"].get("nodeName") else 1,
        0 if status.get("phase") != "Running" else (1 if not pod_is_ready(pod) else 2),
        newest_first,
    )


def plan_replicaset(rs: Obj, pods: list[Obj]) -> ReplicaSetPlan:
    """Pods to create or delete to reach spec.replicas, and the ReplicaSet status."""
    want = int(rs["spec"].get("replicas", 1) if rs["spec"].get("replicas") is not None else 1)
    active = [p for p in pods if pod_is_active(p)]
    plan = ReplicaSetPlan()
    if len(active) < want:
        plan.create = want - len(active)
    elif len(active) > want:
        plan.delete = [p["metadata"]["name"] for p in sorted(active, key=_deletion_rank)[: len(active) - want]]
    ready = sum(1 for p in active if pod_is_ready(p))
    plan.status = {
        **(rs.get("status") or {}),
        "replicas": len(active),
        "fullyLabeledReplicas": len(active),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    return plan


class ReplicaSetController:
    """Reconciles every ReplicaSet against the pods it owns."""

    def __init__(self, client: KubeClient, replicasets: Informer, pods: Informer) -> None:
        self.client = client
        self.replicasets = replicasets
        self.pods = pods
        self.expectations = Expectations()
        self.queue = WorkQueue("replicaset", self.reconcile)
        replicasets.add_handler(lambda _t, obj: self.queue.add(key_of(obj)))
        pods.add_handler(owned_pod_handler("ReplicaSet", self.queue, self.expectations))

    async def reconcile(self, key: Key) -> float | None:
        rs = self.replicasets.cache.get(key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return None
        uid = rs["metadata"]["uid"]
        if not self.expectations.satisfied(uid):
            return 1.0
        pods = [p for p in self.pods.objects(key[0]) if owner_uid(p, "ReplicaSet") == uid]
        plan = plan_replicaset(rs, pods)
        names = [f"{key[1]}-{random_suffix()}" for _ in range(plan.create)]
        self.expectations.expect(uid, adds=names, dels=plan.delete)
        for name in names:
            try:
                await self.client.create(PODS, pod_from_template(rs["spec"]["template"], name, rs), key[0])
            except ApiError:
                self.expectations.forget(uid, adds=[name])
                raise
        for name in plan.delete:
            if await self.client.delete(PODS, name, key[0]) is None:
                self.expectations.forget(uid, dels=[name])
        patch = status_patch(rs.get("status") or {}, plan.status)
        if patch:
            await self.client.patch_status(REPLICASETS, key[1], patch, key[0])
        return None
