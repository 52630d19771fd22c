"""Export: merge adapters and convert a trained model (safetensors, GGUF, ONNX, AWQ/GPTQ)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import ConfigDict, Field

from stockpot_runtime.spec import ExportConfig, ModelSource, Problem, RootSpec, StorageSpec
from stockpot_runtime.spec.base import cel, cel_rules
from stockpot_runtime.spec.export import GPU_EXPORT_FORMATS

from .common import Credentials, ModelRef, Output, Resources
from .status import ArtifactRef, StatusBase


class ExportResources(Resources):
    """Pod resources of an export; CPU by default, GPUs for awq/gptq calibration."""

    gpus: int = Field(default=0, ge=0, le=16, description="GPUs for the export pod; awq and gptq need one.")


class ExportSpec(RootSpec):
    """Which model to export, to what format, and where."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!(self.export.format in ['awq', 'gptq']) || self.resources.gpus > 0",
                "awq and gptq calibrate on a GPU: set resources.gpus",
                ".resources.gpus",
            ),
            cel(
                "!has(self.source.exportRef)",
                "export from a FineTune or a uri, not another Export",
                ".source.exportRef",
            ),
        )
    )

    source: ModelRef = Field(description="The model to export: fineTuneRef or uri.")
    base_model: ModelSource | None = Field(
        default=None, description="Base model to merge an adapter into when source is a uri of an adapter."
    )
    export: ExportConfig = Field(description="Target format and its options.")
    output: Output = Field(description="Where the exported artifact is written.")
    storage: StorageSpec = Field(default_factory=StorageSpec, description="S3 endpoint settings.")
    credentials: Credentials = Field(default_factory=Credentials, description="Storage and hub credentials.")
    resources: ExportResources = Field(default_factory=ExportResources, description="Pod resources.")

    def problems(self) -> Iterator[Problem]:
        if self.export.format in GPU_EXPORT_FORMATS and self.resources.gpus == 0:
            yield Problem(("resources", "gpus"), "awq and gptq calibrate on a GPU: set resources.gpus")
        if self.source.export_ref is not None:
            yield Problem(("source", "exportRef"), "export from a FineTune or a uri, not another Export")


class ExportPhase(StrEnum):
    PENDING = "Pending"
    WAITING = "Waiting"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INVALID = "Invalid"


class ExportStatus(StatusBase):
    """Observed state of an Export."""

    source: ArtifactRef | None = Field(default=None, description="The source artifact, pinned when the export started.")
    artifact: ArtifactRef | None = Field(default=None, description="The committed exported artifact.")
