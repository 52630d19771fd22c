"""The FineTune controller against the local cluster: the operator process, real Jobs, the real runtime in pods.

Create → Job → the pod trains the toy model from S3 → artifact in S3 → Succeeded with the manifest digest in
status. Kill the training pod mid-run → the Job retries, the runtime resumes from its checkpoint, the FineTune
still succeeds with resumes = 1. SIGKILL the operator and restart it → no duplicate children. An invalid spec
(webhook off) → condition Invalid, not retried.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from stockpot_local.cluster import ClusterAccess

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
GROUP, VERSION, PLURAL = "stockpot.dev", "v1alpha1", "finetunes"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def kube(local_cluster: ClusterAccess) -> Iterator[Any]:
    api = config.new_client_from_config(config_file=str(local_cluster.kubeconfig))
    subprocess.run(
        [str(REPO / ".tools" / "bin" / "kubectl"), "apply", "-f", str(REPO / "crds")],
        env={**os.environ, "KUBECONFIG": str(local_cluster.kubeconfig)},
        check=True,
        capture_output=True,
    )
    yield api
    api.close()


@pytest.fixture(scope="module")
def namespace(kube: Any) -> str:
    name = f"ft-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture(scope="module")
def storage(local_cluster: ClusterAccess, kube: Any, namespace: str) -> dict[str, str]:
    """A bucket holding the toy model and rows, and the Secret with the S3 credentials."""
    s3 = local_cluster.s3
    assert s3 is not None
    bucket = f"ft{uuid.uuid4().hex[:8]}"
    s3.create_bucket(bucket)
    env = {**os.environ, **s3.env()}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "stockpot_runtime.cli",
            "toy",
            "--model",
            f"s3://{bucket}/models/toy",
            "--data",
            f"s3://{bucket}/data/add.jsonl",
            "--rows",
            "400",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    secret = {
        "metadata": {"name": "s3-credentials"},
        "stringData": {k: s3.env()[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    }
    client.CoreV1Api(kube).create_namespaced_secret(namespace, secret)
    return {"bucket": bucket, "endpoint": s3.env()["AWS_ENDPOINT_URL"]}


class Operator:
    """``stockpot operator`` as a process; restartable, killable."""

    def __init__(self, local_cluster: ClusterAccess, namespace: str, log: Path, webhook: bool = False) -> None:
        self.env = {
            **os.environ,
            "KUBECONFIG": str(local_cluster.kubeconfig),
            "STOCKPOT_RUNTIME_COMMAND": str(Path(sys.executable).parent / "stockpot-runtime"),
            "STOCKPOT_METRICS_PORT": "0",
            "STOCKPOT_BACKOFF_LIMIT": "3",
        }
        if webhook:
            self.env |= {"STOCKPOT_WEBHOOK_PORT": str(free_port()), "STOCKPOT_WEBHOOK_INSECURE": "1"}
        self.namespace, self.log = namespace, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stockpot_operator.cli", "operator", "--namespace", self.namespace],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def operator(
    local_cluster: ClusterAccess, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    running = Operator(local_cluster, namespace, log)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        if os.environ.get("SHOW_OPERATOR_OUTPUT") or b"Traceback" in log.read_bytes():
            sys.stderr.write(log.read_text(errors="replace")[-6000:])


def finetune(name: str, storage: dict[str, str], **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"uri": f"s3://{storage['bucket']}/models/toy/final"},
        "data": {"train": f"s3://{storage['bucket']}/data/add.jsonl", "format": "chatml", "maxLength": 64},
        "peft": {"type": "full"},
        "training": {"epochs": 1, "lr": 0.003, "batchSize": 8, "gradientAccumulationSteps": 1, "loggingSteps": 5},
        "checkpoint": {"everySteps": 5, "keep": 2},
        "resources": {"gpus": 0},
        "output": {"uri": f"s3://{storage['bucket']}/artifacts"},
        "storage": {"endpoint": storage["endpoint"]},
        "credentials": {"s3Secret": "s3-credentials"},
    }
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "FineTune", "metadata": {"name": name}, "spec": spec}


def get(kube: Any, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def phase(kube: Any, namespace: str, name: str) -> str | None:
    return (get(kube, namespace, name).get("status") or {}).get("phase")


def manifest_sha256(local_cluster: ClusterAccess, uri: str) -> str:
    assert local_cluster.s3 is not None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = local_cluster.s3.client().get_object(Bucket=bucket, Key=f"{key}/manifest.json")["Body"].read()
    return hashlib.sha256(body).hexdigest()


def test_a_finetune_trains_in_a_pod_and_reports_its_artifact(
    kube: Any, namespace: str, storage: dict[str, str], operator: Operator, local_cluster: ClusterAccess
) -> None:
    custom = client.CustomObjectsApi(kube)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, finetune("add", storage))
    wait_for("Succeeded", lambda: phase(kube, namespace, "add") in ("Succeeded", "Failed"), timeout=240)
    body = get(kube, namespace, "add")
    status = body["status"]
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    artifact = status["artifact"]
    uid = body["metadata"]["uid"]
    assert artifact["uri"] == f"s3://{storage['bucket']}/artifacts/{namespace}/finetune/add/{uid}"
    assert artifact["manifestSha256"] == manifest_sha256(local_cluster, artifact["uri"])
    assert status["progress"]["summary"].endswith("(100%)")
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types["Succeeded"] == "True"
    assert types["Invalid"] == "False"
    job = client.BatchV1Api(kube).read_namespaced_job("add-train", namespace)
    assert job.metadata.owner_references[0].uid == uid
    cm = client.CoreV1Api(kube).read_namespaced_config_map("add-run", namespace)
    assert "SECRET" not in cm.data["run.json"]


def test_a_two_node_finetune_trains_across_two_pods(
    kube: Any, namespace: str, storage: dict[str, str], operator: Operator, local_cluster: ClusterAccess
) -> None:
    """nodes: 2 → an Indexed Job of two pods behind a headless Service; each pod's runtime launches torchrun with
    its completion index as node rank and pod 0's DNS name as the master, and the two ranks train as one DDP run."""
    core = client.CoreV1Api(kube)
    body = finetune("pair", storage, resources={"gpus": 0, "nodes": 2}, training={"maxSteps": 12})
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    wait_for("Succeeded", lambda: phase(kube, namespace, "pair") in ("Succeeded", "Failed"), timeout=300)
    status = get(kube, namespace, "pair")["status"]
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    assert status["artifact"]["manifestSha256"] == manifest_sha256(local_cluster, status["artifact"]["uri"])

    job = client.BatchV1Api(kube).read_namespaced_job("pair-train", namespace)
    assert (job.spec.completion_mode, job.spec.completions, job.spec.parallelism) == ("Indexed", 2, 2)
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=pair-train").items
    by_rank = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    assert sorted(by_rank) == ["0", "1"]
    logs = {rank: core.read_namespaced_pod_log(pod.metadata.name, namespace) for rank, pod in by_rank.items()}
    # one run of two processes, one per pod: each pod launches its node's rank, rank 0 logs the run and its steps
    leader = by_rank["0"].status.pod_ip
    for rank in ("0", "1"):
        assert f"torchrun: node {rank} of 2, 1 process(es) here, master {leader}:29500" in logs[rank], logs[rank]
    assert "distributed: ddp, 2 processes" in logs["0"], logs["0"][-3000:]
    assert re.search(r"\bstep=12\b", logs["0"]), logs["0"][-3000:]
    for rank, pod in by_rank.items():
        assert pod.status.phase == "Succeeded", (rank, logs[rank][-3000:])


def test_an_invalid_finetune_is_marked_invalid_and_left_alone(kube: Any, namespace: str, operator: Operator) -> None:
    """With the webhook off, a spec the CRD accepts but the models refuse gets condition Invalid."""
    bad = finetune("bad", {"bucket": "nowhere", "endpoint": "http://127.0.0.1:1"})
    bad["spec"]["method"] = {"task": "dpo"}  # dpo needs dpo rows; the data says chatml
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, bad)
    wait_for("Invalid", lambda: phase(kube, namespace, "bad") == "Invalid", timeout=60)
    status = get(kube, namespace, "bad")["status"]
    invalid = next(c for c in status["conditions"] if c["type"] == "Invalid")
    assert invalid["status"] == "True"
    assert "spec.data.format" in invalid["message"]
    jobs = client.BatchV1Api(kube).list_namespaced_job(namespace, label_selector="stockpot.dev/finetune=bad")
    assert jobs.items == []


def test_a_job_the_api_server_refuses_marks_the_finetune_invalid(
    kube: Any, namespace: str, storage: dict[str, str], operator: Operator
) -> None:
    """An affinity the CRD passes through but Kubernetes refuses: Invalid with the API server's words, no retry loop."""
    bad_affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "x"}}}
    body = finetune("refused", storage, resources={"gpus": 0, "affinity": bad_affinity})
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    wait_for("Invalid", lambda: phase(kube, namespace, "refused") == "Invalid", timeout=60)
    invalid = next(c for c in get(kube, namespace, "refused")["status"]["conditions"] if c["type"] == "Invalid")
    assert "refused an object this FineTune renders" in invalid["message"]
    assert "nodeSelectorTerms" in invalid["message"]
    jobs = client.BatchV1Api(kube).list_namespaced_job(namespace, label_selector="stockpot.dev/finetune=refused")
    assert jobs.items == []


def test_a_killed_training_pod_resumes_from_its_checkpoint(
    kube: Any, namespace: str, storage: dict[str, str], operator: Operator
) -> None:
    """Delete the pod mid-run (SIGTERM, as an eviction does): the Job retries, the runtime resumes, it succeeds."""
    core = client.CoreV1Api(kube)
    every = 10
    body = finetune(
        "preempt", storage, training={"maxSteps": 400, "loggingSteps": 10}, checkpoint={"everySteps": every, "keep": 2}
    )
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def logged_step() -> int:
        """The newest step the training pod has logged (its log, not status: the pod trains faster than status
        is refreshed, and it must still be training when it is deleted)."""
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=preempt-train").items
        if not pods or pods[0].status.phase != "Running":
            return 0
        steps = re.findall(r"\bstep=(\d+)", core.read_namespaced_pod_log(pods[0].metadata.name, namespace))
        return int(steps[-1]) if steps else 0

    seen = wait_for("two checkpoints in the pod's log", lambda: logged_step() >= 2 * every and logged_step(), 180)
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=preempt-train").items
    assert len(pods) == 1
    first = pods[0].metadata.name
    core.delete_namespaced_pod(first, namespace)
    wait_for("Succeeded", lambda: phase(kube, namespace, "preempt") in ("Succeeded", "Failed"), timeout=300)
    status = get(kube, namespace, "preempt")["status"]
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    assert status["resumes"] == 1
    second = next(
        p
        for p in core.list_namespaced_pod(namespace, label_selector="job-name=preempt-train").items
        if p.metadata.name != first
    )
    log = core.read_namespaced_pod_log(second.metadata.name, namespace)
    resumed_from = int(log.split("resumed from checkpoint step ")[1].split()[0])
    assert resumed_from >= seen - every  # lost at most one checkpoint interval


def test_kueue_admission_eviction_and_readmission(
    kube: Any, namespace: str, storage: dict[str, str], operator: Operator
) -> None:
    """Kueue is not part of the local cluster; this test does to the Job what Kueue's job reconciler does — it
    unsuspends the Job to admit it, suspends it to evict (or preempt) it, and unsuspends it again — and checks
    what the operator makes of each: Queued, Running, Queued (Evicted), then a resumed run that succeeds."""
    core, batch = client.CoreV1Api(kube), client.BatchV1Api(kube)
    every = 10
    body = finetune(
        "queued",
        storage,
        queueName="team-a",
        training={"maxSteps": 400, "loggingSteps": 10},
        checkpoint={"everySteps": every, "keep": 2},
    )
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def admitted() -> dict[str, Any]:
        conditions = get(kube, namespace, "queued").get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Admitted"), {})

    def pods() -> list[Any]:
        return core.list_namespaced_pod(namespace, label_selector="job-name=queued-train").items

    def admit(admit: bool) -> None:
        batch.patch_namespaced_job("queued-train", namespace, {"spec": {"suspend": not admit}})

    wait_for("Queued", lambda: phase(kube, namespace, "queued") == "Queued")
    job = batch.read_namespaced_job("queued-train", namespace)
    assert job.spec.suspend is True
    assert job.metadata.labels["kueue.x-k8s.io/queue-name"] == "team-a"
    assert (admitted()["status"], admitted()["reason"]) == ("False", "QueuedByKueue")
    assert not pods()

    admit(True)
    wait_for("Running", lambda: phase(kube, namespace, "queued") == "Running", timeout=120)
    assert admitted()["status"] == "True"

    def logged_step() -> int:
        running = [p for p in pods() if p.status.phase == "Running"]
        if not running:
            return 0
        steps = re.findall(r"\bstep=(\d+)", core.read_namespaced_pod_log(running[0].metadata.name, namespace))
        return int(steps[-1]) if steps else 0

    seen = wait_for("two checkpoints in the pod's log", lambda: logged_step() >= 2 * every and logged_step(), 300)
    first = pods()[0].metadata.name
    admit(False)  # eviction: the Job controller deletes the pod (SIGTERM: the runtime checkpoints)
    wait_for("the evicted pod gone", lambda: not pods(), timeout=120)
    wait_for("Queued again", lambda: phase(kube, namespace, "queued") == "Queued")
    assert (admitted()["status"], admitted()["reason"]) == ("False", "Evicted")

    admit(True)
    wait_for("Succeeded", lambda: phase(kube, namespace, "queued") in ("Succeeded", "Failed"), timeout=300)
    status = get(kube, namespace, "queued")["status"]
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    assert status["resumes"] == 1
    second = next(p for p in pods() if p.metadata.name != first)
    log = core.read_namespaced_pod_log(second.metadata.name, namespace)
    assert int(log.split("resumed from checkpoint step ")[1].split()[0]) >= seen - every


def test_a_restarted_operator_does_not_duplicate_children(
    kube: Any, namespace: str, storage: dict[str, str], operator: Operator
) -> None:
    """SIGKILL the operator right after a FineTune appears; the restarted one adopts what exists."""
    custom = client.CustomObjectsApi(kube)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, finetune("restart", storage, suspend=True)
    )
    wait_for(
        "the Job",
        lambda: (
            client.BatchV1Api(kube).list_namespaced_job(namespace, label_selector="stockpot.dev/finetune=restart").items
        ),
        timeout=60,
        interval=0.05,
    )
    operator.stop(signal.SIGKILL)
    operator.start()
    wait_for("Suspended", lambda: phase(kube, namespace, "restart") == "Suspended", timeout=60)
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "restart", {"spec": {"suspend": False}})
    operator.stop(signal.SIGKILL)
    operator.start()
    wait_for("Succeeded", lambda: phase(kube, namespace, "restart") in ("Succeeded", "Failed"), timeout=240)
    selector = "stockpot.dev/finetune=restart"
    assert len(client.BatchV1Api(kube).list_namespaced_job(namespace, label_selector=selector).items) == 1
    assert len(client.CoreV1Api(kube).list_namespaced_config_map(namespace, label_selector=selector).items) == 1
    assert len(client.CoreV1Api(kube).list_namespaced_service_account(namespace, label_selector=selector).items) == 1
    assert phase(kube, namespace, "restart") == "Succeeded"


def admission_review(operator: Operator, obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    import urllib.request

    request = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": GROUP, "version": VERSION, "kind": "FineTune"},
            "resource": {"group": GROUP, "version": VERSION, "resource": PLURAL},
            "operation": "UPDATE" if old else "CREATE",
            "namespace": operator.namespace,
            "name": obj["metadata"]["name"],
            "object": {**obj, "metadata": {**obj["metadata"], "namespace": operator.namespace}},
            "oldObject": old,
            "userInfo": {"username": "test"},
            "dryRun": False,
        },
    }
    url = f"http://127.0.0.1:{operator.env['STOCKPOT_WEBHOOK_PORT']}/validate-finetune"
    post = urllib.request.Request(url, json.dumps(request).encode(), {"Content-Type": "application/json"})

    def answer() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(post, timeout=5) as response:
                return json.loads(response.read())["response"]  # type: ignore[no-any-return]
        except OSError:
            return None

    return wait_for("the webhook", answer, timeout=30)


@pytest.fixture
def webhook(local_cluster: ClusterAccess, kube: Any, tmp_path: Path) -> Iterator[Operator]:
    """A second operator with the webhook on; it watches an empty namespace, so it only answers admission."""
    quiet = f"hook-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": quiet}})
    core.create_namespaced_secret(quiet, {"metadata": {"name": "s3-credentials"}, "stringData": {"k": "v"}})
    served = Operator(local_cluster, quiet, tmp_path / "webhook.log", webhook=True)
    served.start()
    try:
        yield served
    finally:
        served.stop()


def test_the_webhook_refuses_with_every_problem_named(webhook: Operator, storage: dict[str, str]) -> None:
    operator = webhook
    good = finetune("hook-ok", storage)
    assert admission_review(operator, good)["allowed"] is True
    bad = finetune("hook-bad", storage, credentials={"s3Secret": "missing"}, method={"task": "kto"})
    verdict = admission_review(operator, bad)
    assert verdict["allowed"] is False
    assert verdict["status"]["code"] == 422
    assert "spec.data.format" in verdict["status"]["message"]
    missing_secret = finetune("hook-secret", storage, credentials={"s3Secret": "missing"})
    verdict = admission_review(operator, missing_secret)
    assert "spec.credentials.s3Secret: Secret 'missing' does not exist" in verdict["status"]["message"]
