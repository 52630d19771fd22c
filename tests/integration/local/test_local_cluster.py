"""The composed local cluster: Jobs run to completion, pods' metrics reach Prometheus, S3 is wired in."""

from __future__ import annotations

import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from stockpot_local.cluster import ClusterAccess, LocalCluster
from stockpot_local.kubeclient import KubeClient
from stockpot_local.managed_process import free_port
from stockpot_local.prometheus import PrometheusServer
from stockpot_local.scrape_targets import PodTargetWatcher

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture(scope="module")
def core_and_batch(local_cluster: ClusterAccess) -> Iterator[tuple[Any, Any]]:
    """CoreV1Api and BatchV1Api of the official client (typed Any: we pass plain dicts as bodies)."""
    api_client: Any = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(local_cluster.kubeconfig)
    )
    yield k8s.CoreV1Api(api_client), k8s.BatchV1Api(api_client)
    api_client.close()


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.3)


def test_env_points_at_the_cluster_and_its_s3(local_cluster: ClusterAccess, monkeypatch: pytest.MonkeyPatch) -> None:
    env = local_cluster.env()
    assert env["KUBECONFIG"] == str(local_cluster.kubeconfig)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bucket = f"env-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3").create_bucket(Bucket=bucket)
    assert local_cluster.s3 is not None
    local_cluster.s3.delete_bucket(bucket)


def test_a_job_runs_to_completion(core_and_batch: tuple[Any, Any]) -> None:
    core, batch = core_and_batch
    name = f"hello-{uuid.uuid4().hex[:6]}"
    container = {"name": "main", "image": "python", "command": [sys.executable, "-c", "print('hello from job')"]}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }
    batch.create_namespaced_job("default", job)

    def succeeded() -> bool:
        status = batch.read_namespaced_job_status(name, "default").status
        return bool(status.succeeded)

    _wait_for(succeeded, 60, f"job {name} did not succeed")
    (pod,) = core.list_namespaced_pod("default", label_selector=f"job-name={name}").items
    assert pod.status.phase == "Succeeded"
    assert "hello from job" in core.read_namespaced_pod_log(pod.metadata.name, "default")


_METRICS_POD_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from prometheus_client import Gauge, start_http_server
    Gauge("stockpot_pod_probe", "A value for the pod scrape test.").set(7)
    start_http_server(int(sys.argv[1]), addr=os.environ["POD_IP"])
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_prometheus_scrapes_an_annotated_pod(
    local_cluster: ClusterAccess,
    prometheus: PrometheusServer,
    core_and_batch: tuple[Any, Any],
) -> None:
    if not isinstance(local_cluster, LocalCluster):
        pytest.skip("pod IPs of a real cluster are not reachable from the test's Prometheus")
    core, _ = core_and_batch
    port = free_port()
    name = f"metrics-{uuid.uuid4().hex[:6]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "python",
                    "command": [sys.executable, "-c", _METRICS_POD_SCRIPT, str(port)],
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "ports": [{"containerPort": port}],
                }
            ],
        },
    }
    watcher = PodTargetWatcher(KubeClient(local_cluster.api_url), prometheus.pod_targets_path)
    local_cluster.run(_start(watcher))
    core.create_namespaced_pod("default", pod)
    try:
        series = prometheus.wait_for_series(f'stockpot_pod_probe{{namespace="default",pod="{name}"}}', timeout=60)
        assert series[0]["value"][1] == "7"
    finally:
        core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
        local_cluster.run(_stop(watcher))


async def _start(watcher: PodTargetWatcher) -> None:
    watcher.start()


async def _stop(watcher: PodTargetWatcher) -> None:
    await watcher.stop()
    await watcher.client.close()
