"""The resumable state of a run, as files in a directory (uploaded by ``CheckpointStore``).

- ``trainable.safetensors``: every parameter the optimizer updates (the adapter, or the whole model);
- ``optimizer.pt``, ``scheduler.pt``: their ``state_dict``s;
- ``rng.pt``: Python, NumPy and torch (CPU and CUDA) generator states, one entry per rank;
- ``state.json``: the step, tokens and samples seen, resumes so far, and the objective's own state.

Restoring all of it makes the continued run take the same steps, with the same batches and dropout masks, as
a run that was never interrupted (tests compare their losses). The data position is the step itself: batch
order is a pure function of (seed, epoch).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .adapters import trainable_parameters

WEIGHTS = "trainable.safetensors"
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
    torch.save(scheduler.state_dict(), directory / SCHEDULER)
    torch.save(rng_states, directory / RNG)
    (directory / STATE).write_text(json.dumps(loop_state, indent=2, sort_keys=True), encoding="utf-8")
    return directory


def load_state(directory: Path, *, model: Any, optimizer: Any, scheduler: Any) -> tuple[dict[str, Any], list[Any]]:
    """Load weights, optimizer and scheduler in place; return the loop state and the per-rank RNG states."""
    saved = load_file(str(directory / WEIGHTS))
    params = trainable_parameters(model)
    if set(saved) != set(params):
        missing, unexpected = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
        raise ValueError(
            f"checkpoint {directory} does not match the model's trainable parameters "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}) — was the spec changed after the run started?"
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(saved[name].to(param.device, param.dtype))
    optimizer.load_state_dict(torch.load(directory / OPTIMIZER, map_location="cpu", weights_only=False))
    scheduler.load_state_dict(torch.load(directory / SCHEDULER, weights_only=False))
    rng_states = torch.load(directory / RNG, weights_only=False)
    loop_state = json.loads((directory / STATE).read_text(encoding="utf-8"))
    return loop_state, rng_states
