"""A tiny kopf operator for the conformance suite (run with ``kopf run --standalone``).

Every handler run appends one JSON line to ``$OPERATOR_LOG`` so the test can count runs.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import kopf
import kubernetes

core_api: Any = kubernetes.client.CoreV1Api
load_kube_config: Any = kubernetes.config.load_kube_config

GROUP = os.environ["WIDGET_GROUP"]
LOG = os.environ["OPERATOR_LOG"]
PREFIX = "test.stockpot.dev"


def record(event: str, name: str) -> None:
    with open(LOG, "a") as handle:
        handle.write(json.dumps({"event": event, "name": name}) + "\n")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX)
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 60
    load_kube_config()


@kopf.on.create(GROUP, "v1", "widgets")
def create(**kwargs: Any) -> None:
    body, name, namespace, patch = kwargs["body"], kwargs["name"], kwargs["namespace"], kwargs["patch"]
    spec = kwargs["spec"]
    record("create", name)
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-child"},
        "data": {"size": str(spec["size"])},
    }
    kopf.adopt(child, owner=body)
    try:
        core_api().create_namespaced_config_map(namespace, child)
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:
            raise
    patch.status["phase"] = "Created"
    kopf.info(body, reason="ChildCreated", message=f"created {name}-child")


@kopf.on.update(GROUP, "v1", "widgets", field="spec.size")
def resize(**kwargs: Any) -> None:
    name, namespace, new, patch = kwargs["name"], kwargs["namespace"], kwargs["new"], kwargs["patch"]
    record("update", name)
    core_api().patch_namespaced_config_map(f"{name}-child", namespace, {"data": {"size": str(new)}})
    patch.status["phase"] = "Resized"


@kopf.on.delete(GROUP, "v1", "widgets")
def delete(**kwargs: Any) -> None:
    record("delete", kwargs["name"])
