"""The process kubelet: schedules pods to itself and runs them as local processes.

It acts as scheduler, kubelet and kube-proxy for one node. Pods asking for GPUs stay Pending (this node has
none). On a pod's deletion it stops the containers gracefully (SIGTERM, SIGKILL after the grace period) and
then finishes the deletion with ``gracePeriodSeconds=0``, as a real kubelet does.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from pathlib import Path
from typing import Any

from stockpot_local.controllers.informer import Informer
from stockpot_local.kubeclient import CONFIGMAPS, ENDPOINTS, PODS, SECRETS, SERVICES, ApiError, KubeClient
from stockpot_local.kubelet.addresses import PodAddresses
from stockpot_local.kubelet.containers import now
from stockpot_local.kubelet.env import decode_secret, dns_names, service_variables
from stockpot_local.kubelet.pod_worker import PodContext, PodWorker
from stockpot_local.kubelet.proxy import ServiceProxy

log = logging.getLogger(__name__)
Obj = dict[str, Any]
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


def gpu_request(pod: Obj) -> int:
    total = 0
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        for section in ("limits", "requests"):
            for name in GPU_RESOURCES:
                if name in (resources.get(section) or {}):
                    total = max(total, int(str(resources[section][name])))
    return total


class Kubelet:
    def __init__(self, api_url: str, state_dir: Path, node_name: str = "local") -> None:
        self.api_url, self.state_dir, self.node_name = api_url, Path(state_dir), node_name
        self.client = KubeClient(api_url)
        self.pods = Informer(self.client, PODS)
        self.services = Informer(self.client, SERVICES)
        self.endpoints = Informer(self.client, ENDPOINTS)
        self.proxy = ServiceProxy(self.services, self.endpoints)
        self.addresses = PodAddresses()
        self.workers: dict[str, PodWorker] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._deleting: set[str] = set()
        self._queue: asyncio.Queue[Obj] = asyncio.Queue()
        self._loop_task: asyncio.Task[None] | None = None
        self.pods.add_handler(lambda _type, pod: self._queue.put_nowait(pod))

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for informer in (self.pods, self.services, self.endpoints):
            informer.start()
        await asyncio.wait_for(
            asyncio.gather(*(i.synced.wait() for i in (self.pods, self.services, self.endpoints))), timeout=30
        )
        self.proxy.sync()
        for pod in self.pods.objects():
            self._queue.put_nowait(pod)
        self._loop_task = asyncio.create_task(self._loop(), name="kubelet")
        log.info("kubelet %s started against %s", self.node_name, self.api_url)

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for worker in list(self.workers.values()):
            for run in (*worker.init_containers, *worker.containers):
                run.kill()
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.proxy.close()
        for informer in (self.pods, self.services, self.endpoints):
            await informer.stop()
        await self.client.close()

    async def _loop(self) -> None:
        while True:
            pod = await self._queue.get()
            try:
                await self._handle(pod)
            except ApiError as error:
                if error.code not in (404, 409):
                    log.warning("kubelet: %s", error)
            except Exception:
                log.exception("kubelet failed to handle pod %s", pod.get("metadata", {}).get("name"))

    async def _handle(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        uid = meta["uid"]
        current = next((p for p in self.pods.objects(meta["namespace"]) if p["metadata"]["uid"] == uid), None)
        if current is None:  # gone from the API: make sure nothing of it still runs
            self._forget(uid)
            return
        if meta.get("deletionTimestamp"):
            if uid not in self._deleting:
                self._deleting.add(uid)
                self.tasks[f"delete-{uid}"] = asyncio.create_task(self._delete(current))
            return
        if not spec.get("nodeName"):
            await self._schedule(current)
        elif (
            spec["nodeName"] == self.node_name
            and uid not in self.workers
            and current.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        ):
            self._run(current)

    async def _schedule(self, pod: Obj) -> None:
        meta = pod["metadata"]
        if gpu_request(pod) > 0:
            condition = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
                "lastTransitionTime": now(),
            }
            existing = pod.get("status", {}).get("conditions") or []
            if not any(c.get("reason") == "Unschedulable" for c in existing):
                await self.client.patch_status(PODS, meta["name"], {"conditions": [condition]}, meta["namespace"])
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            await self.client.create(PODS, binding, meta["namespace"], sub="binding")
        except ApiError as error:
            if error.code not in (404, 405):
                raise
            await self.client.patch(PODS, meta["name"], {"spec": {"nodeName": self.node_name}}, meta["namespace"])

    def _run(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        address = pod.get("status", {}).get("podIP")
        if address:
            self.addresses.adopt(uid, address)
        context = PodContext(
            state_dir=self.state_dir,
            node_name=self.node_name,
            pod_ip=address or self.addresses.allocate(uid),
            base_env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": os.environ.get("LANG", "C.UTF-8")},
            lookup_data=self._lookup_data,
            cluster_names=self._cluster_names,
            service_env=self._service_env,
            write_status=self._write_status,
        )
        worker = PodWorker(pod, context)
        self.workers[uid] = worker
        self.tasks[uid] = asyncio.create_task(worker.run(), name=f"pod-{pod['metadata']['name']}")

    async def _delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        worker = self.workers.get(meta["uid"])
        grace = float(meta.get("deletionGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30)))
        if worker is not None:
            await worker.terminate(grace)
        self._forget(meta["uid"])
        self.tasks.pop(f"delete-{meta['uid']}", None)
        await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0, uid=meta["uid"])

    def _forget(self, uid: str) -> None:
        worker, task = self.workers.pop(uid, None), self.tasks.pop(uid, None)
        if worker is not None:
            for run in (*worker.init_containers, *worker.containers):
                run.kill()
        if task is not None:
            task.cancel()
        self.addresses.release(uid)
        self._deleting.discard(uid)

    async def _lookup_data(self, pod: Obj) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        namespace = pod["metadata"]["namespace"]
        secret_names, config_names = _references(pod)
        secrets, config_maps = {}, {}
        for name in secret_names:
            found = await self.client.get_or_none(SECRETS, name, namespace)
            if found is not None:
                secrets[name] = decode_secret(found)
        for name in config_names:
            found = await self.client.get_or_none(CONFIGMAPS, name, namespace)
            if found is not None:
                data = dict(found.get("data") or {})
                data.update(
                    {
                        k: base64.b64decode(v).decode("utf-8", "replace")
                        for k, v in (found.get("binaryData") or {}).items()
                    }
                )
                config_maps[name] = data
        return secrets, config_maps

    def _cluster_names(self, namespace: str) -> dict[str, str]:
        # Addresses are this kubelet's to give: a pod that has not reported one yet gets it now, so a peer
        # started first can already resolve it (torchrun's MASTER_ADDR names pod 0 of an Indexed Job).
        pods = []
        for pod in self.pods.objects():
            known = pod
            if not pod.get("status", {}).get("podIP") and not pod["metadata"].get("deletionTimestamp"):
                address = self.addresses.allocate(pod["metadata"]["uid"])
                known = {**pod, "status": {**pod.get("status", {}), "podIP": address}}
            pods.append(known)
        return dns_names(namespace, list(self.services.objects()), pods)

    def _service_env(self, namespace: str) -> dict[str, str]:
        return service_variables(list(self.services.objects(namespace)))

    async def _write_status(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.patch_status(PODS, meta["name"], status, meta["namespace"])
        except ApiError as error:
            if error.code != 404:
                raise


def _references(pod: Obj) -> tuple[set[str], set[str]]:
    """Names of the Secrets and ConfigMaps a pod's volumes and containers refer to."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    spec = pod.get("spec", {})
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            secrets.add(volume["secret"].get("secretName", ""))
        if "configMap" in volume:
            config_maps.add(volume["configMap"].get("name", ""))
    for container in (*(spec.get("initContainers") or []), *spec.get("containers", [])):
        for variable in container.get("env") or []:
            source = variable.get("valueFrom") or {}
            if "secretKeyRef" in source:
                secrets.add(source["secretKeyRef"].get("name", ""))
            if "configMapKeyRef" in source:
                config_maps.add(source["configMapKeyRef"].get("name", ""))
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                secrets.add(source["secretRef"].get("name", ""))
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"].get("name", ""))
    return secrets, config_maps
