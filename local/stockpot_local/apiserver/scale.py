"""The ``scale`` subresource: an autoscaling/v1 Scale view of an object's replica fields (pure)."""

from __future__ import annotations

import copy
from typing import Any

from . import jsonpath
from .errors import bad_request
from .resources import ResourceType, ScalePaths
from .selectors import format_label_selector, label_selector_from_dict

Obj = dict[str, Any]


def _first(obj: Obj, path: str | None) -> Any:
    if not path:
        return None
    values = jsonpath.evaluate(obj, path)
    return values[0] if values else None


def _selector(rt: ResourceType, obj: Obj, paths: ScalePaths) -> str:
    if paths.label_selector:
        value = _first(obj, paths.label_selector)
        return value if isinstance(value, str) else ""
    selector = (obj.get("spec") or {}).get("selector")
    return format_label_selector(label_selector_from_dict(selector)) if isinstance(selector, dict) else ""


def to_scale(rt: ResourceType, obj: Obj) -> Obj:
    paths = rt.scale or ScalePaths()
    meta = obj["metadata"]
    status: Obj = {"replicas": int(_first(obj, paths.status_replicas) or 0)}
    selector = _selector(rt, obj, paths)
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": int(_first(obj, paths.spec_replicas) or 0)},
        "status": status,
    }


def with_replicas(rt: ResourceType, obj: Obj, scale: Any) -> Obj:
    """A copy of ``obj`` with the spec replica count taken from ``scale``."""
    if not isinstance(scale, dict) or not isinstance((scale.get("spec") or {}).get("replicas"), int):
        raise bad_request("the Scale object must set spec.replicas to an integer")
    paths = rt.scale or ScalePaths()
    out = copy.deepcopy(obj)
    node = out
    parts = paths.spec_replicas.lstrip(".").split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = scale["spec"]["replicas"]
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        out["metadata"]["resourceVersion"] = rv
    else:
        out["metadata"].pop("resourceVersion", None)
    return out
