"""Idle memory of the local cluster's Kubernetes side: API server + controllers + process kubelet (a script).

Starts them in one subprocess (no S3, no Prometheus), lets them settle, then reports the RSS of that process,
idle and after running 20 short Jobs. Usage: ``python bench/local_cluster.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import psutil

CHILD = """
import sys, time, json, subprocess
from pathlib import Path
from stockpot_local.cluster import LocalCluster
with LocalCluster(Path(sys.argv[1]), s3=False, prometheus=False) as cluster:
    print(cluster.kubeconfig, flush=True)
    sys.stdin.readline()
"""


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


def run_jobs(kubeconfig: str, count: int) -> None:
    from kubernetes import client, config

    api = config.new_client_from_config(kubeconfig)
    batch = client.BatchV1Api(api)
    for index in range(count):
        container = {"name": "c", "image": "python", "command": [sys.executable, "-c", "pass"]}
        spec = {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}
        batch.create_namespaced_job("default", {"metadata": {"name": f"bench-{index}"}, "spec": spec})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = batch.list_namespaced_job("default").items
        if sum(1 for j in jobs if (j.status.succeeded or 0) >= 1) == count:
            return
        time.sleep(0.5)
    raise RuntimeError("jobs did not finish")


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, state], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdin is not None
        kubeconfig = child.stdout.readline().strip()
        time.sleep(3)
        idle = rss_mb(child.pid)
        started = time.monotonic()
        run_jobs(kubeconfig, 20)
        elapsed = time.monotonic() - started
        time.sleep(2)
        after = rss_mb(child.pid)
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(timeout=30)
    print("Local cluster, Kubernetes side (API server + controllers + kubelet, one process)\n")
    print("| measure | value | goal |\n|---|---|---|")
    print(f"| idle RSS | {idle:.0f} MB | < 150 MB |")
    print(f"| RSS after 20 Jobs ran | {after:.0f} MB | |")
    print(f"| 20 one-pod Jobs, create → all Complete | {elapsed:.1f} s | |")


if __name__ == "__main__":
    main()
