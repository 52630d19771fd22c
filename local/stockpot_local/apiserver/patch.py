"""Patch semantics: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge and apply (pure)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from .errors import APIError, Cause, bad_request

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

# List fields merged element-wise by a key in strategic merge / apply; other lists are replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "name",
    "conditions": "type",
    "imagePullSecrets": "name",
    "containerStatuses": "name",
    "ownerReferences": "uid",
    "tolerations": "key",
}


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("the JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, operations)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise APIError(422, f"the server rejected our request due to an error in our request: {exc}") from exc
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
        raise APIError(422, f"the server rejected our request due to an error in our request: {exc}") from exc
    except (jsonpatch.InvalidJsonPatch, TypeError, KeyError) as exc:
        raise bad_request(f"invalid JSON patch: {exc}") from exc


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, field_name: str = "") -> Any:
    """Strategic merge: like merge patch, but keyed lists merge by their merge key."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        result = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            if value is None:
                result.pop(key, None)
            else:
                result[key] = strategic_merge(result.get(key), value, key)
        return result
    if isinstance(patch, list) and field_name in MERGE_KEYS and isinstance(target, list):
        return _merge_keyed_list(target, patch, MERGE_KEYS[field_name])
    return copy.deepcopy(patch)


def _merge_keyed_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    if not all(isinstance(item, dict) and key in item for item in [*target, *patch]):
        return copy.deepcopy(patch)
    result = list(target)
    positions = {item[key]: i for i, item in enumerate(result)}
    deleted = set()
    for item in patch:
        if item.get("$patch") == "delete":
            deleted.add(item[key])
            continue
        if item[key] in positions:
            idx = positions[item[key]]
            result[idx] = strategic_merge(result[idx], item)
        else:
            positions[item[key]] = len(result)
            result.append(copy.deepcopy(item))
    return [item for item in result if item[key] not in deleted]


def apply_patch(target: Any, patch: Any) -> Any:
    """Server-side apply as far as we use it: the applied configuration merged over the live object."""
    if not isinstance(patch, dict):
        raise bad_request("the apply configuration must be an object")
    return strategic_merge(target, patch)


def patch_object(content_type: str, target: Any, body: Any, builtin: bool) -> Any:
    """Apply a patch body of ``content_type`` to ``target``; the result is a new object."""
    if content_type == JSON_PATCH:
        return json_patch(target, body)
    if content_type == MERGE_PATCH:
        return merge_patch(target, body)
    if content_type == STRATEGIC_PATCH:
        if not builtin:
            raise APIError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
            )
        return strategic_merge(target, body)
    if content_type == APPLY_PATCH:
        return apply_patch(target, body)
    raise APIError(415, f"unsupported patch type {content_type!r}", causes=[Cause("", content_type)])
