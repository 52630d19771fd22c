"""InferenceService: serve a model and its LoRA adapters behind an OpenAI-compatible API."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import ConfigDict, Field

from stockpot_runtime.spec import Engine, Problem, RootSpec, SpecModel, StorageSpec, VllmConfig
from stockpot_runtime.spec.base import cel, cel_rules

from .common import Credentials, ModelRef, ObjectName, Resources
from .status import ArtifactRef, StatusBase


class AdapterRef(SpecModel):
    """A LoRA adapter served as its own model name."""

    name: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9._\-]*[a-z0-9])?$", max_length=63, description="Model name clients use."
    )
    model: ModelRef = Field(description="The adapter: a FineTune with a LoRA adapter, or a uri.")


class AutoscaleMetric(StrEnum):
    """vLLM metric names; the builtin engine exports the same names."""

    REQUESTS_RUNNING = "vllm:num_requests_running"
    REQUESTS_WAITING = "vllm:num_requests_waiting"


class Autoscaling(SpecModel):
    """Horizontal autoscaling on an engine metric (average per replica)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel("self.minReplicas <= self.maxReplicas", "minReplicas must be ≤ maxReplicas", ".minReplicas")
        )
    )

    min_replicas: int = Field(default=1, ge=0, le=1000, description="Fewest replicas (0 needs KEDA).")
    max_replicas: int = Field(default=4, ge=1, le=1000, description="Most replicas.")
    metric: AutoscaleMetric = Field(default=AutoscaleMetric.REQUESTS_RUNNING, description="Metric to scale on.")
    target: float = Field(default=8.0, gt=0, description="Target average value of the metric per replica.")

    def problems(self) -> Iterator[Problem]:
        if self.min_replicas > self.max_replicas:
            yield Problem(("minReplicas",), "minReplicas must be ≤ maxReplicas")


class Gate(SpecModel):
    """A new model version takes traffic only once this EvalGate has Passed for it."""

    eval_gate_ref: ObjectName = Field(description="Name of an EvalGate in this namespace.")


class ServingResources(Resources):
    """Pod resources of each replica."""

    gpus: int = Field(default=0, ge=0, le=16, description="GPUs per replica; vllm needs at least one.")


class InferenceServiceSpec(RootSpec):
    """What to serve, how, and how many."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "self.engine != 'vllm' || self.resources.gpus > 0",
                "engine vllm needs GPUs: set resources.gpus",
                ".engine",
            ),
            cel(
                "!has(self.adapters) || self.adapters.all(a, self.adapters.exists_one(o, o.name == a.name))",
                "adapter names must be unique",
                ".adapters",
            ),
            cel(
                "!has(self.autoscaling) || !has(self.replicas)",
                "set replicas or autoscaling, not both",
                ".replicas",
            ),
        )
    )

    model: ModelRef = Field(description="The base (or merged) model.")
    served_model_name: str | None = Field(
        default=None, max_length=255, description="Model name in the API; default: the resource name."
    )
    adapters: list[AdapterRef] = Field(default_factory=list, max_length=64, description="LoRA adapters served too.")
    engine: Engine = Field(default=Engine.VLLM, description="vllm (GPU) or builtin (CPU).")
    replicas: int | None = Field(default=None, ge=0, le=1000, description="Fixed replica count (default 1).")
    autoscaling: Autoscaling | None = Field(default=None, description="Autoscale instead of fixed replicas.")
    gate: Gate | None = Field(default=None, description="Promotion gate for new model versions.")
    vllm: VllmConfig = Field(default_factory=VllmConfig, description="vLLM engine settings.")
    resources: ServingResources = Field(default_factory=ServingResources, description="Pod resources per replica.")
    storage: StorageSpec = Field(default_factory=StorageSpec, description="S3 endpoint settings.")
    credentials: Credentials = Field(default_factory=Credentials, description="Storage and hub credentials.")

    def problems(self) -> Iterator[Problem]:
        if self.engine == Engine.VLLM and self.resources.gpus == 0:
            yield Problem(("engine",), "engine vllm needs GPUs: set resources.gpus, or use engine builtin on CPU")
        names = [adapter.name for adapter in self.adapters]
        for index, name in enumerate(names):
            if names.index(name) != index:
                yield Problem(("adapters", index, "name"), f"adapter name {name!r} is used twice")
        if self.autoscaling is not None and self.replicas is not None:
            yield Problem(("replicas",), "set replicas or autoscaling, not both")


class InferencePhase(StrEnum):
    PENDING = "Pending"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    READY = "Ready"
    FAILED = "Failed"
    INVALID = "Invalid"


class ServedModel(SpecModel):
    """A model the server reports in /v1/models."""

    id: str = Field(description="Model id as served.")
    parent: str | None = Field(default=None, description="Base model id of an adapter.")


class InferenceServiceStatus(StatusBase):
    """Observed state of an InferenceService."""

    url: str | None = Field(default=None, description="In-cluster base URL of the OpenAI-compatible API.")
    replicas: int = Field(default=0, ge=0, description="Current replicas (scale subresource).")
    ready_replicas: int = Field(default=0, ge=0, description="Replicas passing readiness.")
    selector: str | None = Field(default=None, description="Label selector of the pods (scale subresource).")
    served_models: list[ServedModel] = Field(default_factory=list, description="Models confirmed from /v1/models.")
    active_version: ArtifactRef | None = Field(default=None, description="The model version taking traffic.")
    pending_version: ArtifactRef | None = Field(default=None, description="A version waiting for its gate.")
