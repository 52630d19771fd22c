"""The local cluster's controllers and process kubelet, through the official client.

Pods run ``sys.executable`` snippets, so these cases are local by nature: in e2e-cluster mode they are skipped.
"""

from __future__ import annotations

import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from stockpot_local.pytest_plugin import use_real_cluster

pytestmark = [pytest.mark.integration, pytest.mark.skipif(use_real_cluster(), reason="runs local processes as pods")]
PY = sys.executable


@pytest.fixture(scope="module")
def api(local_cluster: Any) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(str(local_cluster.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    name = f"k-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(api).delete_namespace(name)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "local/python", "command": command, **spec.pop("container", {})}
    pod_spec = {"restartPolicy": "Never", "containers": [container], **spec.pop("pod", {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": pod_spec}, **spec},
    }


def job_condition(api: client.ApiClient, ns: str, name: str) -> str | None:
    status = client.BatchV1Api(api).read_namespaced_job_status(name, ns).status
    done = [c for c in (status.conditions or []) if c.type in ("Complete", "Failed") and c.status == "True"]
    return done[0].type if done else None


def pods_of(api: client.ApiClient, ns: str, job_name: str) -> list[Any]:
    return (
        client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={job_name}").items
    )


def test_job_completes_with_logs_and_termination_message(api: client.ApiClient, ns: str) -> None:
    code = "open('/dev/termination-log','w').write('{\"ok\": true}'); print('hello from the pod')"
    client.BatchV1Api(api).create_namespaced_job(ns, job("hello", [PY, "-c", code]))
    assert wait_for(lambda: job_condition(api, ns, "hello"), what="job to finish") == "Complete"
    pod = pods_of(api, ns, "hello")[0]
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.message) == (0, '{"ok": true}')
    assert client.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, ns) == "hello from the pod\n"


def test_job_retries_as_new_pods_then_fails(api: client.ApiClient, ns: str) -> None:
    spec = job("flaky", [PY, "-c", "import sys; print('boom'); sys.exit(3)"], backoffLimit=1)
    spec["spec"]["template"]["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    client.BatchV1Api(api).create_namespaced_job(ns, spec)
    assert wait_for(lambda: job_condition(api, ns, "flaky"), timeout=40, what="job to fail") == "Failed"
    status = client.BatchV1Api(api).read_namespaced_job_status("flaky", ns).status
    assert status.failed == 2
    assert [c.reason for c in status.conditions if c.type == "Failed"] == ["BackoffLimitExceeded"]
    pods = pods_of(api, ns, "flaky")
    assert len(pods) == 2
    assert {p.status.container_statuses[0].state.terminated.message for p in pods} == {"boom"}


def test_indexed_job_peers_resolve_each_other(api: client.ApiClient, ns: str) -> None:
    service = {"metadata": {"name": "peers"}, "spec": {"clusterIP": "None", "selector": {"job-name": "ranks"}}}
    client.CoreV1Api(api).create_namespaced_service(ns, service)
    code = "import os; open('/dev/termination-log','w').write(os.environ['JOB_COMPLETION_INDEX'] + ' ' + os.environ['MASTER_ADDR'])"
    spec = job(
        "ranks",
        [PY, "-c", code],
        completions=2,
        parallelism=2,
        completionMode="Indexed",
        pod={"subdomain": "peers"},
        container={"env": [{"name": "MASTER_ADDR", "value": f"ranks-0.peers.{ns}.svc.cluster.local"}]},
    )
    client.BatchV1Api(api).create_namespaced_job(ns, spec)
    assert wait_for(lambda: job_condition(api, ns, "ranks"), what="indexed job") == "Complete"
    pods = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p for p in pods_of(api, ns, "ranks")}
    leader_ip = pods["0"].status.pod_ip
    messages = sorted(p.status.container_statuses[0].state.terminated.message for p in pods.values())
    assert messages == [f"0 {leader_ip}", f"1 {leader_ip}"]
    assert pods["1"].spec.hostname == "ranks-1"


def test_env_from_secret_configmap_and_volumes(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(ns, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"run.json": '{"a": 1}'}})
    code = (
        "import os, json; spec = json.load(open('/etc/app/run.json')); "
        "open('/dev/termination-log','w').write(f\"{os.environ['TOKEN']} {spec['a']} {os.environ['NAME']}\")"
    )
    pod_spec = {
        "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}],
    }
    container = {
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}],
    }
    client.BatchV1Api(api).create_namespaced_job(ns, job("env", [PY, "-c", code], pod=pod_spec, container=container))
    assert wait_for(lambda: job_condition(api, ns, "env"), what="env job") == "Complete"
    pod = pods_of(api, ns, "env")[0]
    assert pod.status.container_statuses[0].state.terminated.message == f"s3cr3t 1 {pod.metadata.name}"


def test_readiness_gates_ready_and_the_service_proxy_reaches_the_pod(api: client.ApiClient, ns: str) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    server = [PY, "-m", "http.server", "8080", "--bind", "$(POD_IP)"]
    container = {
        "name": "web",
        "image": "local/python",
        "command": server,
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
        },
    }
    apps.create_namespaced_deployment(ns, deployment)
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    wait_for(
        lambda: (apps.read_namespaced_deployment_status("web", ns).status.ready_replicas or 0) == 1,
        what="ready replica",
    )
    cluster_ip = core.read_namespaced_service("web", ns).spec.cluster_ip
    wait_for(lambda: core.read_namespaced_endpoints("web", ns).subsets, what="endpoints")
    with urllib.request.urlopen(f"http://{cluster_ip}:80/", timeout=5) as response:
        assert response.status == 200


def test_deployment_scales_and_rolls_out(api: client.ApiClient, ns: str) -> None:
    apps = client.AppsV1Api(api)
    container = {"name": "sleeper", "image": "v1", "command": [PY, "-c", "import time; time.sleep(600)"]}
    deployment = {
        "metadata": {"name": "sleepers"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "sleepers"}},
            "template": {
                "metadata": {"labels": {"app": "sleepers"}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
            },
        },
    }
    apps.create_namespaced_deployment(ns, deployment)
    wait_for(
        lambda: (apps.read_namespaced_deployment_status("sleepers", ns).status.ready_replicas or 0) == 2, what="2 ready"
    )
    apps.patch_namespaced_deployment(
        "sleepers", ns, {"spec": {"template": {"spec": {"containers": [{**container, "image": "v2"}]}}}}
    )

    def rolled_out() -> bool:
        status = apps.read_namespaced_deployment_status("sleepers", ns).status
        return status.updated_replicas == 2 and status.ready_replicas == 2 and (status.replicas or 0) == 2

    wait_for(rolled_out, timeout=45, what="rollout")
    wait_for(
        lambda: sorted(rs.spec.replicas for rs in apps.list_namespaced_replica_set(ns).items) == [0, 2],
        what="old ReplicaSet scaled to 0",
    )
    apps.patch_namespaced_deployment_scale("sleepers", ns, {"spec": {"replicas": 1}})
    wait_for(lambda: apps.read_namespaced_deployment_status("sleepers", ns).status.replicas == 1, what="scale down")


def test_graceful_delete_sends_sigterm(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    code = (
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path({str(marker)!r}).write_text('bye'), sys.exit(0)))\n"
        "time.sleep(600)\n"
    )
    core = client.CoreV1Api(api)
    pod = {
        "metadata": {"name": "graceful"},
        "spec": {"containers": [{"name": "main", "image": "p", "command": [PY, "-c", code]}]},
    }
    core.create_namespaced_pod(ns, pod)
    wait_for(lambda: core.read_namespaced_pod("graceful", ns).status.phase == "Running", what="running")
    time.sleep(0.5)  # let the interpreter install its handler
    core.delete_namespaced_pod("graceful", ns, grace_period_seconds=10)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("graceful", ns)
        except client.ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, what="pod deletion")
    assert marker.read_text() == "bye"


def test_gpu_pod_stays_pending_with_the_reason(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    container = {
        "name": "main",
        "image": "gpu",
        "command": [PY, "-c", "pass"],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    core.create_namespaced_pod(ns, {"metadata": {"name": "gpu"}, "spec": {"containers": [container]}})

    def unschedulable() -> Any:
        conditions = core.read_namespaced_pod_status("gpu", ns).status.conditions or []
        return next((c for c in conditions if c.type == "PodScheduled" and c.status == "False"), None)

    condition = wait_for(unschedulable, what="PodScheduled=False")
    assert condition.reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in condition.message
    assert core.read_namespaced_pod("gpu", ns).status.phase == "Pending"


def test_suspended_job_runs_once_resumed(api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, job("later", [PY, "-c", "pass"], suspend=True))
    wait_for(
        lambda: any(
            c.type == "Suspended" and c.status == "True"
            for c in batch.read_namespaced_job_status("later", ns).status.conditions or []
        ),
        what="Suspended",
    )
    assert pods_of(api, ns, "later") == []
    batch.patch_namespaced_job("later", ns, {"spec": {"suspend": False}})
    assert wait_for(lambda: job_condition(api, ns, "later"), what="resumed job") == "Complete"


def test_active_deadline_fails_the_job(api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    spec = job(
        "slow",
        [PY, "-c", "import time; time.sleep(600)"],
        activeDeadlineSeconds=2,
        pod={"terminationGracePeriodSeconds": 1},
    )
    batch.create_namespaced_job(ns, spec)
    assert wait_for(lambda: job_condition(api, ns, "slow"), timeout=40, what="deadline") == "Failed"
    reasons = [c.reason for c in batch.read_namespaced_job_status("slow", ns).status.conditions if c.type == "Failed"]
    assert reasons == ["DeadlineExceeded"]


def test_init_containers_run_first_in_order(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    append = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + ' ')"
    init = [{"name": f"init-{i}", "image": "p", "command": [PY, "-c", append, str(trace), f"init-{i}"]} for i in (1, 2)]
    spec = job("ordered", [PY, "-c", append, str(trace), "main"], pod={"initContainers": init})
    client.BatchV1Api(api).create_namespaced_job(ns, spec)
    assert wait_for(lambda: job_condition(api, ns, "ordered"), what="job with init containers") == "Complete"
    assert trace.read_text().split() == ["init-1", "init-2", "main"]
    statuses = pods_of(api, ns, "ordered")[0].status.init_container_statuses
    assert [s.state.terminated.exit_code for s in statuses] == [0, 0]


def test_on_failure_restarts_the_container_in_place(api: client.ApiClient, ns: str, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts"
    code = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]); n = len(p.read_text()) if p.exists() else 0; "
        "p.write_text('x' * (n + 1)); sys.exit(0 if n >= 1 else 1)"
    )
    spec = job("retry-in-place", [PY, "-c", code, str(attempts)], pod={"restartPolicy": "OnFailure"})
    client.BatchV1Api(api).create_namespaced_job(ns, spec)
    assert wait_for(lambda: job_condition(api, ns, "retry-in-place"), timeout=40, what="job") == "Complete"
    (pod,) = pods_of(api, ns, "retry-in-place")
    assert pod.status.container_statuses[0].restart_count == 1
    assert attempts.read_text() == "xx"


def test_failing_liveness_probe_restarts_the_container(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    container = {
        "name": "main",
        "image": "p",
        "command": [PY, "-c", "import time; time.sleep(600)"],
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
    }
    pod = {"metadata": {"name": "unhealthy"}, "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}
    core.create_namespaced_pod(ns, pod)

    def restarted() -> bool:
        statuses = core.read_namespaced_pod_status("unhealthy", ns).status.container_statuses or []
        return bool(statuses) and statuses[0].restart_count >= 1

    wait_for(restarted, timeout=30, what="a liveness restart")
    core.delete_namespaced_pod("unhealthy", ns, grace_period_seconds=0)
