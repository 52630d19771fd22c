"""Pod volumes as host directories (the local kubelet cannot mount; paths are remapped instead)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stockpot_local.kubelet.env import ContainerConfigError

Obj = dict[str, Any]
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


def _write_items(directory: Path, data: Mapping[str, str], items: list[Obj] | None, mode: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    selected = [(item["key"], item["path"]) for item in items] if items else [(k, k) for k in data]
    for key, relative in selected:
        if key not in data:
            raise ContainerConfigError(f"key {key!r} not found for volume {directory.name!r}")
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[key], encoding="utf-8")
        target.chmod(mode)


def prepare_volumes(
    pod: Obj,
    pod_root: Path,
    claims_root: Path,
    secrets: Mapping[str, Mapping[str, str]],
    config_maps: Mapping[str, Mapping[str, str]],
) -> dict[str, Path]:
    """Create every volume of the pod under ``pod_root/volumes``; returns volume name → host directory."""
    out: dict[str, Path] = {}
    namespace = pod["metadata"]["namespace"]
    for volume in pod.get("spec", {}).get("volumes") or []:
        name, directory = volume["name"], pod_root / "volumes" / volume["name"]
        if "emptyDir" in volume:
            directory.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volume or "secret" in volume:
            is_secret = "secret" in volume
            source = volume["secret" if is_secret else "configMap"]
            ref = source.get("secretName" if is_secret else "name", "")
            data = (secrets if is_secret else config_maps).get(ref)
            if data is None:
                if source.get("optional"):
                    directory.mkdir(parents=True, exist_ok=True)
                    out[name] = directory
                    continue
                raise ContainerConfigError(f"{'secret' if is_secret else 'configmap'} {ref!r} not found")
            _write_items(directory, data, source.get("items"), int(source.get("defaultMode", 0o644)))
        elif "persistentVolumeClaim" in volume:
            directory = claims_root / namespace / volume["persistentVolumeClaim"]["claimName"]
            directory.mkdir(parents=True, exist_ok=True)
        else:
            kinds = sorted(set(volume) - {"name"})
            raise ContainerConfigError(f"volume {name!r}: type {kinds} is not supported by the local kubelet")
        out[name] = directory
    return out


def container_mounts(container: Obj, volumes: Mapping[str, Path], pod_root: Path) -> list[tuple[str, str]]:
    """(container path, host path) pairs for the container's mounts and its termination-message file."""
    mounts: list[tuple[str, str]] = []
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in volumes:
            raise ContainerConfigError(f"volumeMount {mount['name']!r} names no volume of the pod")
        host = volumes[mount["name"]] / mount.get("subPath", "")
        mounts.append((mount["mountPath"], str(host).rstrip("/")))
    termination = container.get("terminationMessagePath", DEFAULT_TERMINATION_PATH)
    mounts.append((termination, str(termination_file(pod_root, container["name"]))))
    return mounts


def termination_file(pod_root: Path, container: str) -> Path:
    path = pod_root / "termination" / container
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def working_dir(container: Obj, mounts: list[tuple[str, str]], pod_root: Path) -> str:
    """The host directory for ``workingDir`` (remapped if it lies in a mount; else under the pod root)."""
    wanted = container.get("workingDir")
    if not wanted:
        return str(pod_root)
    for container_path, host in sorted(mounts, key=lambda m: len(m[0]), reverse=True):
        if wanted == container_path or wanted.startswith(container_path.rstrip("/") + "/"):
            return str(host) + str(wanted)[len(container_path.rstrip("/")) :]
    directory = pod_root / "rootfs" / wanted.lstrip("/")
    os.makedirs(directory, exist_ok=True)
    return str(directory)
