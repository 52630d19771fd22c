"""FineTune → the objects that run it, as plain data (no API calls).

``desired(parent, spec, settings)`` returns, in creation order:
- a ServiceAccount with no API rights and no token;
- a ConfigMap ``<name>-run`` holding the ``TrainRun`` (``run.json``) — no secrets in it;
- for more than one node, a headless Service ``<name>-train`` giving each pod a stable DNS name;
- a Job ``<name>-train``: one pod, or an Indexed Job of ``nodes`` pods whose index is the node rank. Pods run
  ``stockpot-runtime train`` with MASTER_ADDR (pod 0's DNS name), MASTER_PORT, NNODES, NODE_RANK,
  NPROC_PER_NODE; S3/HF credentials as Secret references; GPUs as extended resources; a memory-backed
  /dev/shm; the restricted security context; the pass-through node selector, affinity and tolerations.
Kueue: with ``queueName`` the Job carries ``kueue.x-k8s.io/queue-name`` and starts suspended until Kueue admits
it. ``spec.suspend`` suspends the Job (pods go, checkpoints stay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from stockpot_operator.api.finetune import FineTuneSpec
from stockpot_runtime.spec import TrainRun
from stockpot_runtime.spec.distributed import World
from stockpot_runtime.spec.runs import SPEC_PATH, Lineage

from .children import (
    Obj,
    Parent,
    child_name,
    restricted_container_security,
    restricted_pod_security,
    secret_env,
    service_account,
)

KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
RUN_SPEC_DIR = SPEC_PATH.rsplit("/", 1)[0]
MASTER_PORT = 29500
METRICS_PORT = 9090
EXIT_INVALID_SPEC = 2
TERMINATION_LOG = "/dev/termination-log"


@dataclass(frozen=True)
class Settings:
    """Operator-wide defaults (Helm values → environment of the operator)."""

    runtime_image: str = "ghcr.io/stockpot-dev/stockpot-runtime:0.1.0"
    runtime_command: tuple[str, ...] = ("stockpot-runtime",)
    backoff_limit: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    """Plain (non-secret) env for runtime pods, e.g. a default S3 endpoint."""


@dataclass(frozen=True)
class Names:
    config_map: str
    job: str
    service: str
    service_account: str

    @classmethod
    def of(cls, name: str) -> Names:
        return cls(
            child_name(name, "run"), child_name(name, "train"), child_name(name, "train"), child_name(name, "runtime")
        )


def artifact_uri(spec: FineTuneSpec, parent: Parent) -> str:
    """``<output>/<namespace>/finetune/<name>/<uid>``: a new resource (uid) never overwrites an old artifact."""
    return f"{spec.output.uri.rstrip('/')}/{parent.namespace}/finetune/{parent.name}/{parent.uid}"


def run_spec(spec: FineTuneSpec, parent: Parent, settings: Settings) -> TrainRun:
    """The runtime's input: the spec's training sections, the world, the artifact location, the lineage."""
    return TrainRun(
        model=spec.model,
        data=spec.data,
        method=spec.method,
        peft=spec.peft,
        training=spec.training,
        checkpoint=spec.checkpoint,
        distributed=spec.distributed,
        world=World(nodes=spec.resources.nodes, procs_per_node=max(spec.resources.gpus, 1)),
        storage=spec.storage,
        artifact_uri=artifact_uri(spec, parent),
        metrics_port=METRICS_PORT,
        lineage=Lineage(
            namespace=parent.namespace,
            name=parent.name,
            uid=parent.uid,
            image=spec.resources.image or settings.runtime_image,
        ),
    )


def config_map(spec: FineTuneSpec, parent: Parent, settings: Settings) -> Obj:
    run = run_spec(spec, parent, settings)
    text = json.dumps(run.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": parent.metadata(Names.of(parent.name).config_map, "run-spec"),
        "data": {"run.json": text},
    }


def credential_env(spec: FineTuneSpec) -> list[Obj]:
    env = []
    if spec.credentials.s3_secret:
        env += [
            secret_env(key, spec.credentials.s3_secret, key) for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
    if spec.credentials.hugging_face_secret:
        env.append(secret_env("HF_TOKEN", spec.credentials.hugging_face_secret, "HF_TOKEN"))
    return env


def topology_env(spec: FineTuneSpec, names: Names, namespace: str) -> list[Obj]:
    """torchrun's rendezvous: pod 0 of the Indexed Job is the master; the completion index is the node rank."""
    nodes = spec.resources.nodes
    env: list[Obj] = [
        {"name": "NNODES", "value": str(nodes)},
        {"name": "NPROC_PER_NODE", "value": str(max(spec.resources.gpus, 1))},
        {"name": "MASTER_PORT", "value": str(MASTER_PORT)},
    ]
    if nodes > 1:
        env += [
            {"name": "MASTER_ADDR", "value": f"{names.job}-0.{names.service}.{namespace}.svc"},
            {
                "name": "NODE_RANK",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}},
            },
        ]
    else:
        env += [{"name": "MASTER_ADDR", "value": "127.0.0.1"}, {"name": "NODE_RANK", "value": "0"}]
    return env


def resources(spec: FineTuneSpec) -> Obj:
    amounts: dict[str, str] = {}
    if spec.resources.gpus:
        amounts[spec.resources.gpu_resource] = str(spec.resources.gpus)
    if spec.resources.cpu:
        amounts["cpu"] = spec.resources.cpu
    if spec.resources.memory:
        amounts["memory"] = spec.resources.memory
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def container(spec: FineTuneSpec, parent: Parent, settings: Settings, names: Names) -> Obj:
    env = [{"name": key, "value": value} for key, value in sorted(settings.extra_env.items())]
    env.append({"name": "STOCKPOT_TERMINATION_LOG", "value": TERMINATION_LOG})
    env += credential_env(spec) + topology_env(spec, names, parent.namespace)
    ports = [{"name": "metrics", "containerPort": METRICS_PORT}]
    if spec.resources.nodes > 1:
        ports.append({"name": "rendezvous", "containerPort": MASTER_PORT})
    out: Obj = {
        "name": "train",
        "image": spec.resources.image or settings.runtime_image,
        "command": [*settings.runtime_command, "train", "--spec", SPEC_PATH],
        "env": env,
        "ports": ports,
        "volumeMounts": [
            {"name": "run-spec", "mountPath": RUN_SPEC_DIR, "readOnly": True},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
        "securityContext": restricted_container_security(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if resources(spec):
        out["resources"] = resources(spec)
    return out


def pod_template(spec: FineTuneSpec, parent: Parent, settings: Settings, names: Names) -> Obj:
    pod: Obj = {
        "serviceAccountName": names.service_account,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": restricted_pod_security(),
        "containers": [container(spec, parent, settings, names)],
        "volumes": [
            {"name": "run-spec", "configMap": {"name": names.config_map}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.resources.shm_size}},
        ],
    }
    if spec.resources.nodes > 1:
        pod["subdomain"] = names.service
    if spec.resources.node_selector:
        pod["nodeSelector"] = dict(spec.resources.node_selector)
    if spec.resources.affinity:
        pod["affinity"] = dict(spec.resources.affinity)
    if spec.resources.tolerations:
        pod["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in spec.resources.tolerations
        ]
    return {
        "metadata": {
            "labels": parent.labels("train"),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(METRICS_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": pod,
    }


def job(spec: FineTuneSpec, parent: Parent, settings: Settings) -> Obj:
    """The training Job; evictions do not count against its retries and an invalid run spec fails it at once."""
    names = Names.of(parent.name)
    nodes = spec.resources.nodes
    extra = {KUEUE_QUEUE_LABEL: spec.queue_name} if spec.queue_name else {}
    body: Obj = {
        "parallelism": nodes,
        "completions": nodes,
        "backoffLimit": settings.backoff_limit,
        "suspend": spec.suspend or spec.queue_name is not None,
        "podFailurePolicy": {
            "rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "train", "operator": "In", "values": [EXIT_INVALID_SPEC]},
                },
            ]
        },
        "template": pod_template(spec, parent, settings, names),
    }
    if nodes > 1:
        body["completionMode"] = "Indexed"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": parent.metadata(names.job, "train", **extra),
        "spec": body,
    }


def headless_service(spec: FineTuneSpec, parent: Parent) -> Obj:
    names = Names.of(parent.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": parent.metadata(names.service, "train"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": parent.labels("train"),
            "ports": [{"name": "rendezvous", "port": MASTER_PORT, "targetPort": MASTER_PORT}],
        },
    }


def desired(spec: FineTuneSpec, parent: Parent, settings: Settings) -> list[Obj]:
    """Every child of the FineTune, in the order they must be created."""
    names = Names.of(parent.name)
    out = [service_account(parent, names.service_account), config_map(spec, parent, settings)]
    if spec.resources.nodes > 1:
        out.append(headless_service(spec, parent))
    out.append(job(spec, parent, settings))
    return out
