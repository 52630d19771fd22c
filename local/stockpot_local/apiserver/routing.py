"""Map a resource URL to what it addresses (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import APIError
from .resources import Registry, ResourceType

NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: cluster-scoped, or all namespaces for a namespaced collection
    name: str | None = None
    subresource: str | None = None


def _not_found(path: str) -> APIError:
    return APIError(
        404,
        "the server could not find the requested resource",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": path}]},
    )


def _split(path: str) -> tuple[str, str, list[str]] | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 4 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


def resolve(registry: Registry, path: str) -> Target:
    """The resource, namespace, name and subresource a ``/api/...`` or ``/apis/...`` path addresses."""
    split = _split(path)
    if split is None:
        raise _not_found(path)
    group, version, rest = split
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise _not_found(path)
    rt = registry.get(group, version, rest[0])
    if rt is None:
        raise _not_found(path)
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if namespace is not None and not rt.namespaced:
        raise _not_found(path)
    if rt.namespaced and name is not None and namespace is None:
        raise _not_found(path)
    if subresource is not None and subresource not in _subresources(rt):
        raise _not_found(path)
    return Target(rt, namespace, name, subresource)


def _subresources(rt: ResourceType) -> tuple[str, ...]:
    subs = []
    if rt.has_status:
        subs.append("status")
    if rt.scale is not None:
        subs.append("scale")
    if rt.has_log:
        subs.append("log")
    if rt.group_resource == ("", "namespaces"):
        subs.append("finalize")
    return tuple(subs)
