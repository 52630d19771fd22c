"""The Service and Endpoints controller.

Each Service with a selector gets an Endpoints object listing the matching pods' IPs (ready ones under
`addresses`, the others under `notReadyAddresses`) with named target ports resolved per pod.

Local-cluster deviation: a real API server allocates `spec.clusterIP`; the embedded one may leave it empty,
so this controller fills it from the loopback range 127.32.0.0/11 (pod IPs come from 127.64.0.0/10, see
`stockpot_local.kubelet.addresses`). Loopback only: this machine may not use private ranges such as 10.x.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Iterable
from typing import Any

from stockpot_local.controllers.children import pod_is_ready
from stockpot_local.controllers.informer import Informer, Key, WorkQueue, key_of
from stockpot_local.kubeclient import ENDPOINTS, SERVICES, ApiError, KubeClient, Obj

log = logging.getLogger(__name__)
SERVICE_NETWORK = ipaddress.ip_network("127.32.0.0/11")
MANAGED_BY = "endpoints.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpoint-controller"


def allocate_cluster_ip(used: Iterable[str], rng: random.Random | None = None) -> str:
    """A free address in the service range, avoiding network/broadcast-like last octets."""
    taken = set(used)
    pick = rng or random.Random()
    base = int(SERVICE_NETWORK.network_address)
    for _ in range(10_000):
        addr = ipaddress.ip_address(base + pick.randrange(1, SERVICE_NETWORK.num_addresses - 1))
        if str(addr) not in taken and str(addr).rsplit(".", 1)[1] not in ("0", "255"):
            return str(addr)
    raise RuntimeError("service address range exhausted")


def resolve_target_port(port: Obj, pod: Obj) -> int | None:
    """A service port's targetPort for one pod: a number, or a named container port looked up in the pod."""
    target: Any = port.get("targetPort", port["port"])
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod["spec"].get("containers", []):
        for cport in container.get("ports") or []:
            if cport.get("name") == target:
                return int(cport["containerPort"])
    return None


def _address(pod: Obj, service_name: str) -> Obj:
    meta, spec = pod["metadata"], pod["spec"]
    address: Obj = {
        "ip": pod["status"]["podIP"],
        "targetRef": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
    }
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    if spec.get("hostname") and spec.get("subdomain") == service_name:
        address["hostname"] = spec["hostname"]
    return address


def endpoint_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """Endpoints subsets for a Service: pods grouped by their resolved port set."""
    selector = service["spec"].get("selector") or {}
    name = service["metadata"]["name"]
    publish_all = bool(service["spec"].get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[str, int, str], ...], Obj] = {}
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        labels = pod["metadata"].get("labels") or {}
        status = pod.get("status") or {}
        if any(labels.get(k) != v for k, v in selector.items()) or not status.get("podIP"):
            continue
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        ports = []
        for port in service["spec"].get("ports") or []:
            number = resolve_target_port(port, pod)
            if number is not None:
                ports.append((str(port.get("name", "")), number, str(port.get("protocol", "TCP"))))
        group = groups.setdefault(tuple(ports), {"addresses": [], "notReadyAddresses": []})
        ready = publish_all or (pod_is_ready(pod) and not pod["metadata"].get("deletionTimestamp"))
        group["addresses" if ready else "notReadyAddresses"].append(_address(pod, name))
    subsets = []
    for ports_key, group in groups.items():
        subset: Obj = {k: v for k, v in group.items() if v}
        subset["ports"] = [{**({"name": n} if n else {}), "port": p, "protocol": proto} for n, p, proto in ports_key]
        subsets.append(subset)
    return subsets


class ServiceController:
    """Allocates cluster IPs when missing and keeps each selector Service's Endpoints current."""

    def __init__(self, client: KubeClient, services: Informer, endpoints: Informer, pods: Informer) -> None:
        self.client = client
        self.services = services
        self.endpoints = endpoints
        self.pods = pods
        self.queue = WorkQueue("service", self.reconcile)
        services.add_handler(lambda _t, obj: self.queue.add(key_of(obj)))
        pods.add_handler(self._on_pod)

    def _on_pod(self, _event_type: str, pod: Obj) -> None:
        for svc in self.services.objects(pod["metadata"]["namespace"]):
            if svc["spec"].get("selector"):
                self.queue.add(key_of(svc))

    async def reconcile(self, key: Key) -> float | None:
        service = self.services.cache.get(key)
        current = self.endpoints.cache.get(key)
        if service is None:
            if current is not None and (current["metadata"].get("labels") or {}).get(MANAGED_BY):
                await self.client.delete(ENDPOINTS, key[1], key[0])
            return None
        spec = service["spec"]
        if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
            await self._allocate(service)
        if not spec.get("selector"):
            return None
        subsets = endpoint_subsets(service, list(self.pods.objects(key[0])))
        if current is not None and (current.get("subsets") or []) == subsets:
            return None
        labels = {**(service["metadata"].get("labels") or {}), MANAGED_BY: CONTROLLER_NAME}
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": key[1], "namespace": key[0], "labels": labels},
            "subsets": subsets,
        }
        if current is None:
            await self.client.create(ENDPOINTS, body, key[0])
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.client.replace(ENDPOINTS, body)
        return None

    async def _allocate(self, service: Obj) -> None:
        used = [str(s["spec"].get("clusterIP")) for s in self.services.objects()]
        address = allocate_cluster_ip(used)
        meta = service["metadata"]
        try:
            patch = {"spec": {"clusterIP": address, "clusterIPs": [address]}}
            await self.client.patch(SERVICES, meta["name"], patch, meta["namespace"])
        except ApiError as err:
            log.warning("cannot set clusterIP of service %s/%s: %s", meta["namespace"], meta["name"], err)
