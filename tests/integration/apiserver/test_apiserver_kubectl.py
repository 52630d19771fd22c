"""The real kubectl 1.37 against the API: apply, get with printer columns, describe, explain, logs, wait, delete."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from apiserver_samples import config_map, pod, widget

from stockpot_local.tools import ensure_tool

pytestmark = pytest.mark.integration

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(kube: Any, namespace: str) -> Kubectl:
    binary = ensure_tool("kubectl")
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}

    def run(
        *args: str, check: bool = True, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary), "--namespace", namespace, *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


def manifest(tmp_path: Path, *docs: dict[str, Any]) -> str:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_apply_get_describe_delete(kubectl: Kubectl, tmp_path: Path) -> None:
    path = manifest(tmp_path, config_map("settings", mode="fast"))
    assert "configmap/settings created" in kubectl("apply", "-f", path).stdout
    assert "configmap/settings unchanged" in kubectl("apply", "-f", path).stdout
    got = json.loads(kubectl("get", "configmap", "settings", "-o", "json").stdout)
    assert got["data"] == {"mode": "fast"}
    listing = kubectl("get", "configmaps", "-l", "suite=apiserver").stdout.splitlines()
    assert listing[0].split() == ["NAME", "DATA", "AGE"] or listing[0].split() == ["NAME", "AGE"]
    assert listing[1].startswith("settings")
    assert "mode" in kubectl("describe", "configmap", "settings").stdout
    kubectl("delete", "-f", path)
    assert "NotFound" in kubectl("get", "configmap", "settings", check=False).stderr


def test_custom_resources_with_printer_columns_and_wait(
    kubectl: Kubectl, kube: Any, widgets: Any, namespace: str, tmp_path: Path
) -> None:
    kubectl("apply", "-f", manifest(tmp_path, widget("w1", widgets.group, size=7)))
    args = (widgets.group, widgets.version, namespace, widgets.plural, "w1")
    kube.custom.patch_namespaced_custom_object_status(
        *args, {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    )
    header, row = kubectl("get", f"widgets.{widgets.group}").stdout.splitlines()
    assert header.split() == ["NAME", "SIZE", "PHASE", "READY", "AGE"]
    assert row.split()[:4] == ["w1", "7", "Running", "True"]
    assert "w1" in kubectl("get", "stockpot-test").stdout
    assert "w1" in kubectl("get", "wdg").stdout
    kubectl("wait", "--for=condition=Ready", f"widgets.{widgets.group}/w1", "--timeout=20s")
    described = kubectl("describe", f"widgets.{widgets.group}", "w1").stdout
    assert "Size:" in described
    explained = kubectl("explain", f"widgets.{widgets.group}.spec.size").stdout
    assert "How big the widget is." in explained
    rejected = kubectl("apply", "-f", manifest(tmp_path, widget("w2", widgets.group, size=50)), check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr
    kubectl("delete", f"widgets.{widgets.group}", "w1", "--wait=true", "--timeout=20s")


def test_logs_read_the_kubelet_log_files(kubectl: Kubectl, local_only: Any, namespace: str) -> None:
    local_only.core.create_namespaced_pod(namespace, pod("runner", node_name="local"))
    assert local_only.state_dir is not None
    log_file = local_only.state_dir / "logs" / namespace / "runner" / "main.log"
    log_file.parent.mkdir(parents=True)
    log_file.write_text("one\ntwo\nthree\n")
    assert kubectl("logs", "runner").stdout == "one\ntwo\nthree\n"
    assert kubectl("logs", "runner", "--tail=1").stdout == "three\n"
    local_only.core.patch_namespaced_pod_status("runner", namespace, {"status": {"phase": "Succeeded"}})
    assert kubectl("logs", "-f", "runner", "-c", "main").stdout == "one\ntwo\nthree\n"
