"""Pure builders for objects a controller owns: owner references, names, pods from templates."""

from __future__ import annotations

import copy
import secrets
from typing import Any

Obj = dict[str, Any]

# The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FINISHED_PHASES = ("Succeeded", "Failed")


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def owner_reference(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_from_template(
    template: Obj,
    name: str,
    owner: Obj,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Obj:
    """A Pod manifest from a pod template, owned by `owner`, with extra labels and annotations."""
    meta = copy.deepcopy(template.get("metadata") or {})
    pod_labels = {**(meta.get("labels") or {}), **(labels or {})}
    pod_annotations = {**(meta.get("annotations") or {}), **(annotations or {})}
    metadata: Obj = {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": pod_labels,
        "ownerReferences": [owner_reference(owner)],
    }
    if pod_annotations:
        metadata["annotations"] = pod_annotations
    if meta.get("finalizers"):
        metadata["finalizers"] = meta["finalizers"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(template["spec"])}


def pod_is_active(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") not in FINISHED_PHASES and not pod["metadata"].get("deletionTimestamp")


def pod_is_terminating(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") not in FINISHED_PHASES and bool(pod["metadata"].get("deletionTimestamp"))


def pod_is_ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Evaluate a LabelSelector (matchLabels and matchExpressions); an empty selector matches nothing."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))
