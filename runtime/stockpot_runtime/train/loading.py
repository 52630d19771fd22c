"""Where and how the model trains: the device, the precision, and loading the base model and tokenizer.

``hardware_problems(run, has_cuda)`` lists every setting that needs a GPU the node does not have (QLoRA's
bitsandbytes, 8-bit optimizers, fp16), each naming its field and the fix, before anything is downloaded.
``placement(precision, has_cuda)`` resolves ``auto``: bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stockpot_runtime.spec.model import ModelSource
from stockpot_runtime.spec.peft import Quantization
from stockpot_runtime.spec.runs import TrainRun
from stockpot_runtime.spec.training import GPU_OPTIMIZERS, Precision


class HardwareError(RuntimeError):
    """The run asks for hardware (a CUDA GPU) this node does not have."""


@dataclass(frozen=True)
class Placement:
    """The device and the autocast dtype (None: plain fp32)."""

    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def precision(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.autocast_dtype, "fp32")  # type: ignore[arg-type]


def has_cuda() -> bool:
    return torch.cuda.is_available()


def hardware_problems(run: TrainRun, cuda: bool) -> list[str]:
    """What in ``run`` needs a GPU when ``cuda`` is false; empty when the node can run it."""
    if cuda:
        return []
    problems = []
    if run.peft.quantization != Quantization.NONE:
        problems.append(
            f"peft.quantization: {run.peft.quantization} (QLoRA) loads the base with bitsandbytes, which needs a "
            "CUDA GPU — request GPUs in resources or set quantization: none"
        )
    if run.training.optimizer in GPU_OPTIMIZERS:
        problems.append(
            f"training.optimizer: {run.training.optimizer} is a bitsandbytes optimizer that needs a CUDA GPU — "
            "use adamw_torch on CPU"
        )
    if run.training.precision == Precision.FP16:
        problems.append("training.precision: fp16 training needs a CUDA GPU — use fp32 or auto on CPU")
    return problems


def require_hardware(run: TrainRun, cuda: bool) -> None:
    problems = hardware_problems(run, cuda)
    if problems:
        raise HardwareError("this node has no CUDA GPU:\n  " + "\n  ".join(problems))


def placement(precision: Precision, cuda: bool, local_rank: int = 0) -> Placement:
    """Device and autocast dtype for ``precision`` on this node."""
    if not cuda:
        if precision == Precision.FP16:
            raise HardwareError("training.precision: fp16 training needs a CUDA GPU — use fp32 or auto on CPU")
        return Placement(torch.device("cpu"), torch.bfloat16 if precision == Precision.BF16 else None)
    device = torch.device("cuda", local_rank)
    if precision == Precision.AUTO:
        dtype: torch.dtype | None = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16, Precision.FP32: None}[precision]
    return Placement(device, dtype)


def load_tokenizer(model_dir: Path, source: ModelSource) -> Any:
    """The base's tokenizer; a missing pad token falls back to eos (padding is always masked out)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=source.trust_remote_code)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"{source.uri}: the tokenizer has neither a pad nor an eos token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def quantization_config(quantization: Quantization, compute_dtype: torch.dtype | None) -> Any:
    """The bitsandbytes config of QLoRA (nf4 with double quantization, or int8); None when not quantized."""
    if quantization == Quantization.NONE:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == Quantization.EIGHT_BIT:
        return BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]
    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype or torch.bfloat16,
    )


def load_model(
    model_dir: Path,
    source: ModelSource,
    *,
    head: str = "causal-lm",
    quantization: Quantization = Quantization.NONE,
    where: Placement | None = None,
    pad_token_id: int | None = None,
) -> Any:
    """The base model with a causal-LM head, or a one-logit sequence-classification head (``head='reward'``).

    Weights load in fp32 (autocast handles bf16/fp16 compute) unless quantized, which loads them 4/8-bit on the GPU.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"trust_remote_code": source.trust_remote_code}
    qconfig = quantization_config(quantization, where.autocast_dtype if where else None)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        kwargs["device_map"] = {"": where.device.index if where and where.device.index is not None else 0}
    else:
        kwargs["dtype"] = torch.float32
    if head == "reward":
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, **kwargs)
        if pad_token_id is not None:
            model.config.pad_token_id = pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if qconfig is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)  # type: ignore[no-untyped-call]
    elif where is not None:
        model.to(where.device)
    return model
