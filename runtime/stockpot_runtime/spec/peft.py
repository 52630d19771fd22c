"""Parameter-efficient fine-tuning: which adapter (or none), its shape, and how the base is loaded."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import ConfigDict, Field

from .base import Problem, SpecModel, cel, cel_rules


class AdapterType(StrEnum):
    LORA = "lora"
    VERA = "vera"
    FULL = "full"


class LoraInit(StrEnum):
    DEFAULT = "default"
    GAUSSIAN = "gaussian"
    PISSA = "pissa"
    OLORA = "olora"


class Quantization(StrEnum):
    """Load the frozen base quantized (QLoRA). 4bit/8bit use bitsandbytes and need a CUDA GPU."""

    NONE = "none"
    FOUR_BIT = "4bit"
    EIGHT_BIT = "8bit"


class PeftSpec(SpecModel):
    """Adapter settings. lora + quantization 4bit is QLoRA; dora/rslora/loraPlusLrRatio refine LoRA."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "self.type == 'lora' || self.quantization == 'none'",
                "quantization needs type lora",
                ".quantization",
            ),
            cel(
                "self.type == 'lora' || !(self.dora || self.rslora || has(self.loraPlusLrRatio) || self.init != 'default')",
                "dora, rslora, init and loraPlusLrRatio refine LoRA; use type lora",
                ".type",
            ),
            cel(
                "self.type == 'full' || self.freezeLayers == 0",
                "freezeLayers applies to full fine-tuning",
                ".freezeLayers",
            ),
            cel(
                "!(self.dora && self.init in ['pissa', 'olora'])",
                "dora cannot start from pissa/olora init",
                ".init",
            ),
        )
    )

    type: AdapterType = Field(default=AdapterType.LORA, description="lora (incl. qlora/dora/rslora), vera, or full.")
    r: int = Field(default=64, ge=1, le=4096, description="Adapter rank.")
    alpha: int = Field(
        default=16, ge=1, description="LoRA alpha (scaling = alpha / r, or alpha / sqrt(r) with rslora)."
    )
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Dropout on the adapter input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["all-linear"],
        min_length=1,
        description="Module names to adapt; [all-linear] adapts every linear layer but the output head.",
    )
    dora: bool = Field(default=False, description="Weight-decomposed LoRA (DoRA).")
    rslora: bool = Field(default=False, description="Rank-stabilised scaling alpha / sqrt(r).")
    init: LoraInit = Field(
        default=LoraInit.DEFAULT, description="Adapter initialisation: default, gaussian, pissa, olora."
    )
    lora_plus_lr_ratio: float | None = Field(
        default=None,
        ge=1.0,
        le=1024.0,
        description="LoRA+: learning rate of the B matrices = lr × this ratio.",
    )
    quantization: Quantization = Field(
        default=Quantization.NONE,
        description="Load the base in 4bit or 8bit (QLoRA; needs a GPU). Soup defaults to 4bit; here it is opt-in.",
    )
    freeze_layers: int = Field(
        default=0, ge=0, description="Full fine-tuning: keep the lowest N decoder layers frozen."
    )

    def problems(self) -> Iterator[Problem]:
        if self.type != AdapterType.LORA and self.quantization != Quantization.NONE:
            yield Problem(("quantization",), "quantization needs type lora (QLoRA)")
        refinements = self.dora or self.rslora or self.lora_plus_lr_ratio is not None or self.init != LoraInit.DEFAULT
        if self.type != AdapterType.LORA and refinements:
            yield Problem(("type",), "dora, rslora, init and loraPlusLrRatio refine LoRA; use type lora")
        if self.type != AdapterType.FULL and self.freeze_layers:
            yield Problem(("freezeLayers",), "freezeLayers applies to full fine-tuning; use type full")
        if self.dora and self.init in (LoraInit.PISSA, LoraInit.OLORA):
            yield Problem(("init",), "dora cannot start from pissa/olora init")

    @property
    def needs_gpu(self) -> bool:
        return self.quantization != Quantization.NONE
