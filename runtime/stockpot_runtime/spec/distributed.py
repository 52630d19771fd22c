"""How one run spreads over processes and nodes."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import SpecModel


class DistributedPreset(StrEnum):
    """ddp replicates the model; fsdp and zero shard it (offload variants keep optimizer state in CPU memory)."""

    AUTO = "auto"
    DDP = "ddp"
    FSDP = "fsdp"
    FSDP_OFFLOAD = "fsdp-offload"
    ZERO2 = "zero2"
    ZERO2_OFFLOAD = "zero2-offload"
    ZERO3 = "zero3"
    ZERO3_OFFLOAD = "zero3-offload"


DEEPSPEED_PRESETS = frozenset(
    {
        DistributedPreset.ZERO2,
        DistributedPreset.ZERO2_OFFLOAD,
        DistributedPreset.ZERO3,
        DistributedPreset.ZERO3_OFFLOAD,
    }
)


class DistributedSpec(SpecModel):
    """Data parallelism across GPUs and nodes (torchrun), with FSDP2 or DeepSpeed ZeRO presets."""

    preset: DistributedPreset = Field(
        default=DistributedPreset.AUTO,
        description="auto: ddp when more than one process, else single-process. fsdp*, zero* shard the model.",
    )


class World(SpecModel):
    """The process layout the operator scheduled: nodes × processes per node."""

    nodes: int = Field(default=1, ge=1, le=256, description="Nodes (pods) in the run.")
    procs_per_node: int = Field(default=1, ge=1, le=64, description="Processes per node (one per GPU).")

    @property
    def size(self) -> int:
        return self.nodes * self.procs_per_node
