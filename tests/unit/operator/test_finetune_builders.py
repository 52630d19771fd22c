"""FineTune → children, table-tested; every rendered object validated against the Kubernetes 1.33 schemas."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from stockpot_operator.api.finetune import FineTuneSpec
from stockpot_operator.builders.children import Parent, child_name
from stockpot_operator.builders.finetune import KUEUE_QUEUE_LABEL, Settings, desired
from stockpot_runtime.spec import TrainRun

pytestmark = pytest.mark.unit

PARENT = Parent("FineTune", "support-bot", "team-a", "5f1c0d9e-0000-4000-8000-000000000001", generation=3)
SETTINGS = Settings(runtime_image="registry.example/stockpot-runtime:1.0", extra_env={"AWS_ENDPOINT_URL": "http://s3"})


def spec(**overrides: Any) -> FineTuneSpec:
    base: dict[str, Any] = {
        "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
        "data": {"train": "s3://datasets/train.jsonl", "format": "chatml"},
        "output": {"uri": "s3://artifacts"},
        "credentials": {"s3Secret": "s3-credentials", "huggingFaceSecret": "hf-token"},
        "resources": {"gpus": 1, "memory": "32Gi"},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return FineTuneSpec.model_validate(base)


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


AFFINITY = {
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"stockpot.dev/finetune": "support-bot"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
}
CASES = {
    "single-gpu": spec(),
    "multi-node": spec(
        resources={
            "gpus": 4,
            "nodes": 2,
            "nodeSelector": {"gpu": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": AFFINITY,
        }
    ),
    "cpu": spec(resources={"gpus": 0}),
    "kueue": spec(queueName="team-a-queue"),
    "suspended": spec(suspend=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_child_is_a_valid_kubernetes_object_owned_by_the_finetune(case: str) -> None:
    for obj in desired(CASES[case], PARENT, SETTINGS):
        kubernetes_validate.validate(obj, "1.33", strict=True)
        owner = obj["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("FineTune", PARENT.uid, True)
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["labels"]["stockpot.dev/finetune"] == "support-bot"


def test_single_node_run() -> None:
    children = desired(CASES["single-gpu"], PARENT, SETTINGS)
    assert [c["kind"] for c in children] == ["ServiceAccount", "ConfigMap", "Job"]
    objects = by_kind(children)
    assert objects["ServiceAccount"]["automountServiceAccountToken"] is False
    job = objects["Job"]
    assert job["metadata"]["name"] == "support-bot-train"
    assert "completionMode" not in job["spec"]
    assert job["spec"]["suspend"] is False
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "support-bot-runtime"
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["image"] == "registry.example/stockpot-runtime:1.0"
    assert container["command"] == ["stockpot-runtime", "train", "--spec", "/etc/stockpot/run.json"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1", "memory": "32Gi"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    env = env_of(job)
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "s3-credentials", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}
    assert (env["NNODES"], env["NPROC_PER_NODE"], env["NODE_RANK"]) == ("1", "1", "0")
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["onPodConditions"][0]["type"] == "DisruptionTarget"  # evictions do not use up retries


def test_the_run_spec_carries_no_secret_and_points_at_a_per_uid_artifact() -> None:
    config_map = by_kind(desired(CASES["single-gpu"], PARENT, SETTINGS))["ConfigMap"]
    run = TrainRun.model_validate_json(config_map["data"]["run.json"])
    assert run.artifact_uri == f"s3://artifacts/team-a/finetune/support-bot/{PARENT.uid}"
    assert (run.lineage.name, run.lineage.uid, run.lineage.image) == ("support-bot", PARENT.uid, SETTINGS.runtime_image)
    assert (run.world.nodes, run.world.procs_per_node) == (1, 1)
    assert "secret" not in json.dumps(json.loads(config_map["data"]["run.json"])).lower().replace("s3secret", "")


def test_multi_node_run_is_an_indexed_job_behind_a_headless_service() -> None:
    children = desired(CASES["multi-node"], PARENT, SETTINGS)
    assert [c["kind"] for c in children] == ["ServiceAccount", "ConfigMap", "Service", "Job"]
    objects = by_kind(children)
    service, job = objects["Service"], objects["Job"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert job["spec"]["completionMode"] == "Indexed"
    assert (job["spec"]["parallelism"], job["spec"]["completions"]) == (2, 2)
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    assert pod["nodeSelector"] == {"gpu": "a100"}
    assert pod["affinity"] == AFFINITY
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    env = env_of(job)
    assert env["MASTER_ADDR"] == "support-bot-train-0.support-bot-train.team-a.svc"
    assert env["NODE_RANK"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }
    assert (env["NNODES"], env["NPROC_PER_NODE"]) == ("2", "4")
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    run = TrainRun.model_validate_json(objects["ConfigMap"]["data"]["run.json"])
    assert (run.world.nodes, run.world.procs_per_node) == (2, 4)


def test_kueue_and_suspend() -> None:
    kueue = by_kind(desired(CASES["kueue"], PARENT, SETTINGS))["Job"]
    assert kueue["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "team-a-queue"
    assert kueue["spec"]["suspend"] is True  # Kueue admits it by unsuspending
    assert by_kind(desired(CASES["suspended"], PARENT, SETTINGS))["Job"]["spec"]["suspend"] is True
    cpu = by_kind(desired(CASES["cpu"], PARENT, SETTINGS))["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert cpu["resources"]["limits"] == {"memory": "32Gi"}  # no GPU requested


def test_child_names_are_deterministic_and_fit_in_a_label() -> None:
    long = "x" * 70
    name = child_name(long, "train")
    assert len(name) <= 63
    assert name == child_name(long, "train")
    assert name.endswith("-train")
    assert child_name("short", "train") == "short-train"
