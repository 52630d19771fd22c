"""Export formats: what a trained model is turned into."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import ConfigDict, Field

from .base import Problem, SpecModel, cel, cel_rules
from .model import Uri


class ExportFormat(StrEnum):
    MERGED_SAFETENSORS = "merged-safetensors"
    GGUF = "gguf"
    ONNX = "onnx"
    AWQ = "awq"
    GPTQ = "gptq"


GPU_EXPORT_FORMATS = frozenset({ExportFormat.AWQ, ExportFormat.GPTQ})


class GgufQuant(StrEnum):
    F16 = "f16"
    BF16 = "bf16"
    Q8_0 = "q8_0"
    Q6_K = "q6_k"
    Q5_K_M = "q5_k_m"
    Q4_K_M = "q4_k_m"
    Q4_0 = "q4_0"


class DType(StrEnum):
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"


class WeightQuantConfig(SpecModel):
    """Post-training weight quantization (awq, gptq) calibrated on sample data."""

    bits: int = Field(default=4, ge=2, le=8, description="Weight bits.")
    group_size: int = Field(default=128, ge=-1, description="Quantization group size; -1 = per channel.")
    calibration_data: Uri | None = Field(default=None, description="Calibration rows (text); unset: the training data.")
    calibration_samples: int = Field(default=128, ge=1, le=100_000, description="Calibration rows used.")


class ExportConfig(SpecModel):
    """The target format and its options."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "self.format == 'gguf' || !has(self.ggufQuant)",
                "ggufQuant applies to format gguf",
                ".ggufQuant",
            ),
            cel(
                "self.format in ['awq', 'gptq'] || !has(self.weightQuant)",
                "weightQuant applies to formats awq and gptq",
                ".weightQuant",
            ),
            cel(
                "self.format == 'onnx' || !has(self.onnxOpset)",
                "onnxOpset applies to format onnx",
                ".onnxOpset",
            ),
        )
    )

    format: ExportFormat = Field(description="merged-safetensors, gguf, onnx, awq or gptq (awq and gptq need a GPU).")
    dtype: DType = Field(default=DType.FLOAT16, description="Weight dtype of merged and ONNX exports.")
    gguf_quant: GgufQuant | None = Field(default=None, description="GGUF quantization type; default q4_k_m.")
    weight_quant: WeightQuantConfig | None = Field(default=None, description="AWQ/GPTQ settings.")
    onnx_opset: int | None = Field(default=None, ge=13, le=25, description="ONNX opset; default 17.")

    def problems(self) -> Iterator[Problem]:
        if self.gguf_quant is not None and self.format != ExportFormat.GGUF:
            yield Problem(("ggufQuant",), "ggufQuant applies to format gguf")
        if self.weight_quant is not None and self.format not in GPU_EXPORT_FORMATS:
            yield Problem(("weightQuant",), "weightQuant applies to formats awq and gptq")
        if self.onnx_opset is not None and self.format != ExportFormat.ONNX:
            yield Problem(("onnxOpset",), "onnxOpset applies to format onnx")
