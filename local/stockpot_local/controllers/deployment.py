"""The Deployment controller (apps/v1): applies `plan_deployment` through the API."""

from __future__ import annotations

from stockpot_local.controllers.conditions import now_rfc3339
from stockpot_local.controllers.deployment_plan import plan_deployment
from stockpot_local.controllers.informer import Informer, Key, WorkQueue, key_of, owner_uid
from stockpot_local.controllers.status import status_patch
from stockpot_local.kubeclient import DEPLOYMENTS, REPLICASETS, ApiError, KubeClient, Obj


class DeploymentController:
    """Reconciles every Deployment against the ReplicaSets it owns."""

    def __init__(self, client: KubeClient, deployments: Informer, replicasets: Informer) -> None:
        self.client = client
        self.deployments = deployments
        self.replicasets = replicasets
        self.queue = WorkQueue("deployment", self.reconcile)
        deployments.add_handler(lambda _t, obj: self.queue.add(key_of(obj)))
        replicasets.add_handler(self._on_replicaset)

    def _on_replicaset(self, _event_type: str, rs: Obj) -> None:
        uid = owner_uid(rs, "Deployment")
        for ref in rs["metadata"].get("ownerReferences", []):
            if uid is not None and ref.get("uid") == uid:
                self.queue.add((rs["metadata"]["namespace"], ref["name"]))

    async def reconcile(self, key: Key) -> float | None:
        deploy = self.deployments.cache.get(key)
        if deploy is None or deploy["metadata"].get("deletionTimestamp"):
            return None
        uid = deploy["metadata"]["uid"]
        owned = [r for r in self.replicasets.objects(key[0]) if owner_uid(r, "Deployment") == uid]
        plan = plan_deployment(deploy, owned, now_rfc3339())
        if plan.create is not None:
            try:
                await self.client.create(REPLICASETS, plan.create, key[0])
            except ApiError as err:
                if err.code != 409:
                    raise
                return 0.5
        for name, replicas in plan.scale.items():
            await self.client.patch(REPLICASETS, name, {"spec": {"replicas": replicas}}, key[0])
        patch = status_patch(deploy.get("status") or {}, plan.status)
        if patch:
            await self.client.patch_status(DEPLOYMENTS, key[1], patch, key[0])
        return None
