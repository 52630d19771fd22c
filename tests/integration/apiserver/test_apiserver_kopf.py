"""A real kopf operator against the API: handlers, finalizer, status patches, adoption, events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver_samples import widget
from kubernetes import client

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def operator(kube: Any, widgets: Any, namespace: str, tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "handlers.jsonl"
    log.touch()
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "WIDGET_GROUP": widgets.group, "OPERATOR_LOG": str(log)}
    command = [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace]
    proc = subprocess.Popen(
        [*command, str(HERE / "apiserver_kopf_operator.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield log
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if b"Traceback" in output or os.environ.get("SHOW_OPERATOR_OUTPUT"):
            sys.stderr.write(output.decode(errors="replace")[-5000:])


def handler_runs(log: Path) -> list[tuple[str, str]]:
    return [(e["event"], e["name"]) for e in map(json.loads, log.read_text().splitlines())]


def test_kopf_handlers_run_once_per_change(kube: Any, widgets: Any, namespace: str, operator: Path) -> None:
    custom = kube.custom
    args = (widgets.group, widgets.version, namespace, widgets.plural)
    custom.create_namespaced_custom_object(*args, widget("w1", widgets.group, size=2))

    def status_phase(phase: str) -> bool:
        obj = custom.get_namespaced_custom_object(*args, "w1")
        return (obj.get("status") or {}).get("phase") == phase

    wait_for("the create handler", lambda: status_phase("Created"))
    obj = custom.get_namespaced_custom_object(*args, "w1")
    assert "test.stockpot.dev/finalizer" in obj["metadata"]["finalizers"]
    child = kube.core.read_namespaced_config_map("w1-child", namespace)
    assert child.metadata.owner_references[0].uid == obj["metadata"]["uid"]

    custom.patch_namespaced_custom_object(*args, "w1", {"spec": {"size": 5}})
    wait_for("the update handler", lambda: status_phase("Resized"))
    assert kube.core.read_namespaced_config_map("w1-child", namespace).data == {"size": "5"}
    custom.patch_namespaced_custom_object(*args, "w1", {"metadata": {"labels": {"touched": "yes"}}})
    time.sleep(1.0)

    custom.delete_namespaced_custom_object(*args, "w1")

    def widget_gone() -> bool:
        try:
            custom.get_namespaced_custom_object(*args, "w1")
        except client.ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for("the widget to be deleted", widget_gone)
    assert handler_runs(operator) == [("create", "w1"), ("update", "w1"), ("delete", "w1")]
    events = kube.core.list_namespaced_event(namespace, field_selector="involvedObject.name=w1").items
    assert any(e.reason == "ChildCreated" for e in events)
    wait_for(
        "the child to be garbage-collected",
        lambda: not kube.core.list_namespaced_config_map(namespace, field_selector="metadata.name=w1-child").items,
    )
