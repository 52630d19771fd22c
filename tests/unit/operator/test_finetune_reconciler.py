"""What a reconcile pass asks of the API per trigger, and which FineTunes the poller revisits.

The API is a recording fake here (the local-cluster suite runs the same reconciler against a real API server).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from stockpot_operator.builders.finetune import Settings
from stockpot_operator.metrics import OperatorMetrics
from stockpot_operator.polling import Poller
from stockpot_operator.progress import ProgressReader
from stockpot_operator.reconcilers.finetune import FineTuneReconciler

pytestmark = pytest.mark.unit
Obj = dict[str, Any]


class RecordingKube:
    """Children by (kind, name); every call recorded as (method, detail)."""

    def __init__(self, finetune: Obj) -> None:
        self.finetune = finetune
        self.children: dict[tuple[str, str], Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_creates = False

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj | None:
        self.calls.append(("get_custom", name))
        return self.finetune

    def ensure(self, obj: Obj, *, probably_new: bool = False) -> tuple[Obj, bool]:
        self.calls.append(("ensure", obj["kind"]))
        if self.fail_creates:
            raise ConnectionError("API server unreachable")
        key = (obj["kind"], obj["metadata"]["name"])
        created = key not in self.children
        self.children.setdefault(key, obj)
        return self.children[key], created

    def get_job(self, namespace: str, name: str) -> Obj | None:
        self.calls.append(("get_job", name))
        return self.children.get(("Job", name))

    def pods(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        self.calls.append(("pods", ""))
        return []

    def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> str:
        self.calls.append(("patch_status", status["phase"]))
        version = str(int(self.finetune["metadata"]["resourceVersion"]) + 1)
        self.finetune = {**self.finetune, "metadata": {**self.finetune["metadata"], "resourceVersion": version}}
        self.finetune["status"] = status
        return version

    def event(self, involved: Obj, type_: str, reason: str, message: str) -> None:
        self.calls.append(("event", reason))

    def patch_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        self.calls.append(("patch_job_suspend", str(suspend)))
        self.children[("Job", name)]["spec"]["suspend"] = suspend


def finetune(suspend: bool = False) -> Obj:
    return {
        "apiVersion": "stockpot.dev/v1alpha1",
        "kind": "FineTune",
        "metadata": {"name": "ft", "namespace": "team", "uid": "u-1", "generation": 1, "resourceVersion": "10"},
        "spec": {
            "model": {"uri": "s3://models/base"},
            "data": {"train": "s3://data/train.jsonl"},
            "output": {"uri": "s3://out"},
            "suspend": suspend,
        },
    }


def reconciler(kube: RecordingKube) -> FineTuneReconciler:
    return FineTuneReconciler(kube, Settings(), OperatorMetrics(), ProgressReader())  # type: ignore[arg-type]


def methods(kube: RecordingKube) -> list[str]:
    return [method for method, _ in kube.calls]


def test_a_new_finetune_from_its_event_creates_children_and_writes_status_once_without_reading_itself() -> None:
    kube = RecordingKube(finetune())
    finetunes = reconciler(kube)
    assert finetunes.reconcile("team", "ft", kube.finetune) == "Pending"
    assert "get_custom" not in methods(kube)
    assert [d for m, d in kube.calls if m == "ensure"] == ["ServiceAccount", "ConfigMap", "Job"]
    assert methods(kube).count("patch_status") == 1
    assert finetunes.active() == [("team", "ft")]


def test_an_event_snapshot_older_than_our_own_status_write_is_read_again() -> None:
    kube = RecordingKube(finetune())
    finetunes = reconciler(kube)
    snapshot = kube.finetune  # the ADDED event's body, queued while a Job event's pass writes status
    finetunes.reconcile("team", "ft", children=False)
    kube.calls.clear()
    finetunes.reconcile("team", "ft", snapshot)
    assert methods(kube)[0] == "get_custom"
    assert "patch_status" not in methods(kube)  # nothing changed, so no second write and no repeated events
    kube.calls.clear()
    finetunes.reconcile("team", "ft", kube.finetune)  # the echo of our own write is current
    assert "get_custom" not in methods(kube)


def test_a_job_event_for_a_handled_generation_skips_the_children_and_uses_the_event_s_job() -> None:
    kube = RecordingKube(finetune())
    finetunes = reconciler(kube)
    finetunes.reconcile("team", "ft", kube.finetune)
    job = next(obj for (kind, _), obj in kube.children.items() if kind == "Job")
    kube.calls.clear()
    finetunes.reconcile("team", "ft", children=False, job={**job, "status": {"active": 1, "ready": 1}})
    assert "ensure" not in methods(kube)
    assert "get_job" not in methods(kube)
    assert methods(kube)[0] == "get_custom"


def test_a_pod_event_reads_the_job_and_a_missing_job_is_recreated() -> None:
    kube = RecordingKube(finetune())
    finetunes = reconciler(kube)
    finetunes.reconcile("team", "ft", kube.finetune)
    kube.calls.clear()
    finetunes.reconcile("team", "ft", children=False)
    assert "ensure" not in methods(kube)
    assert "get_job" in methods(kube)

    kube.children = {k: v for k, v in kube.children.items() if k[0] != "Job"}
    kube.calls.clear()
    finetunes.reconcile("team", "ft", children=False)
    assert [d for m, d in kube.calls if m == "ensure"] == ["ServiceAccount", "ConfigMap", "Job"]


def test_a_child_event_before_the_generation_was_handled_ensures_the_children() -> None:
    kube = RecordingKube(finetune())
    reconciler(kube).reconcile("team", "ft", children=False)
    assert [d for m, d in kube.calls if m == "ensure"] == ["ServiceAccount", "ConfigMap", "Job"]


def test_failed_passes_stay_on_the_poller_s_list_and_settled_phases_leave_it() -> None:
    kube = RecordingKube(finetune(suspend=True))
    finetunes = reconciler(kube)
    kube.fail_creates = True
    with pytest.raises(ConnectionError):
        finetunes.reconcile("team", "ft", kube.finetune)
    assert finetunes.active() == [("team", "ft")]
    kube.fail_creates = False
    assert finetunes.reconcile("team", "ft") == "Suspended"
    assert finetunes.active() == []
    finetunes.reconcile("team", "ft", {**kube.finetune, "spec": {**kube.finetune["spec"], "suspend": False}})
    assert finetunes.active() == [("team", "ft")]
    finetunes.forget("team", "ft")
    assert finetunes.active() == []


def test_the_poller_visits_the_active_set_and_survives_a_failing_visit() -> None:
    visited: list[tuple[str, str]] = []
    twice = threading.Event()

    def visit(namespace: str, name: str) -> None:
        visited.append((namespace, name))
        if len(visited) >= 4:
            twice.set()
        if name == "bad":
            raise RuntimeError("boom")

    poller = Poller(0.01, lambda: [("a", "bad"), ("a", "good")], visit)
    poller.start()
    assert twice.wait(5)
    poller.stop()
    assert visited[:4] == [("a", "bad"), ("a", "good")] * 2
    settled = len(visited)
    time.sleep(0.05)
    assert len(visited) == settled
