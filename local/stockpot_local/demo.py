"""``make demo``: the local stack, end to end, with the parts of the pipeline that exist today.

1. Start the local cluster (embedded API server, controllers, process kubelet, SeaweedFS S3).
2. Install the Stockpot CRDs with the real kubectl, and apply every example resource.
3. Show admission at work: an invalid FineTune is rejected by the CRD's schema/CEL with the field named.
4. Publish the offline toy model and a synthetic dataset to S3 from a pod (credentials from a Secret, as the
   operator passes them): ``stockpot-runtime toy`` commits the model as an artifact, manifest last.
5. Start the operator (``stockpot operator``) and ``kubectl apply`` a FineTune: the operator creates its
   ServiceAccount, run-spec ConfigMap and Job; the pod runs ``stockpot-runtime train`` — the toy model fine-tuned
   on the add task, checkpoints and progress to S3, the model committed manifest last — and the FineTune's
   status follows (phase, progress, loss, artifact digest). ``kubectl wait --for=condition=Succeeded``.
6. Read the artifact's manifest back from S3 and check its digest against the status, then stop everything.

It prints what it runs and what came back; nothing is simulated.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from stockpot_local.cluster import LocalCluster
from stockpot_local.s3 import S3Access
from stockpot_local.tools import ensure_tool

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "demo"

MODEL_URI = "s3://models/toy-llama"
DATA_URI = "s3://datasets/add/train.jsonl"
TRAIN_NAMESPACE = "pipeline"


def finetune_manifest(s3_endpoint: str) -> dict[str, object]:
    """The demo's FineTune: full fine-tuning of the toy model on the add rows, on CPU."""
    return {
        "apiVersion": "stockpot.dev/v1alpha1",
        "kind": "FineTune",
        "metadata": {"name": "add", "namespace": TRAIN_NAMESPACE},
        "spec": {
            "model": {"uri": f"{MODEL_URI}/final"},
            "data": {"train": DATA_URI, "format": "chatml", "maxLength": 128},
            "peft": {"type": "full"},
            "training": {
                "maxSteps": 60,
                "lr": 0.003,
                "batchSize": 16,
                "gradientAccumulationSteps": 1,
                "loggingSteps": 10,
            },
            "checkpoint": {"everySteps": 20, "keep": 2},
            "resources": {"gpus": 0},
            "output": {"uri": "s3://artifacts"},
            "storage": {"endpoint": s3_endpoint},
            "credentials": {"s3Secret": "s3-credentials"},
        },
    }


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def kubectl(
    args: Sequence[str], env: dict[str, str], check: bool = True, stdin: str | None = None, quiet: bool = False
) -> str:
    command = [str(ensure_tool("kubectl")), *args]
    if not quiet:
        print("$ kubectl " + " ".join(args), flush=True)
    result = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).rstrip()
    if output and not quiet:
        print(output, flush=True)
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed ({result.returncode})")
    return output


def runtime_container(name: str, args: list[str], s3_env: dict[str, str]) -> dict[str, object]:
    """The runtime image's entrypoint; S3 endpoint as values, credentials only as Secret references."""
    secret_keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    env: list[dict[str, object]] = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": key}}} for key in secret_keys
    ]
    env += [{"name": key, "value": value} for key, value in sorted(s3_env.items()) if key not in secret_keys]
    return {
        "name": name,
        "image": "stockpot-runtime:dev",
        "command": [sys.executable, "-m", "stockpot_runtime.cli", *args],
        "env": env,
    }


def credentials_secret(s3_env: dict[str, str], namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s3-credentials", "namespace": namespace},
        "stringData": {key: s3_env[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    }


def toy_job(s3_env: dict[str, str]) -> str:
    secret = credentials_secret(s3_env, NAMESPACE)
    container = runtime_container("toy", ["toy", "--model", MODEL_URI, "--data", DATA_URI, "--rows", "2000"], s3_env)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "toy-publish", "namespace": NAMESPACE},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }
    return "\n---\n".join(json.dumps(document) for document in (secret, job))


def invalid_finetune() -> str:
    return json.dumps(
        {
            "apiVersion": "stockpot.dev/v1alpha1",
            "kind": "FineTune",
            "metadata": {"name": "typo", "namespace": NAMESPACE},
            "spec": {
                "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
                "data": {"train": "s3://datasets/t.jsonl"},
                "training": {"lr": -0.01},
                "peft": {"quantization": "4bit"},
                "resources": {"gpus": 0},
                "output": {"uri": "s3://artifacts"},
            },
        }
    )


def run(state_dir: Path) -> None:
    step("Starting the local cluster (API server, controllers, process kubelet, SeaweedFS S3)")
    started = time.monotonic()
    with LocalCluster(state_dir, s3=True, prometheus=False) as cluster:
        env = {**os.environ, **cluster.env()}
        print(f"ready in {time.monotonic() - started:.1f} s; KUBECONFIG={cluster.kubeconfig}")

        step("Installing the CRDs (generated from the API models) and applying every example")
        kubectl(["apply", "-f", str(REPO / "crds")], env)
        kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=30s"], env)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        kubectl(["apply", "-f", "-"], env, stdin=json.dumps(namespace))
        kubectl(["apply", "-n", NAMESPACE, "-f", str(REPO / "docs" / "examples")], env)
        kubectl(["get", "stockpot", "-n", NAMESPACE], env)
        kubectl(["explain", "finetune.spec.peft.quantization"], env)

        step("Admission: an invalid FineTune is refused, every problem named with its field")
        kubectl(["apply", "-f", "-"], env, check=False, stdin=invalid_finetune())

        if cluster.s3 is not None:
            step("A pod publishes the offline toy model and 2,000 synthetic rows to S3")
            for bucket in ("models", "datasets"):
                cluster.s3.create_bucket(bucket)
            kubectl(["apply", "-f", "-"], env, stdin=toy_job(cluster.s3.env()))
            kubectl(["wait", "-n", NAMESPACE, "--for=condition=Complete", "job/toy-publish", "--timeout=180s"], env)
            kubectl(["logs", "-n", NAMESPACE, "job/toy-publish"], env)

            train_with_the_operator(cluster.s3, env, state_dir)
        step("Stopping the local cluster")
    print("done: every process stopped.")


def train_with_the_operator(s3: S3Access, env: dict[str, str], state_dir: Path) -> None:
    step("The operator: `stockpot operator` watches the pipeline namespace")
    s3.create_bucket("artifacts")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TRAIN_NAMESPACE}}
    kubectl(["apply", "-f", "-"], env, stdin=json.dumps(namespace))
    kubectl(["apply", "-f", "-"], env, stdin=json.dumps(credentials_secret(s3.env(), TRAIN_NAMESPACE)))
    log_path = state_dir / "operator.log"
    operator_env = {
        **env,
        "STOCKPOT_RUNTIME_COMMAND": str(Path(sys.executable).parent / "stockpot-runtime"),
        "STOCKPOT_METRICS_PORT": "0",
    }
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [sys.executable, "-m", "stockpot_operator.cli", "operator", "--namespace", TRAIN_NAMESPACE],
            env=operator_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        step("kubectl apply a FineTune; the operator creates its Job and the pod trains")
        kubectl(["apply", "-f", "-"], env, stdin=json.dumps(finetune_manifest(s3.env()["AWS_ENDPOINT_URL"])))
        kubectl(
            ["wait", "-n", TRAIN_NAMESPACE, "--for=jsonpath={.status.phase}=Running", "ft/add", "--timeout=120s"], env
        )
        kubectl(["get", "ft", "-n", TRAIN_NAMESPACE], env)
        kubectl(["wait", "-n", TRAIN_NAMESPACE, "--for=condition=Succeeded", "ft/add", "--timeout=600s"], env)
        kubectl(["get", "ft,jobs,pods,configmaps", "-n", TRAIN_NAMESPACE, "-o", "wide"], env)
        kubectl(["logs", "-n", TRAIN_NAMESPACE, "job/add-train"], env)
        status = json.loads(
            kubectl(["get", "ft", "add", "-n", TRAIN_NAMESPACE, "-o", "jsonpath={.status}"], env, quiet=True)
        )
        print("status:", json.dumps({k: status[k] for k in ("phase", "progress", "artifact", "resumes")}, indent=1))

        step("The fine-tuned model, read back from S3 (manifest written last; its digest is the one in status)")
        bucket, _, key = status["artifact"]["uri"].removeprefix("s3://").partition("/")
        body = s3.client().get_object(Bucket=bucket, Key=f"{key}/manifest.json")["Body"].read()
        manifest = json.loads(body)
        for entry in manifest["files"]:
            print(f"  {entry['sha256'][:16]}…  {entry['size']:>10,}  {entry['path']}")
        digest = hashlib.sha256(body).hexdigest()
        verdict = "matches" if digest == status["artifact"]["manifestSha256"] else "DOES NOT MATCH"
        print(f"  manifest sha256 {digest[:16]}… {verdict} status.artifact.manifestSha256")
    finally:
        operator.terminate()
        operator.wait(timeout=30)


def main() -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="stockpot-demo-"))
    try:
        run(state_dir)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
