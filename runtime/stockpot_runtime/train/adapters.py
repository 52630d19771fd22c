"""What trains: a LoRA-family adapter, a VeRA adapter, or the full model with its lowest layers frozen.

``apply_adapter(model, spec, task_type)`` returns the model to optimise. LoRA covers DoRA (``dora``), rsLoRA
(``rslora``), PiSSA/OLoRA/gaussian initialisation (``init``) and QLoRA (a quantized base, loaded by
``loading``). PiSSA and OLoRA change the base weights at initialisation; ``save_trained`` converts such an
adapter back into a plain LoRA adapter for the original base (peft's weight conversion, rank 2r), so the
published adapter loads on the base the user named. LoRA dropout is drawn sparsely and fused with ``lora_A``
(``dropout``): same distribution, a fraction of the random draws and memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from stockpot_runtime.spec.peft import AdapterType, LoraInit, PeftSpec
from stockpot_runtime.train.dropout import install_sparse_dropout

ALL_LINEAR = "all-linear"
_INIT: dict[LoraInit, Any] = {
    LoraInit.DEFAULT: True,
    LoraInit.GAUSSIAN: "gaussian",
    LoraInit.PISSA: "pissa",
    LoraInit.OLORA: "olora",
}
INITIAL_ADAPTER_DIR = "initial-adapter"


def _targets(spec: PeftSpec) -> str | list[str]:
    return ALL_LINEAR if spec.target_modules == [ALL_LINEAR] else list(spec.target_modules)


def peft_config(spec: PeftSpec, task_type: str = "CAUSAL_LM") -> Any:
    """The peft config for ``spec`` (None for full fine-tuning)."""
    from peft import LoraConfig, VeraConfig

    if spec.type == AdapterType.FULL:
        return None
    if spec.type == AdapterType.VERA:
        return VeraConfig(r=spec.r, target_modules=_targets(spec), vera_dropout=spec.dropout, task_type=task_type)
    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=_targets(spec),
        use_dora=spec.dora,
        use_rslora=spec.rslora,
        init_lora_weights=_INIT[spec.init],
        task_type=task_type,
    )


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The stack of decoder blocks of a transformers model (``model.model.layers`` for Llama, Qwen, Mistral…)."""
    base = getattr(model, "base_model", model)
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers", "layers"):
        node: Any = base
        for part in path.split("."):
            node = getattr(node, part, None)
        if isinstance(node, torch.nn.ModuleList):
            return node
    raise ValueError(f"{type(model).__name__}: cannot find its decoder layers to freeze; set freezeLayers: 0")


def freeze_lowest(model: Any, count: int) -> int:
    """Freeze the lowest ``count`` decoder layers (those nearest the embeddings). Returns how many."""
    if count == 0:
        return 0
    layers = decoder_layers(model)
    if count >= len(layers):
        raise ValueError(f"peft.freezeLayers: {count} freezes every one of the model's {len(layers)} layers")
    for layer in layers[:count]:
        layer.requires_grad_(False)
    return count


def apply_adapter(model: Any, spec: PeftSpec, task_type: str = "CAUSAL_LM", workdir: Path | None = None) -> Any:
    """The trainable model. For PiSSA/OLoRA the initial adapter is saved under ``workdir`` for conversion."""
    config = peft_config(spec, task_type)
    if config is None:
        model.requires_grad_(True)
        freeze_lowest(model, spec.freeze_layers)
        return model
    from peft import get_peft_model

    peft_model = get_peft_model(model, config)
    install_sparse_dropout(peft_model)
    if spec.init in (LoraInit.PISSA, LoraInit.OLORA):
        if workdir is None:
            raise ValueError("pissa/olora initialisation needs a work directory for the weight conversion")
        initial = workdir / INITIAL_ADAPTER_DIR
        peft_model.peft_config["default"].init_lora_weights = True
        peft_model.save_pretrained(initial)
        peft_model.peft_config["default"].init_lora_weights = _INIT[spec.init]
    return peft_model


def is_adapter(model: Any) -> bool:
    return hasattr(model, "peft_config")


def save_trained(model: Any, spec: PeftSpec, out_dir: Path, workdir: Path | None = None) -> None:
    """Save the adapter (converted for the original base when PiSSA/OLoRA) or the full model."""
    if not is_adapter(model):
        model.save_pretrained(out_dir)
        return
    kwargs: dict[str, Any] = {}
    if spec.init in (LoraInit.PISSA, LoraInit.OLORA) and workdir is not None:
        kwargs["path_initial_model_for_weight_conversion"] = str(workdir / INITIAL_ADAPTER_DIR)
    model.save_pretrained(out_dir, **kwargs)


def trainable_parameters(model: Any) -> dict[str, torch.nn.Parameter]:
    """Name → parameter for everything the optimizer updates."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
