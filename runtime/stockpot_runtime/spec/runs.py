"""The runtime's input contract: one run spec per command, written by the operator into a ConfigMap.

A run spec holds everything the runtime needs and nothing secret: references between resources are already
resolved to URIs, and credentials arrive as environment variables fed by Secret references.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError

from .base import FieldError, Problem, RootSpec, SpecModel, field_errors
from .checkpoint import CheckpointSpec
from .data import DataFormat, DataSpec
from .distributed import DistributedSpec, World
from .evaluation import Suite, Threshold
from .export import ExportConfig
from .method import FORMATS_BY_TASK, MethodSpec, Task
from .model import ModelSource, Uri
from .peft import PeftSpec
from .serving import Engine, VllmConfig
from .storage import StorageSpec
from .training import TrainingSpec

SPEC_PATH = "/etc/stockpot/run.json"


class Lineage(SpecModel):
    """Where the run comes from, recorded in the artifact's manifest."""

    namespace: str = Field(default="", description="Namespace of the resource that started the run.")
    name: str = Field(default="", description="Name of the resource that started the run.")
    uid: str = Field(default="", description="UID of the resource that started the run.")
    image: str = Field(default="", description="Runtime image that ran it.")


class TrainRun(RootSpec):
    """Input of ``stockpot-runtime train``."""

    model: ModelSource
    data: DataSpec
    method: MethodSpec = Field(default_factory=MethodSpec)
    peft: PeftSpec = Field(default_factory=PeftSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    distributed: DistributedSpec = Field(default_factory=DistributedSpec)
    world: World = Field(default_factory=World)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    artifact_uri: Uri = Field(description="Prefix receiving checkpoints/, final/, progress.json and manifest.json.")
    metrics_port: int = Field(default=9090, ge=0, le=65535, description="Prometheus metrics port; 0 disables it.")
    lineage: Lineage = Field(default_factory=Lineage)

    def problems(self) -> Iterator[Problem]:
        yield from training_problems(self.method, self.data)


def training_problems(method: MethodSpec, data: DataSpec) -> Iterator[Problem]:
    """Rules between the method and the data, shared by TrainRun and the FineTune resource."""
    allowed = FORMATS_BY_TASK[Task(method.task)]
    if data.format != DataFormat.AUTO and data.format not in allowed:
        names = ", ".join(sorted(f.value for f in allowed))
        yield Problem(("data", "format"), f"task {method.task} trains on {names}; got {data.format}")


class ExportRun(RootSpec):
    """Input of ``stockpot-runtime export``."""

    source_uri: Uri = Field(description="The model or adapter artifact to export (its final/ directory).")
    base_model: ModelSource | None = Field(default=None, description="Base model an adapter is merged into.")
    export: ExportConfig
    storage: StorageSpec = Field(default_factory=StorageSpec)
    artifact_uri: Uri
    lineage: Lineage = Field(default_factory=Lineage)


class EvalRun(RootSpec):
    """Input of ``stockpot-runtime eval``."""

    model: ModelSource
    baseline_model: ModelSource | None = None
    baseline_scores: dict[str, float] | None = None
    suites: list[Suite] = Field(min_length=1)
    thresholds: list[Threshold] = Field(default_factory=list)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    artifact_uri: Uri
    lineage: Lineage = Field(default_factory=Lineage)


class Adapter(SpecModel):
    """A LoRA adapter served next to the base model under its own model name."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9._\-]*[a-z0-9])?$", max_length=63)
    uri: Uri


class ServeRun(RootSpec):
    """Input of ``stockpot-runtime serve``."""

    model: ModelSource
    served_model_name: str = Field(max_length=255)
    adapters: list[Adapter] = Field(default_factory=list)
    engine: Engine = Engine.BUILTIN
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    port: int = Field(default=8000, ge=1, le=65535)
    lineage: Lineage = Field(default_factory=Lineage)


Run = TypeVar("Run", bound=RootSpec)


class RunSpecError(ValueError):
    """A run spec that does not parse; lists every field error."""

    def __init__(self, source: str, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(f"{source}: invalid run spec:\n" + "\n".join(f"  {e}" for e in errors))


def load_run(kind: type[Run], path: str | Path = SPEC_PATH) -> Run:
    """Parse a run spec file, reporting every problem at once."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return kind.model_validate_json(text)
    except ValidationError as error:
        raise RunSpecError(str(path), field_errors(error)) from None
