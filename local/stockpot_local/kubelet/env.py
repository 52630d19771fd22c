"""A container's environment, command and arguments, resolved the way the kubelet does it (pure functions).

- ``env`` with ``value`` (``$(VAR)`` expanded against earlier variables), ``valueFrom`` (secretKeyRef,
  configMapKeyRef, fieldRef, resourceFieldRef) and ``envFrom``; missing non-optional references are errors.
- Paths: processes cannot mount, so every volume ``mountPath`` (and the termination-message path) that appears
  in command, args or env values is rewritten to the host directory behind it.
- Names: cluster DNS names (``svc.ns.svc.cluster.local`` and shorter dotted forms, ``host.subdomain…`` of pods)
  that appear in command, args or env values are rewritten to their loopback addresses.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any

Obj = dict[str, Any]
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


class ContainerConfigError(Exception):
    """The container cannot start as specified (CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are substituted, ``$$`` escapes, others stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR.sub(replace, text)


def field_value(pod: Obj, path: str) -> str:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ContainerConfigError(f"fieldRef {path!r} is not supported")


def _ref_value(ref: Obj, source: Mapping[str, Mapping[str, str]], kind: str) -> str | None:
    data = source.get(ref.get("name", ""))
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        where = f"{kind} {ref.get('name')!r}" if data is None else f"key {ref['key']!r} in {kind} {ref.get('name')!r}"
        raise ContainerConfigError(f"{where} not found")
    return data[ref["key"]]


def _value_from(
    source: Obj,
    pod: Obj,
    container: Obj,
    secrets: Mapping[str, Mapping[str, str]],
    config_maps: Mapping[str, Mapping[str, str]],
) -> str | None:
    if "secretKeyRef" in source:
        return _ref_value(source["secretKeyRef"], secrets, "secret")
    if "configMapKeyRef" in source:
        return _ref_value(source["configMapKeyRef"], config_maps, "configmap")
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        resource = source["resourceFieldRef"]["resource"]
        kind, _, name = resource.partition(".")
        return str(container.get("resources", {}).get(kind, {}).get(name, "0"))
    raise ContainerConfigError(f"unsupported valueFrom {sorted(source)}")


def container_env(
    pod: Obj,
    container: Obj,
    secrets: Mapping[str, Mapping[str, str]],
    config_maps: Mapping[str, Mapping[str, str]],
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's environment: ``base`` (service variables…), then envFrom, then env in order."""
    env = dict(base or {})
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        ref = source.get("secretRef") or source.get("configMapRef") or {}
        table = secrets if "secretRef" in source else config_maps
        data = table.get(ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f"envFrom {ref.get('name')!r} not found")
        env.update({prefix + key: value for key, value in data.items()})
    for variable in container.get("env") or []:
        if "valueFrom" in variable:
            value = _value_from(variable["valueFrom"], pod, container, secrets, config_maps)
            if value is not None:
                env[variable["name"]] = value
        else:
            env[variable["name"]] = expand(str(variable.get("value", "")), env)
    return env


def decode_secret(secret: Obj) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def remap_paths(text: str, mounts: Sequence[tuple[str, str]]) -> str:
    """Rewrite container paths to host paths, longest mount first, only at path boundaries."""
    for container_path, host_path in sorted(mounts, key=lambda m: len(m[0]), reverse=True):
        pattern = re.compile(r"(?<![\w.\-/])" + re.escape(container_path.rstrip("/")) + r"(?=/|$|[^\w.\-])")
        text = pattern.sub(host_path.replace("\\", "\\\\"), text)
    return text


def rewrite_hosts(text: str, names: Mapping[str, str]) -> str:
    """Replace whole DNS names (dotted forms only) with their addresses, longest name first."""
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(r"(?<![\w.\-])" + re.escape(name) + r"(?![\w\-]|\.[\w\-])", names[name], text)
    return text


def dns_names(namespace: str, services: Sequence[Obj], pods: Sequence[Obj]) -> dict[str, str]:
    """DNS names a pod in ``namespace`` can resolve: services (cluster IP) and pods with hostname+subdomain."""
    names: dict[str, str] = {}
    for service in services:
        meta, ip = service["metadata"], service.get("spec", {}).get("clusterIP")
        if not ip or ip == "None":
            continue
        for name in _forms(meta["name"], meta["namespace"], namespace):
            names[name] = ip
    for pod in pods:
        meta, spec = pod["metadata"], pod.get("spec", {})
        ip = pod.get("status", {}).get("podIP")
        if ip and spec.get("hostname") and spec.get("subdomain"):
            for name in _forms(f"{spec['hostname']}.{spec['subdomain']}", meta["namespace"], namespace):
                names[name] = ip
    return names


def _forms(name: str, its_namespace: str, from_namespace: str) -> list[str]:
    full = [f"{name}.{its_namespace}.svc.cluster.local", f"{name}.{its_namespace}.svc", f"{name}.{its_namespace}"]
    return full + ([name] if its_namespace == from_namespace and "." in name else [])


def service_variables(services: Sequence[Obj]) -> dict[str, str]:
    """The ``<SVC>_SERVICE_HOST/_PORT`` variables Kubernetes gives pods for services in their namespace."""
    env: dict[str, str] = {}
    for service in services:
        ip = service.get("spec", {}).get("clusterIP")
        ports = service.get("spec", {}).get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
    return env
