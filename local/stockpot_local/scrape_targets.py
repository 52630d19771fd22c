"""Prometheus scrape targets for the local cluster, kept in ``file_sd_configs`` files.

Pods opt in the way most Prometheus setups read them: annotations ``prometheus.io/scrape: "true"``,
``prometheus.io/port`` and ``prometheus.io/path``. ``PodTargetWatcher`` keeps one targets file in sync with
the pods of a cluster; static targets (the operator's /metrics, a test server) go to another file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockpot_local.kubeclient import PODS, KubeClient, WatchEvent

log = logging.getLogger(__name__)

SCRAPE_ANNOTATION = "prometheus.io/scrape"
PORT_ANNOTATION = "prometheus.io/port"
PATH_ANNOTATION = "prometheus.io/path"
DEFAULT_METRICS_PATH = "/metrics"

FileSdGroup = dict[str, Any]


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape: ``host:port``, the metrics path and extra labels."""

    address: str
    path: str = DEFAULT_METRICS_PATH
    labels: Mapping[str, str] = field(default_factory=dict)

    def file_sd_group(self) -> FileSdGroup:
        labels = {**self.labels, "__metrics_path__": self.path}
        return {"targets": [self.address], "labels": labels}


def pod_target(pod: Mapping[str, Any]) -> ScrapeTarget | None:
    """The scrape target a pod asks for through its annotations, or None (not opted in, no IP yet,
    not running, or a malformed port)."""
    metadata = pod.get("metadata", {})
    annotations = metadata.get("annotations") or {}
    if str(annotations.get(SCRAPE_ANNOTATION, "")).lower() != "true":
        return None
    status = pod.get("status", {})
    pod_ip = status.get("podIP")
    if not pod_ip or status.get("phase") != "Running" or metadata.get("deletionTimestamp"):
        return None
    port = _annotated_port(annotations.get(PORT_ANNOTATION))
    if port is None:
        return None
    path = str(annotations.get(PATH_ANNOTATION) or DEFAULT_METRICS_PATH)
    labels = {"namespace": str(metadata.get("namespace", "")), "pod": str(metadata.get("name", ""))}
    return ScrapeTarget(f"{pod_ip}:{port}", path if path.startswith("/") else f"/{path}", labels)


def _annotated_port(value: Any) -> int | None:
    try:
        port = int(str(value))
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def file_sd_document(targets: Iterable[ScrapeTarget]) -> list[FileSdGroup]:
    """The JSON document of a ``file_sd_configs`` file, in a stable order."""
    ordered = sorted(targets, key=lambda t: (t.address, t.path, sorted(t.labels.items())))
    return [target.file_sd_group() for target in ordered]


def targets_from_document(document: Iterable[FileSdGroup]) -> list[ScrapeTarget]:
    """Parse a ``file_sd_configs`` document back into targets (the inverse of ``file_sd_document``)."""
    found: list[ScrapeTarget] = []
    for group in document:
        labels = {str(k): str(v) for k, v in group.get("labels", {}).items()}
        path = labels.pop("__metrics_path__", DEFAULT_METRICS_PATH)
        found.extend(ScrapeTarget(str(address), path, labels) for address in group["targets"])
    return found


def read_targets(path: Path) -> list[ScrapeTarget]:
    try:
        return targets_from_document(json.loads(path.read_text()))
    except FileNotFoundError:
        return []


def write_targets(path: Path, targets: Iterable[ScrapeTarget]) -> None:
    """Replace ``path`` atomically (Prometheus never reads a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(file_sd_document(targets), indent=1))
    os.replace(temporary, path)


class PodTargetWatcher:
    """Watches pods of all namespaces and mirrors the annotated ones into ``targets_path``."""

    def __init__(self, client: KubeClient, targets_path: Path) -> None:
        self.client = client
        self.targets_path = targets_path
        self._targets: dict[tuple[str, str], ScrapeTarget] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        write_targets(self.targets_path, [])
        self._task = asyncio.create_task(self._run(), name="prometheus-pod-targets")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @property
    def targets(self) -> list[ScrapeTarget]:
        return list(self._targets.values())

    async def _run(self) -> None:
        while True:
            try:
                async for event in self.client.watch(PODS):
                    if self.apply(event):
                        write_targets(self.targets_path, self._targets.values())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod watch for scrape targets failed; retrying")
                await asyncio.sleep(1.0)

    def apply(self, event: WatchEvent) -> bool:
        """Fold one watch event into the target set; True when the set changed."""
        before = dict(self._targets)
        if event.type == "RELISTED":
            self._targets = {}
            for pod in event.object.get("items", []):
                self._fold(pod)
        elif event.type == "DELETED":
            self._targets.pop(_pod_key(event.object), None)
        else:
            self._fold(event.object)
        return before != self._targets

    def _fold(self, pod: Mapping[str, Any]) -> None:
        target = pod_target(pod)
        if target is None:
            self._targets.pop(_pod_key(pod), None)
        else:
            self._targets[_pod_key(pod)] = target


def _pod_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    metadata = pod.get("metadata", {})
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
