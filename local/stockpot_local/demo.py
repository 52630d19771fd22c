"""``make demo``: the local stack, end to end, with the parts of the pipeline that exist today.

1. Start the local cluster (embedded API server, controllers, process kubelet, SeaweedFS S3).
2. Install the Stockpot CRDs with the real kubectl, and apply every example resource.
3. Show admission at work: an invalid FineTune is rejected by the CRD's schema/CEL with the field named.
4. Publish the offline toy model and a synthetic dataset to S3 from a pod (credentials from a Secret, as the
   operator passes them): ``stockpot-runtime toy`` commits the model as an artifact, manifest last.
5. Fine-tune, the way the operator will run it: a Job mounts the run spec from a ConfigMap and runs
   ``stockpot-runtime train`` — the toy model fine-tuned on the add task, checkpoints and progress to S3, the adapter committed
   manifest last, the summary in the pod's termination message.
6. Read the trained artifact's manifest and progress back from S3, then stop everything.

It prints what it runs and what came back; nothing is simulated. The FineTune controller (which writes
this Job from a FineTune) joins the flow when it lands (see the README's project status).
"""

from __future__ import annotations

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
from stockpot_local.tools import ensure_tool

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "demo"

MODEL_URI = "s3://models/toy-llama"
DATA_URI = "s3://datasets/add/train.jsonl"
ARTIFACT_URI = f"s3://artifacts/{NAMESPACE}/finetune/add/0001"
RUN_SPEC = {
    "model": {"uri": f"{MODEL_URI}/final"},
    "data": {"train": DATA_URI, "format": "chatml", "maxLength": 128},
    "peft": {"type": "full"},
    "training": {"maxSteps": 60, "lr": 0.003, "batchSize": 16, "gradientAccumulationSteps": 1, "loggingSteps": 10},
    "checkpoint": {"everySteps": 20, "keep": 2},
    "artifactUri": ARTIFACT_URI,
    "metricsPort": 0,
}


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def kubectl(args: Sequence[str], env: dict[str, str], check: bool = True, stdin: str | None = None) -> str:
    command = [str(ensure_tool("kubectl")), *args]
    print("$ kubectl " + " ".join(args), flush=True)
    result = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).rstrip()
    if output:
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


def toy_job(s3_env: dict[str, str]) -> str:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s3-credentials", "namespace": NAMESPACE},
        "stringData": {key: s3_env[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    }
    container = runtime_container("toy", ["toy", "--model", MODEL_URI, "--data", DATA_URI, "--rows", "2000"], s3_env)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "toy-publish", "namespace": NAMESPACE},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }
    return "\n---\n".join(json.dumps(document) for document in (secret, job))


def training_job(s3_env: dict[str, str]) -> str:
    """A Job that runs ``stockpot-runtime train`` on a run spec mounted from a ConfigMap."""
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "add-run", "namespace": NAMESPACE},
        "data": {"run.json": json.dumps(RUN_SPEC, indent=2)},
    }
    container = {
        **runtime_container("train", ["train", "--spec", "/etc/stockpot/run.json"], s3_env),
        "volumeMounts": [{"name": "run-spec", "mountPath": "/etc/stockpot"}],
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "add-train", "namespace": NAMESPACE},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{"name": "run-spec", "configMap": {"name": "add-run"}}],
                }
            },
        },
    }
    return "\n---\n".join(json.dumps(document) for document in (config_map, job))


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

            step("Fine-tuning in a pod: a Job runs `stockpot-runtime train` on a run spec from a ConfigMap")
            cluster.s3.create_bucket("artifacts")
            kubectl(["apply", "-f", "-"], env, stdin=training_job(cluster.s3.env()))
            kubectl(["wait", "-n", NAMESPACE, "--for=condition=Complete", "job/add-train", "--timeout=600s"], env)
            kubectl(["get", "pods", "-n", NAMESPACE, "-l", "job-name=add-train"], env)
            kubectl(["logs", "-n", NAMESPACE, "job/add-train"], env)

            step(f"The fine-tuned model, read back from {ARTIFACT_URI} (manifest written last, after every file)")
            client, key = cluster.s3.client(), ARTIFACT_URI.removeprefix("s3://artifacts/")
            manifest = json.loads(client.get_object(Bucket="artifacts", Key=f"{key}/manifest.json")["Body"].read())
            for entry in manifest["files"]:
                print(f"  {entry['sha256'][:16]}…  {entry['size']:>10,}  {entry['path']}")
            print("  lineage:", json.dumps(manifest["lineage"]["baseModel"]), manifest["lineage"]["dataDigest"])
            progress = json.loads(client.get_object(Bucket="artifacts", Key=f"{key}/progress.json")["Body"].read())
            print("  progress.json:", json.dumps(progress))
        step("Stopping the local cluster")
    print("done: every process stopped.")


def main() -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="stockpot-demo-"))
    try:
        run(state_dir)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
