"""Which pods Prometheus scrapes, and the file_sd documents it reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stockpot_local.kubeclient import KubeClient, WatchEvent
from stockpot_local.scrape_targets import (
    PodTargetWatcher,
    ScrapeTarget,
    file_sd_document,
    pod_target,
    read_targets,
    write_targets,
)

pytestmark = pytest.mark.unit


def _pod(
    name: str = "trainer-0",
    annotations: dict[str, str] | None = None,
    phase: str = "Running",
    ip: str | None = "127.0.0.1",
) -> dict[str, Any]:
    default = {"prometheus.io/scrape": "true", "prometheus.io/port": "9400", "prometheus.io/path": "/metrics"}
    status: dict[str, Any] = {"phase": phase}
    if ip:
        status["podIP"] = ip
    return {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "annotations": default if annotations is None else annotations,
        },
        "status": status,
    }


def test_annotated_running_pod_becomes_a_target_with_namespace_and_pod_labels() -> None:
    target = pod_target(_pod())
    assert target == ScrapeTarget("127.0.0.1:9400", "/metrics", {"namespace": "ml", "pod": "trainer-0"})


@pytest.mark.parametrize(
    ("annotations", "expected_path"),
    [
        ({"prometheus.io/scrape": "True", "prometheus.io/port": "8000"}, "/metrics"),
        (
            {"prometheus.io/scrape": "true", "prometheus.io/port": "8000", "prometheus.io/path": "stats"},
            "/stats",
        ),
    ],
)
def test_path_defaults_and_is_made_absolute(annotations: dict[str, str], expected_path: str) -> None:
    target = pod_target(_pod(annotations=annotations))
    assert target is not None
    assert target.path == expected_path


@pytest.mark.parametrize(
    "pod",
    [
        _pod(annotations={}),
        _pod(annotations={"prometheus.io/scrape": "false", "prometheus.io/port": "9400"}),
        _pod(annotations={"prometheus.io/scrape": "true"}),
        _pod(annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "http"}),
        _pod(annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "70000"}),
        _pod(phase="Pending"),
        _pod(ip=None),
    ],
)
def test_pods_not_ready_or_not_opted_in_are_skipped(pod: dict[str, Any]) -> None:
    assert pod_target(pod) is None


def test_file_sd_document_is_sorted_and_carries_the_metrics_path() -> None:
    document = file_sd_document(
        [ScrapeTarget("127.0.0.1:9", "/b", {"pod": "b"}), ScrapeTarget("127.0.0.1:8", labels={"job": "op"})]
    )
    assert document == [
        {"targets": ["127.0.0.1:8"], "labels": {"job": "op", "__metrics_path__": "/metrics"}},
        {"targets": ["127.0.0.1:9"], "labels": {"pod": "b", "__metrics_path__": "/b"}},
    ]


def test_write_targets_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "targets" / "pods.json"
    write_targets(path, [ScrapeTarget("127.0.0.1:1")])
    write_targets(path, [])
    assert json.loads(path.read_text()) == []
    assert [p.name for p in path.parent.iterdir()] == ["pods.json"]


def test_watcher_folds_relist_updates_and_deletes(tmp_path: Path) -> None:
    watcher = PodTargetWatcher(KubeClient("http://127.0.0.1:1"), tmp_path / "pods.json")
    relist = WatchEvent("RELISTED", {"items": [_pod("a"), _pod("b", phase="Pending")]})
    assert watcher.apply(relist)
    assert [t.labels["pod"] for t in watcher.targets] == ["a"]

    assert watcher.apply(WatchEvent("MODIFIED", _pod("b")))
    assert not watcher.apply(WatchEvent("MODIFIED", _pod("b")))
    assert sorted(t.labels["pod"] for t in watcher.targets) == ["a", "b"]

    assert watcher.apply(WatchEvent("MODIFIED", _pod("a", phase="Succeeded")))
    assert watcher.apply(WatchEvent("DELETED", _pod("b")))
    assert watcher.targets == []


def test_targets_file_reads_back_what_was_written(tmp_path: Path) -> None:
    targets = [
        ScrapeTarget("127.0.0.1:8080", "/metrics", {"job": "stockpot-operator"}),
        ScrapeTarget("127.0.0.1:9400", "/stats", {"namespace": "ml", "pod": "p"}),
    ]
    write_targets(tmp_path / "static.json", targets)
    assert read_targets(tmp_path / "static.json") == targets
    assert read_targets(tmp_path / "missing.json") == []
