"""The Job controller (batch/v1): applies `plan_job` decisions through the API."""

from __future__ import annotations

import datetime as dt

from stockpot_local.controllers.children import pod_from_template, random_suffix
from stockpot_local.controllers.informer import (
    Expectations,
    Informer,
    Key,
    WorkQueue,
    key_of,
    owned_pod_handler,
    owner_uid,
)
from stockpot_local.controllers.job_plan import INDEX_KEY, plan_job
from stockpot_local.controllers.status import status_patch
from stockpot_local.kubeclient import JOBS, PODS, ApiError, KubeClient, Obj


def job_pod(job: Obj, index: int | None) -> Obj:
    """The pod manifest for one Job pod (one completion index for Indexed Jobs)."""
    name, uid = job["metadata"]["name"], job["metadata"]["uid"]
    labels = {
        "batch.kubernetes.io/job-name": name,
        "batch.kubernetes.io/controller-uid": uid,
        "job-name": name,
        "controller-uid": uid,
    }
    annotations: dict[str, str] = {}
    suffix = random_suffix()
    if index is not None:
        labels[INDEX_KEY] = annotations[INDEX_KEY] = str(index)
        suffix = f"{index}-{suffix}"
    pod = pod_from_template(job["spec"]["template"], f"{name}-{suffix}", job, labels, annotations)
    if index is not None:
        spec = pod["spec"]
        spec["hostname"] = f"{name}-{index}"
        env = {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}},
        }
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            container["env"] = [env, *(container.get("env") or [])]
    return pod


class JobController:
    """Reconciles every Job against the pods it owns."""

    def __init__(self, client: KubeClient, jobs: Informer, pods: Informer) -> None:
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.expectations = Expectations()
        self.queue = WorkQueue("job", self.reconcile)
        jobs.add_handler(lambda _t, obj: self.queue.add(key_of(obj)))
        pods.add_handler(owned_pod_handler("Job", self.queue, self.expectations))

    def owned_pods(self, job: Obj) -> list[Obj]:
        uid = job["metadata"]["uid"]
        return [p for p in self.pods.objects(job["metadata"]["namespace"]) if owner_uid(p, "Job") == uid]

    async def reconcile(self, key: Key) -> float | None:
        job = self.jobs.cache.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        uid = job["metadata"]["uid"]
        if not self.expectations.satisfied(uid):
            return 1.0
        pods = self.owned_pods(job)
        plan = plan_job(job, pods, dt.datetime.now(dt.UTC))
        if plan.delete_job:
            await self.client.delete(JOBS, key[1], key[0], propagation_policy="Background", uid=uid)
            return None
        await self._apply_pods(job, plan.create, plan.delete)
        patch = status_patch(job.get("status") or {}, plan.status)
        if patch:
            await self.client.patch_status(JOBS, key[1], patch, key[0])
        return plan.requeue_after

    async def _apply_pods(self, job: Obj, create: list[int | None], delete: list[str]) -> None:
        namespace, uid = job["metadata"]["namespace"], job["metadata"]["uid"]
        manifests = [job_pod(job, index) for index in create]
        self.expectations.expect(uid, adds=[m["metadata"]["name"] for m in manifests], dels=delete)
        for manifest in manifests:
            try:
                await self.client.create(PODS, manifest, namespace)
            except ApiError:
                self.expectations.forget(uid, adds=[manifest["metadata"]["name"]])
                raise
        for name in delete:
            if await self.client.delete(PODS, name, namespace) is None:
                self.expectations.forget(uid, dels=[name])
