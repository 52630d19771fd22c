"""OpenAPI v3 documents (what kubectl explain/apply and field validation look up), built from the
built-in Kubernetes schemas and CRD schemas (pure)."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from . import builtin_schemas
from .resources import Registry, ResourceType

Doc = dict[str, Any]
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
REF_PREFIXES = ("/api/_definitions.json#/$defs/", "_definitions.json#/$defs/", "#/$defs/")
QUERY_PARAMS = ("fieldValidation", "fieldManager", "dryRun", "force")


def _convert(node: Any) -> Any:
    """JSON Schema 2020 as kubernetes-validate writes it → OpenAPI 3.0 (refs, nullable types)."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str):
        for prefix in REF_PREFIXES:
            if ref.startswith(prefix):
                out["$ref"] = "#/components/schemas/" + ref[len(prefix) :]
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        out["type"] = types[0] if len(types) == 1 else "string"
    return out


@functools.cache
def _builtin_definitions() -> dict[str, Any]:
    defs: dict[str, Any] = builtin_schemas.definitions_document(strict=False).get("$defs", {})
    return {name: _convert(schema) for name, schema in defs.items()}


def _closure(names: list[str]) -> dict[str, Any]:
    defs = _builtin_definitions()
    out: dict[str, Any] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in out or name not in defs:
            continue
        out[name] = defs[name]
        text = json.dumps(defs[name])
        pending.extend(part.split('"')[0] for part in text.split('"#/components/schemas/')[1:])
    return out


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


@functools.cache
def _schema_names_by_gvk() -> dict[tuple[str, str, str], str]:
    out = {}
    for name, schema in _builtin_definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            out[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return out


def _builtin_schema_name(rt: ResourceType) -> str | None:
    return _schema_names_by_gvk().get((rt.group, rt.version, rt.kind))


def custom_schema_name(rt: ResourceType) -> str:
    return ".".join(reversed(rt.group.split("."))) + f".{rt.version}.{rt.kind}"


def _custom_schema(rt: ResourceType) -> Doc:
    schema: Doc = json.loads(json.dumps(rt.schema or {"type": "object"}))
    props = schema.setdefault("properties", {})
    props["metadata"] = {"$ref": f"#/components/schemas/{OBJECT_META}"}
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def _operation(rt: ResourceType, action: str, ref: str) -> Doc:
    params = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for p in QUERY_PARAMS]
    content = {"application/json": {"schema": {"$ref": ref}}}
    op: Doc = {
        "operationId": f"{action}{rt.kind}",
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": content}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt),
    }
    if action in ("post", "put", "patch"):
        op["requestBody"] = {"content": content}
    return op


def _paths(rt: ResourceType, ref: str) -> Doc:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    item = {
        a: _operation(rt, action, ref)
        for a, action in (("get", "get"), ("put", "put"), ("patch", "patch"), ("delete", "delete"))
    }
    collection = {a: _operation(rt, action, ref) for a, action in (("get", "list"), ("post", "post"))}
    paths = {base: collection, f"{base}/{{name}}": item}
    if rt.has_status:
        paths[f"{base}/{{name}}/status"] = {a: _operation(rt, a, ref) for a in ("get", "put", "patch")}
    return paths


def group_version_document(registry: Registry, group: str, version: str) -> Doc | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    schemas: dict[str, Any] = {}
    paths: Doc = {}
    for rt in types:
        name = _builtin_schema_name(rt) if rt.builtin else custom_schema_name(rt)
        if name is None:
            continue
        if rt.builtin:
            schemas.update(_closure([name]))
        else:
            schemas[name] = _custom_schema(rt)
            schemas.update(_closure([OBJECT_META]))
        paths.update(_paths(rt, f"#/components/schemas/{name}"))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def index(registry: Registry) -> Doc:
    """``/openapi/v3``: one entry per group-version, with a hash that changes when its types change."""
    paths = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            digest = hashlib.sha256(
                json.dumps(
                    [(rt.plural, rt.schema) for rt in registry.in_group_version(group, version)],
                    sort_keys=True,
                    default=str,
                ).encode()
            ).hexdigest()[:32]
            gv = _gv_path(group, version)
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest.upper()}"}
    return {"paths": paths}
