"""The resumable state of a run, as files in a directory (uploaded by ``CheckpointStore``).

- ``trainable.safetensors``: every parameter the optimizer updates (the adapter, or the whole model);
- ``optimizer.pt``, ``scheduler.pt``: their ``state_dict``s;
- ``rng.pt``: Python, NumPy and torch (CPU and CUDA) generator states, one entry per rank;
- ``state.json``: the step, tokens and samples seen, resumes so far, and the objective's own state.

Layouts (``Layout``): the files above hold whole weights (one process, DDP). A model sharded with FSDP2 has no
whole weights or optimizer state on any one rank. Its checkpoint replaces the first two files with ``sharded/``, a
``torch.distributed.checkpoint`` (DCP) directory: each rank writes the shards it holds of the trainable parameters
and their optimizer state (``__<rank>_0.distcp``), rank 0 the ``.metadata`` that maps them, through
``get_state_dict``/``set_state_dict`` (``SHARDED_OPTIONS``). Every rank writes into its own local directory, so
no shared filesystem is needed; the files meet in the checkpoint's prefix when each rank uploads its own, and a
restore downloads them all, so any rank can read any shard. Under DeepSpeed ZeRO the engine partitions the
optimizer state (and, for ZeRO-3, the weights) itself, and its own ``save_checkpoint``/``load_checkpoint`` write
and read ``deepspeed/state/``: one ``zero_pp_rank_<rank>_…_optim_states.pt`` partition per rank and the module
states (ZeRO-2: rank 0's ``mp_rank_00_model_states.pt``; ZeRO-3: one per rank), uploaded the same way.

Restoring all of it makes the continued run take the same steps, with the same batches and dropout masks, as
a run that was never interrupted (tests compare their losses). The data position is the step itself: batch
order is a pure function of (seed, epoch).
"""

from __future__ import annotations

import json
import random
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .adapters import trainable_parameters

WEIGHTS = "trainable.safetensors"
SHARDED = "sharded"
DEEPSPEED = "deepspeed"
DEEPSPEED_TAG = "state"
OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.pt"
RNG = "rng.pt"
STATE = "state.json"


def rng_state() -> dict[str, Any]:
    """This process's generator states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(
    directory: Path,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    loop_state: dict[str, Any],
    rng_states: list[dict[str, Any]],
) -> Path:
    """Write the run's state into ``directory`` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().cpu().contiguous() for name, p in trainable_parameters(model).items()}
    save_file(tensors, str(directory / WEIGHTS))
    torch.save(optimizer.state_dict(), directory / OPTIMIZER)
    _save_replicated(directory, scheduler, loop_state, rng_states)
    return directory


def _save_replicated(
    directory: Path, scheduler: Any, loop_state: dict[str, Any], rng_states: list[dict[str, Any]]
) -> None:
    """The files every rank holds the same of (the RNG states are all ranks', gathered): scheduler and loop state."""
    torch.save(scheduler.state_dict(), directory / SCHEDULER)
    torch.save(rng_states, directory / RNG)
    (directory / STATE).write_text(json.dumps(loop_state, indent=2, sort_keys=True), encoding="utf-8")


def load_state(directory: Path, *, model: Any, optimizer: Any, scheduler: Any) -> tuple[dict[str, Any], list[Any]]:
    """Load weights, optimizer and scheduler in place; return the loop state and the per-rank RNG states."""
    saved = load_file(str(directory / WEIGHTS))
    params = trainable_parameters(model)
    check_same_parameters(directory, expected=set(params), saved=set(saved))
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved[name].to(param.device, param.dtype))
    optimizer.load_state_dict(torch.load(directory / OPTIMIZER, map_location="cpu", weights_only=False))
    return _load_replicated(directory, scheduler)


def check_same_parameters(directory: Path, *, expected: set[str], saved: set[str]) -> None:
    """Refuse a checkpoint whose trainable parameters are not the model's (the spec changed between attempts)."""
    if saved != expected:
        missing, unexpected = sorted(expected - saved), sorted(saved - expected)
        raise ValueError(
            f"checkpoint {directory} does not match the model's trainable parameters "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}) — was the spec changed after the run started?"
        )


def _load_replicated(directory: Path, scheduler: Any) -> tuple[dict[str, Any], list[Any]]:
    scheduler.load_state_dict(torch.load(directory / SCHEDULER, weights_only=False))
    rng_states = torch.load(directory / RNG, weights_only=False)
    loop_state = json.loads((directory / STATE).read_text(encoding="utf-8"))
    return loop_state, rng_states


# -- sharded (FSDP2) ---------------------------------------------------------------------------------------------

MODEL_KEY, OPTIM_KEY = "model", "optim"
SHARDED_OPTIONS: dict[str, Any] = {
    # each rank's own shards (DTensor local pieces), never gathered: no rank needs room for the whole state
    "full_state_dict": False,
    "cpu_offload": False,
    # only what trains, as trainable.safetensors: a LoRA checkpoint holds the adapter, not the frozen base
    # (``without_frozen`` also drops the aliases of tied frozen weights, which this option keeps)
    "ignore_frozen_params": True,
    # set_state_dict receives only the trainable keys; DCP's load and check_same_parameters match them first
    "strict": False,
}
"""``StateDictOptions`` of the sharded checkpoint, for both ``get_state_dict`` and ``set_state_dict``."""


def _options(options: dict[str, Any]) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(**options)


def _torch_optimizer(optimizer: Any) -> Any:
    """accelerate's ``AcceleratedOptimizer`` wraps the torch optimizer whose state DCP maps by parameter."""
    return getattr(optimizer, "optimizer", optimizer)


def _sharded_state(model: Any, optimizer: Any) -> dict[str, Any]:
    """This rank's shards of the trainable weights and their optimizer state, as DCP saves and loads them."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, _torch_optimizer(optimizer), options=_options(SHARDED_OPTIONS))
    return {MODEL_KEY: without_frozen(model, model_state), OPTIM_KEY: optim_state}


def save_sharded_state(
    directory: Path,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    loop_state: dict[str, Any],
    rng_states: list[dict[str, Any]],
    main: bool,
) -> Path:
    """Every rank: write its shards of the trainable weights and optimizer state under ``directory/sharded``;
    the main process also writes the replicated files (scheduler, RNG states, loop state). A collective."""
    from torch.distributed.checkpoint.filesystem import FileSystemWriter
    from torch.distributed.checkpoint.state_dict_saver import save

    directory.mkdir(parents=True, exist_ok=True)
    save(_sharded_state(model, optimizer), storage_writer=FileSystemWriter(str(directory / SHARDED)))
    if main:
        _save_replicated(directory, scheduler, loop_state, rng_states)
    return directory


def load_sharded_state(
    directory: Path, *, model: Any, optimizer: Any, scheduler: Any
) -> tuple[dict[str, Any], list[Any]]:
    """Every rank: read its shards (resharded by DCP if the layout changed) from the complete checkpoint in
    ``directory``; return the loop state and the per-rank RNG states. A collective."""
    from torch.distributed.checkpoint.filesystem import FileSystemReader
    from torch.distributed.checkpoint.state_dict import set_state_dict
    from torch.distributed.checkpoint.state_dict_loader import load

    state = _sharded_state(model, optimizer)
    reader = FileSystemReader(str(directory / SHARDED))
    check_same_parameters(directory, expected=set(state[MODEL_KEY]), saved=saved_model_keys(reader.read_metadata()))
    load(state, storage_reader=reader)  # in place, into this rank's shards
    set_state_dict(
        model,
        _torch_optimizer(optimizer),
        model_state_dict=state[MODEL_KEY],
        optim_state_dict=state[OPTIM_KEY],
        options=_options(SHARDED_OPTIONS),
    )
    return _load_replicated(directory, scheduler)


def saved_model_keys(metadata: Any) -> set[str]:
    """The model's parameter names in a DCP checkpoint's metadata (its keys are flattened: ``model.<name>``)."""
    prefix = f"{MODEL_KEY}."
    return {key[len(prefix) :] for key in metadata.state_dict_metadata if key.startswith(prefix)}


class Layout(StrEnum):
    """Where a run's weights and optimizer state live, and so how its checkpoints are written."""

    WHOLE = "whole-weight (one process or ddp)"
    FSDP = "sharded (fsdp)"
    DEEPSPEED = "partitioned (deepspeed zero)"


def layout_of(directory: Path) -> Layout:
    """The layout the checkpoint in ``directory`` was written in."""
    if (directory / SHARDED).is_dir():
        return Layout.FSDP
    if (directory / DEEPSPEED).is_dir():
        return Layout.DEEPSPEED
    return Layout.WHOLE


# -- partitioned (DeepSpeed ZeRO) ---------------------------------------------------------------------------------


def save_deepspeed_state(
    directory: Path,
    *,
    engine: Any,
    scheduler: Any,
    loop_state: dict[str, Any],
    rng_states: list[dict[str, Any]],
    main: bool,
) -> Path:
    """Every rank: the engine writes its optimizer partitions (rank 0 also the trainable module weights) under
    ``directory/deepspeed``; the main process also writes the replicated files. A collective."""
    directory.mkdir(parents=True, exist_ok=True)
    # exclude_frozen_parameters: a LoRA checkpoint holds the adapter, not the frozen base (as WEIGHTS does);
    # save_latest=False: the completion marker, not DeepSpeed's ``latest`` file, says which checkpoint is whole
    engine.save_checkpoint(
        str(directory / DEEPSPEED), tag=DEEPSPEED_TAG, save_latest=False, exclude_frozen_parameters=True
    )
    if main:
        _save_replicated(directory, scheduler, loop_state, rng_states)
    return directory


def load_deepspeed_state(directory: Path, *, engine: Any, scheduler: Any) -> tuple[dict[str, Any], list[Any]]:
    """Every rank: the engine reads its partitions from the complete checkpoint in ``directory``; return the loop
    state and the per-rank RNG states. A collective."""
    # rank 0's module file (ZeRO-2: mp_rank_00_…; ZeRO-3: zero_pp_rank_0_mp_rank_00_…) names the optimizer's
    # parameters, group by group, in ``param_shapes``
    module_file = sorted((directory / DEEPSPEED / DEEPSPEED_TAG).glob("*mp_rank_00_model_states.pt"))[0]
    groups = torch.load(module_file, map_location="cpu", weights_only=False)["param_shapes"]
    saved = {name for group in groups for name in group}
    check_same_parameters(directory, expected=set(trainable_parameters(engine.module)), saved=saved)
    # not strict: the frozen base was left out of the checkpoint and is already in place; the scheduler is ours
    loaded, _ = engine.load_checkpoint(
        str(directory / DEEPSPEED),
        tag=DEEPSPEED_TAG,
        load_module_strict=False,
        load_optimizer_states=True,
        load_lr_scheduler_states=False,
    )
    if loaded is None:
        raise ValueError(f"checkpoint {directory}: DeepSpeed found no state under {DEEPSPEED}/{DEEPSPEED_TAG}")
    return _load_replicated(directory, scheduler)


def without_frozen(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without frozen parameters under any of their names.

    ``ignore_frozen_params`` removes each frozen parameter under its first name only: a tied output head
    (``lm_head.weight`` = the input embedding) would stay, and every checkpoint would carry the frozen embedding.
    """
    frozen = {name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    return {key: value for key, value in state.items() if key not in frozen}


def gathered_state_dict(model: Any, *, trainable_only: bool) -> dict[str, Any]:
    """The whole tensors of a sharded model, on rank 0 in CPU memory (empty on the others): every rank must call
    it, each shard is all-gathered in turn (``DTensor.full_tensor``), and only rank 0 keeps the result.

    ``trainable_only`` gathers just what trains (and the buffers): an adapter's weights, not the frozen base
    it is saved without.
    """
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import get_model_state_dict
    from torch.distributed.tensor import DTensor

    options = {**SHARDED_OPTIONS, "ignore_frozen_params": trainable_only}
    shards = get_model_state_dict(model, options=_options(options))  # local pieces: no communication yet
    if trainable_only:
        shards = without_frozen(model, shards)
    keep = dist.get_rank() == 0
    gathered: dict[str, Any] = {}
    for key, value in shards.items():  # the same order on every rank: the module's
        whole = value.full_tensor() if isinstance(value, DTensor) else value
        if keep:
            gathered[key] = whole.detach().cpu() if isinstance(whole, torch.Tensor) else whole
    return gathered
