"""Discovery documents: /version, /api, /apis and per group-version resource lists (pure)."""

from __future__ import annotations

import re
from typing import Any

from .resources import Registry, ResourceType

Doc = dict[str, Any]
KUBERNETES_MAJOR, KUBERNETES_MINOR = "1", "33"


def version_info() -> Doc:
    return {
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": f"v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.0-stockpot",
        "gitCommit": "stockpot-local",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "python",
        "compiler": "python",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> Doc:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _version_order(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, then higher numbers first."""
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", version)
    if not m:
        return (3, 0, 0)
    major, stage, minor = m.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0))


def group_list(registry: Registry) -> Doc:
    groups = []
    for group, versions in sorted(registry.group_versions().items()):
        if not group:
            continue
        ordered = sorted(versions, key=_version_order)
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> Doc | None:
    for entry in group_list(registry)["groups"]:
        if entry["name"] == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **entry}
    return None


def _resource_entries(rt: ResourceType) -> list[Doc]:
    main: Doc = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    entries = [main]
    sub = {"singularName": "", "namespaced": rt.namespaced, "kind": rt.kind}
    if rt.has_status:
        entries.append({"name": f"{rt.plural}/status", **sub, "verbs": ["get", "patch", "update"]})
    if rt.scale is not None:
        entries.append(
            {
                "name": f"{rt.plural}/scale",
                **sub,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    if rt.has_log:
        entries.append({"name": f"{rt.plural}/log", **sub, "verbs": ["get"]})
    return entries


def resource_list(registry: Registry, group_name: str, version: str) -> Doc | None:
    types = registry.in_group_version(group_name, version)
    if not types:
        return None
    resources = [entry for rt in sorted(types, key=lambda r: r.plural) for entry in _resource_entries(rt)]
    group_version = f"{group_name}/{version}" if group_name else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


AGGREGATED_MEDIA = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """Whether the client asked for aggregated discovery (apidiscovery.k8s.io/v2)."""
    return any(
        "as=APIGroupDiscoveryList" in part and "v=v2" in part and "v=v2beta1" not in part for part in accept.split(",")
    )


def _aggregated_resource(rt: ResourceType) -> Doc:
    entry: Doc = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subresources = []
    for sub in _resource_entries(rt)[1:]:
        kind = {"group": sub.get("group", rt.group), "version": sub.get("version", rt.version), "kind": sub["kind"]}
        subresources.append({"subresource": sub["name"].split("/", 1)[1], "responseKind": kind, "verbs": sub["verbs"]})
    if subresources:
        entry["subresources"] = subresources
    return entry


def aggregated(registry: Registry, core: bool) -> Doc:
    """``/api`` (core) or ``/apis`` (named groups) as an APIGroupDiscoveryList."""
    items = []
    for group_name, versions in sorted(registry.group_versions().items()):
        if (group_name == "") != core:
            continue
        entries = []
        for version in sorted(versions, key=_version_order):
            types = sorted(registry.in_group_version(group_name, version), key=lambda r: r.plural)
            resources = [_aggregated_resource(rt) for rt in types]
            entries.append({"version": version, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group_name}, "versions": entries})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
