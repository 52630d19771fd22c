"""Finalizers, graceful pod deletion, propagation policies, garbage collection, namespace termination."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from apiserver_samples import SUITE, config_map, pod
from kubernetes import client

pytestmark = pytest.mark.integration


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def cm_exists(kube: Any, namespace: str, name: str) -> bool:
    return bool(kube.core.list_namespaced_config_map(namespace, field_selector=f"metadata.name={name}").items)


def owned(name: str, owner: Any, block: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = config_map(name)
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": owner.metadata.name,
            "uid": owner.metadata.uid,
            "blockOwnerDeletion": block,
        }
    ]
    return body


def test_finalizer_keeps_object_until_removed(kube: Any, namespace: str) -> None:
    body = config_map("cm")
    body["metadata"]["finalizers"] = ["test.stockpot.dev/hold"]
    kube.core.create_namespaced_config_map(namespace, body)
    kube.core.delete_namespaced_config_map("cm", namespace)
    held = kube.core.read_namespaced_config_map("cm", namespace)
    assert held.metadata.deletion_timestamp is not None
    kube.core.patch_namespaced_config_map("cm", namespace, {"metadata": {"finalizers": None}})
    eventually(lambda: not cm_exists(kube, namespace, "cm"))


def test_background_gc_deletes_dependents(kube: Any, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(namespace, config_map("owner"))
    kube.core.create_namespaced_config_map(namespace, owned("child", owner))
    kube.core.delete_namespaced_config_map("owner", namespace)
    eventually(lambda: not cm_exists(kube, namespace, "child"))


def test_foreground_deletion_waits_for_blocking_dependents(kube: Any, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(namespace, config_map("owner"))
    child = owned("child", owner, block=True)
    child["metadata"]["finalizers"] = ["test.stockpot.dev/hold"]
    kube.core.create_namespaced_config_map(namespace, child)
    kube.core.delete_namespaced_config_map("owner", namespace, propagation_policy="Foreground")
    eventually(lambda: kube.core.read_namespaced_config_map("child", namespace).metadata.deletion_timestamp is not None)
    waiting = kube.core.read_namespaced_config_map("owner", namespace)
    assert "foregroundDeletion" in waiting.metadata.finalizers
    kube.core.patch_namespaced_config_map("child", namespace, {"metadata": {"finalizers": None}})
    eventually(lambda: not cm_exists(kube, namespace, "owner"))


def test_orphan_deletion_keeps_dependents(kube: Any, namespace: str) -> None:
    owner = kube.core.create_namespaced_config_map(namespace, config_map("owner"))
    kube.core.create_namespaced_config_map(namespace, owned("child", owner))
    kube.core.delete_namespaced_config_map("owner", namespace, propagation_policy="Orphan")
    eventually(lambda: not cm_exists(kube, namespace, "owner"))
    eventually(lambda: not kube.core.read_namespaced_config_map("child", namespace).metadata.owner_references)


def test_scheduled_pod_deletion_is_graceful(kube: Any, namespace: str) -> None:
    if kube.server is None:
        pytest.skip("on a real cluster the kubelet finishes pod deletion")
    kube.core.create_namespaced_pod(namespace, pod("unscheduled"))
    kube.core.create_namespaced_pod(namespace, pod("scheduled", node_name="local"))
    kube.core.delete_namespaced_pod("unscheduled", namespace)
    kube.core.delete_namespaced_pod("scheduled", namespace)
    names = [p.metadata.name for p in kube.core.list_namespaced_pod(namespace).items]
    assert names == ["scheduled"]
    terminating = kube.core.read_namespaced_pod("scheduled", namespace)
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30
    kube.core.delete_namespaced_pod("scheduled", namespace, grace_period_seconds=0)
    assert not kube.core.list_namespaced_pod(namespace).items


def test_namespace_deletion_removes_contents(kube: Any) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.core.create_namespace({"metadata": {"name": name}})
    kube.core.create_namespaced_config_map(name, config_map("cm"))
    kube.core.delete_namespace(name)

    def gone() -> bool:
        try:
            kube.core.read_namespace(name)
        except client.ApiException as exc:
            return bool(exc.status == 404)
        return False

    eventually(gone, timeout=120)


def test_delete_collection_by_label(kube: Any, namespace: str) -> None:
    kube.core.create_namespaced_config_map(namespace, config_map("a", labels={"drop": "yes"}))
    kube.core.create_namespaced_config_map(namespace, config_map("b"))
    kube.core.delete_collection_namespaced_config_map(namespace, label_selector="drop=yes")

    def remaining() -> list[str]:
        return [c.metadata.name for c in kube.core.list_namespaced_config_map(namespace, label_selector=SUITE).items]

    eventually(lambda: remaining() == ["b"])
