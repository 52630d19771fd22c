"""FineTune: fine-tune a base model on data with a method and an adapter, as one or more GPU Jobs."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from stockpot_runtime.spec import (
    CheckpointSpec,
    DataSpec,
    DistributedSpec,
    MethodSpec,
    ModelSource,
    PeftSpec,
    Problem,
    RootSpec,
    SpecModel,
    StorageSpec,
    TrainingSpec,
    training_problems,
)
from stockpot_runtime.spec.base import cel, cel_rules
from stockpot_runtime.spec.distributed import DEEPSPEED_PRESETS, DistributedPreset
from stockpot_runtime.spec.training import GPU_OPTIMIZERS

from .common import Credentials, Output, Resources
from .status import ArtifactRef, StatusBase


class FineTuneResources(Resources):
    """Pods, GPUs and nodes for the run; nodes × gpus processes train together (torchrun)."""

    nodes: int = Field(
        default=1, ge=1, le=64, description="Nodes (pods) in the run; more than one uses an Indexed Job."
    )
    affinity: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Kubernetes affinity for the training pods (nodeAffinity, podAffinity, podAntiAffinity), passed through "
            "as written; the API server validates it when the Job is created."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class FineTuneSpec(RootSpec):
    """What to fine-tune, on what, how, and where the result goes."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "self.peft.quantization == 'none' || self.resources.gpus > 0",
                "quantization (QLoRA) needs GPUs: set resources.gpus",
                ".peft.quantization",
            ),
            cel(
                "self.resources.gpus > 0 || !(self.distributed.preset in "
                "['fsdp', 'fsdp-offload', 'zero2', 'zero2-offload', 'zero3', 'zero3-offload'])",
                "FSDP and DeepSpeed presets need GPUs: set resources.gpus or preset auto/ddp",
                ".distributed.preset",
            ),
            cel(
                "self.resources.gpus > 0 || !(self.training.optimizer in ['adamw_8bit', 'paged_adamw_8bit'])",
                "8-bit optimizers need GPUs",
                ".training.optimizer",
            ),
        )
    )

    model: ModelSource = Field(description="The base model.")
    data: DataSpec = Field(description="Training (and evaluation) data.")
    method: MethodSpec = Field(default_factory=MethodSpec, description="Objective and its hyperparameters.")
    peft: PeftSpec = Field(
        default_factory=PeftSpec, description="Adapter (LoRA, QLoRA, DoRA, VeRA) or full fine-tuning."
    )
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Optimisation hyperparameters.")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec, description="Checkpointing and resume.")
    distributed: DistributedSpec = Field(default_factory=DistributedSpec, description="Multi-GPU/multi-node strategy.")
    resources: FineTuneResources = Field(
        default_factory=FineTuneResources, description="GPUs, nodes, memory, placement."
    )
    output: Output = Field(description="Where checkpoints and the final artifact are written.")
    storage: StorageSpec = Field(default_factory=StorageSpec, description="S3 endpoint settings for s3:// locations.")
    credentials: Credentials = Field(
        default_factory=Credentials, description="Secrets holding storage and hub credentials."
    )
    queue_name: str | None = Field(
        default=None,
        max_length=63,
        description="Kueue LocalQueue; the Job waits suspended until Kueue admits it.",
    )
    suspend: bool = Field(default=False, description="Stop the pods and keep the checkpoints; false resumes.")

    def problems(self) -> Iterator[Problem]:
        yield from training_problems(self.method, self.data)
        gpus = self.resources.gpus
        if self.peft.needs_gpu and gpus == 0:
            yield Problem(("peft", "quantization"), "quantization (QLoRA) needs GPUs: set resources.gpus")
        sharded = {DistributedPreset.FSDP, DistributedPreset.FSDP_OFFLOAD, *DEEPSPEED_PRESETS}
        if gpus == 0 and self.distributed.preset in sharded:
            yield Problem(("distributed", "preset"), "FSDP and DeepSpeed presets need GPUs: set resources.gpus")
        if gpus == 0 and self.training.optimizer in GPU_OPTIMIZERS:
            yield Problem(("training", "optimizer"), "8-bit optimizers need GPUs")


class FineTunePhase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INVALID = "Invalid"


class Progress(SpecModel):
    """Training progress mirrored from the run's progress.json."""

    step: int = Field(default=0, ge=0, description="Optimizer steps done.")
    total_steps: int | None = Field(default=None, ge=0, description="Optimizer steps planned.")
    summary: str | None = Field(default=None, description="step/total (percent), for printer columns.")
    epoch: float | None = Field(default=None, ge=0, description="Fractional epoch.")
    loss: float | None = Field(default=None, description="Latest training loss.")
    learning_rate: float | None = Field(default=None, description="Latest learning rate.")
    tokens_per_second: float | None = Field(default=None, ge=0, description="Recent training throughput.")
    eta_seconds: float | None = Field(default=None, ge=0, description="Estimated seconds to completion.")
    updated: str | None = Field(default=None, description="When the run last reported (RFC 3339).")


class CheckpointRef(SpecModel):
    """The newest complete checkpoint."""

    uri: str = Field(description="Checkpoint prefix.")
    step: int = Field(ge=0, description="Step it was taken at.")


class FineTuneStatus(StatusBase):
    """Observed state of a FineTune."""

    progress: Progress | None = Field(default=None, description="Training progress.")
    checkpoint: CheckpointRef | None = Field(default=None, description="Newest complete checkpoint.")
    artifact: ArtifactRef | None = Field(default=None, description="The committed final artifact.")
    attempts: int = Field(default=0, ge=0, description="Pods started for the run (first try and retries).")
    resumes: int = Field(default=0, ge=0, description="Times the run resumed from a checkpoint.")
    start_time: str | None = Field(default=None, description="When training started.")
    completion_time: str | None = Field(default=None, description="When the run finished.")
