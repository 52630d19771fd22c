"""Serving engines and their knobs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import SpecModel


class Engine(StrEnum):
    """vllm on GPUs; builtin is a small transformers server for CPU (tests, demos, tiny models)."""

    VLLM = "vllm"
    BUILTIN = "builtin"


class VllmConfig(SpecModel):
    """vLLM engine arguments we expose."""

    max_model_len: int | None = Field(default=None, ge=64, description="Context length; unset: the model's.")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0.0, le=1.0, description="Fraction of GPU memory vLLM may use."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, le=64, description="GPUs per replica the model is split over.")
    max_loras: int = Field(default=4, ge=1, le=256, description="Adapters resident on the GPU at once.")
    max_lora_rank: int = Field(default=64, ge=1, le=512, description="Largest adapter rank that can be loaded.")
