"""Pure rules for server-managed metadata: names, uids, timestamps, generation, status separation."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from .errors import Cause, bad_request, invalid
from .resources import ResourceType

Obj = dict[str, Any]

SERVER_META_FIELDS = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# Built-in kinds whose strategy maintains metadata.generation (custom resources always do).
GENERATION_TRACKED = {
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
}
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generated_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


def check_identity(rt: ResourceType, body: Any, namespace: str | None, name: str | None) -> Obj:
    """The body must be an object of this kind; its namespace/name must agree with the URL."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    kind = body.get("kind")
    if kind is not None and kind != rt.kind:
        raise bad_request(f"the kind of the object ({kind}) does not match the URL ({rt.kind})")
    api_version = body.get("apiVersion")
    if api_version is not None and api_version != rt.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match ({rt.api_version})")
    obj = copy.deepcopy(body)
    obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    if rt.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace or body_ns
    else:
        meta.pop("namespace", None)
    if name is not None and meta.get("name") not in (None, name):
        raise bad_request("the name of the object does not match the name on the URL")
    if name is not None:
        meta["name"] = name
    return obj


def prepare_create(rt: ResourceType, obj: Obj) -> Obj:
    """Fill server-set metadata on a new object; drop status the client may not set."""
    meta = obj["metadata"]
    if not meta.get("name"):
        if not meta.get("generateName"):
            raise invalid(
                rt.kind,
                rt.group,
                "",
                [
                    Cause(
                        "metadata.name",
                        "Required value: name or generateName is required",
                        "FieldValueRequired",
                    )
                ],
            )
        meta["name"] = generated_name(meta["generateName"])
    for server_field in (*SERVER_META_FIELDS, "resourceVersion", "managedFields"):
        meta.pop(server_field, None)
    drop_empty_metadata(obj)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_rfc3339()
    if tracks_generation(rt):
        meta["generation"] = 1
    if rt.has_status:
        obj.pop("status", None)
        if rt.builtin:  # built-ins come back with an initial status (custom resources with none)
            obj["status"] = {"replicas": 0} if rt.group_resource == ("apps", "replicasets") else {}
    if rt.builtin and rt.group_resource == ("", "pods"):
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    if rt.builtin and rt.group_resource == ("", "namespaces"):
        obj["status"] = {"phase": "Active"}
    return obj


def drop_empty_metadata(obj: Obj) -> Obj:
    """Empty maps and lists in metadata are omitted, as the real API's serialization does."""
    meta = obj["metadata"]
    for key in [k for k, v in meta.items() if v is None or v in ({}, [])]:
        del meta[key]
    return obj


def tracks_generation(rt: ResourceType) -> bool:
    return not rt.builtin or rt.group_resource in GENERATION_TRACKED


def content_changed(old: Obj, new: Obj) -> bool:
    """Whether anything but metadata and status differs (what bumps ``generation``)."""
    skip = ("metadata", "status", "kind", "apiVersion")
    return {k: v for k, v in old.items() if k not in skip} != {k: v for k, v in new.items() if k not in skip}


def prepare_update(rt: ResourceType, old: Obj, new: Obj, subresource: str | None) -> Obj:
    """Merge an update into ``old`` following the status-subresource rules; bump generation."""
    if subresource == "status":
        merged = {k: v for k, v in old.items() if k != "status"}
        merged["metadata"] = copy.deepcopy(old["metadata"])
        if "status" in new:
            merged["status"] = new["status"]
        return merged
    meta = new["metadata"]
    for server_field in SERVER_META_FIELDS:
        if server_field in old["metadata"]:
            meta[server_field] = old["metadata"][server_field]
        else:
            meta.pop(server_field, None)
    meta.pop("managedFields", None)
    if rt.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    drop_empty_metadata(new)
    if content_changed(old, new) and tracks_generation(rt):
        meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
    if old["metadata"].get("deletionTimestamp") and not _finalizers_shrank_only(old, new):
        raise invalid(
            rt.kind,
            rt.group,
            meta["name"],
            [
                Cause(
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted",
                    "FieldValueForbidden",
                )
            ],
        )
    return new


def _finalizers_shrank_only(old: Obj, new: Obj) -> bool:
    old_f = set(old["metadata"].get("finalizers") or ())
    return set(new["metadata"].get("finalizers") or ()) <= old_f


def same_object(old: Obj, new: Obj) -> bool:
    """True when an update changes nothing (the real API then keeps the resourceVersion)."""
    strip = ("resourceVersion",)
    old_meta = {k: v for k, v in old["metadata"].items() if k not in strip}
    new_meta = {k: v for k, v in new["metadata"].items() if k not in strip}
    return old_meta == new_meta and {k: v for k, v in old.items() if k != "metadata"} == {
        k: v for k, v in new.items() if k != "metadata"
    }


def served_as(rt: ResourceType, obj: Obj) -> Obj:
    """The stored object as seen through the requested version."""
    if obj.get("apiVersion") == rt.api_version:
        return obj
    return {**obj, "apiVersion": rt.api_version}
