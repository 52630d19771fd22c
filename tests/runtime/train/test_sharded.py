"""Sharded training between two CPU processes (gloo), through the command: FSDP2, DeepSpeed ZeRO-2 and ZeRO-3
train like DDP, write their checkpoints shard by shard from every rank, resume after SIGTERM with the losses of
an uninterrupted run, and publish the same whole adapter.

A ``sitecustomize`` on PYTHONPATH (this module's own, in a temporary directory) hooks every launched process: it
records the main rank's logged records to a file per attempt, and can send SIGTERM to rank 0 after a chosen step
(the loop agrees across ranks, and every rank writes its part of the checkpoint).
"""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from stockpot_runtime.storage.checkpoints import MARKER_NAME, CheckpointStore
from stockpot_runtime.storage.manifest import MANIFEST_NAME
from stockpot_runtime.toy.tasks import Task, rows
from tests.runtime.train.conftest import write_jsonl
from tests.runtime.train.test_cli_train import run_cli, spec_json

pytestmark = pytest.mark.runtime

HOOK = textwrap.dedent(
    """
    import json
    import os
    import signal

    if os.environ.get("STOCKPOT_TEST_RECORDS") and os.environ.get("RANK") is not None:
        from stockpot_runtime.train import loop

        original = loop.TrainingLoop._log

        def _log(self, record):
            original(self, record)
            step = record.get("step")
            if self.is_main and "loss" in record:
                with open(os.environ["STOCKPOT_TEST_RECORDS"], "a") as out:
                    out.write(json.dumps(record) + "\\n")
            if step == int(os.environ.get("STOCKPOT_TEST_SIGTERM_AT", "0")) and self.is_main:
                os.kill(os.getpid(), signal.SIGTERM)

        loop.TrainingLoop._log = _log
    """
)

# Dropout, accumulation, warmup + cosine (as test_resume): every piece of state a resume restores matters.
SPEC: dict[str, Any] = {
    "world": {"nodes": 1, "procsPerNode": 2},
    "training": {
        "maxSteps": 8,
        "lr": 5e-3,
        "batchSize": 4,
        "gradientAccumulationSteps": 2,
        "scheduler": "cosine",
        "warmupRatio": 0.2,
        "loggingSteps": 1,
    },
    "peft": {"type": "lora", "r": 8, "dropout": 0.1},
    "checkpoint": {"everySteps": 3, "keep": 2},
}
REPLICATED = {"scheduler.pt", "rng.pt", "state.json"}


@dataclass(frozen=True)
class Attempt:
    code: int
    message: dict[str, Any]
    stderr: str
    losses: dict[int, float]  # the main rank's training loss per step


class Runs:
    """Attempts of the command on the toy model and one data file, each in its own process tree."""

    def __init__(self, root: Path, model: Path, data: Path) -> None:
        self.root, self.model, self.data = root, model, data
        self.hook = root / "hook"
        self.hook.mkdir()
        (self.hook / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
        self.count = 0

    def output(self, name: str) -> Path:
        return self.root / name

    def attempt(self, name: str, preset: str, **stop: int) -> Attempt:
        """One attempt of the run ``name`` (its output prefix: attempts of one name share checkpoints)."""
        self.count += 1
        records = self.root / f"records-{self.count}.jsonl"
        env = {
            "PYTHONPATH": str(self.hook),
            "STOCKPOT_TEST_RECORDS": str(records),
            "MASTER_PORT": str(free_port()),
            "OMP_NUM_THREADS": "1",
            **{f"STOCKPOT_TEST_{key.upper()}": str(step) for key, step in stop.items()},
        }
        workdir = self.root / f"attempt-{self.count}"
        workdir.mkdir()
        spec = spec_json(self.model, self.data, self.output(name), **{**SPEC, "distributed": {"preset": preset}})
        code, message, stderr = run_cli(spec, workdir, env)
        lines = records.read_text().splitlines() if records.exists() else []
        return Attempt(code, message, stderr, {r["step"]: r["loss"] for r in map(json.loads, lines)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def runs(toy_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("sharded")
    data = write_jsonl(root / "data" / "add.jsonl", rows(Task.ADD, 200, seed=0, fmt="chatml"))
    return Runs(root, toy_model, data)


@pytest.fixture(scope="module")
def replicated(runs: Runs) -> Attempt:
    """The reference: the same run under DDP, uninterrupted."""
    done = runs.attempt("ddp", "ddp")
    assert done.code == 0, done.stderr[-3000:]
    assert "distributed: ddp, 2 processes, accelerate DistributedType.MULTI_CPU" in done.stderr
    assert sorted(done.losses) == list(range(1, 9))
    return done


def fsdp_shards(checkpoint: Path) -> set[str]:
    """FSDP2 (DCP): each rank's shards in its own file; the metadata records each adapter matrix as two
    row-halves, one per rank, and no frozen base weight."""
    from torch.distributed.checkpoint.filesystem import FileSystemReader

    metadata = FileSystemReader(str(checkpoint / "sharded")).read_metadata().state_dict_metadata
    lora_a = [key for key in metadata if key.startswith("model.") and "lora_A" in key]
    assert lora_a
    assert not [key for key in metadata if key.startswith("model.") and "lora" not in key]
    for key in lora_a:
        assert sorted(tuple(chunk.offsets) for chunk in metadata[key].chunks) == [(0, 0), (4, 0)], key  # r=8 rows
    return {"sharded/.metadata", "sharded/__0_0.distcp", "sharded/__1_0.distcp"}


def zero_partitions(stage: int) -> Callable[[Path], set[str]]:
    """DeepSpeed ZeRO: each rank's file holds half of the trainable parameters' fp32 master copy (and their Adam
    moments), flat; the trainable parameters the checkpoint names are the adapter's."""

    def check(checkpoint: Path) -> set[str]:
        state = checkpoint / "deepspeed" / "state"
        names = {f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt" for rank in (0, 1)}
        names |= {f"zero_pp_rank_{rank}_mp_rank_00_model_states.pt" for rank in (0, 1)} if stage == 3 else set()
        names |= {"mp_rank_00_model_states.pt"} if stage == 2 else set()
        module = torch.load(state / sorted(n for n in names if "model_states" in n)[0], weights_only=False)
        trainable = {name: shape for group in module["param_shapes"] for name, shape in group.items()}
        assert trainable
        assert all("lora_" in name for name in trainable)
        total = sum(shape.numel() for shape in trainable.values())
        flat_key = "single_partition_of_fp32_groups" if stage == 2 else "fp32_flat_groups"
        for rank in (0, 1):
            optim = torch.load(state / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt", weights_only=False)
            partition = sum(t.numel() for t in optim["optimizer_state_dict"][flat_key])
            assert total / 2 <= partition < total / 2 + 64, (rank, partition, total)  # half, padded for alignment
        # DeepSpeed also copies its offline consolidation scripts next to the states
        return {f"deepspeed/state/{name}" for name in names} | {
            "deepspeed/zero_to_fp32.py",
            "deepspeed/zero_to_torch.py",
        }

    return check


LAYOUTS: dict[str, tuple[str, Callable[[Path], set[str]]]] = {
    # preset: (accelerate's distributed type, the check of a checkpoint's shards returning their files)
    "fsdp": ("FSDP", fsdp_shards),
    "zero2": ("DEEPSPEED", zero_partitions(2)),
    "zero3": ("DEEPSPEED", zero_partitions(3)),
}


@pytest.mark.parametrize("preset", sorted(LAYOUTS))
def test_sharded_training_matches_ddp_and_resumes_from_its_shards(preset: str, runs: Runs, replicated: Attempt) -> None:
    engine, shards_of = LAYOUTS[preset]
    reference = replicated.losses

    # SIGTERM after step 4: both ranks stop there, write their parts, rank 0 marks the checkpoint complete.
    before = runs.attempt(preset, preset, sigterm_at=4)
    assert before.message == {"result": "Preempted", "step": 4, "checkpointed": True}, before.stderr[-3000:]
    assert f"distributed: {preset}, 2 processes, accelerate DistributedType.{engine}" in before.stderr
    # Sharding changes where the state lives, not the arithmetic: the same gradient sums, reduce-scattered
    # instead of all-reduced, so only float rounding (~1e-7 relative in fp32) may differ from DDP.
    assert sorted(before.losses) == [1, 2, 3, 4]
    for step, loss in before.losses.items():
        assert loss == pytest.approx(reference[step], abs=1e-5), step

    checkpoints = runs.output(preset) / "checkpoints"
    assert [ref.step for ref in CheckpointStore(checkpoints).complete()] == [3, 4]
    listed = {f["path"] for f in json.loads((checkpoints / "step-4" / MARKER_NAME).read_text())["files"]}
    assert listed == shards_of(checkpoints / "step-4") | REPLICATED  # every rank's files, uploaded before the marker

    after = runs.attempt(preset, preset)
    assert after.code == 0, after.stderr[-3000:]
    assert "resumed from checkpoint step 4" in after.stderr
    assert after.message["resumes"] == 1
    assert sorted(after.losses) == [5, 6, 7, 8]
    # Same shards, optimizer moments, scheduler and RNG streams (LoRA dropout): 1e-4, as single-process and
    # DDP resumes (test_resume).
    for step, loss in after.losses.items():
        assert loss == pytest.approx(reference[step], abs=1e-4), step

    # The artifact holds whole (gathered) tensors — DDP's adapter — and loads with plain peft on the base model.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    finals = [runs.output(name) / "final" for name in ("ddp", preset)]
    assert all((final.parent / MANIFEST_NAME).exists() for final in finals)
    weights = [load_file(str(final / "adapter_model.safetensors")) for final in finals]
    assert weights[0].keys() == weights[1].keys()
    assert any("lora_A" in key for key in weights[0])
    for key, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][key], tensor, rtol=0, atol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(runs.model)
    tuned = PeftModel.from_pretrained(base, finals[1]).eval()
    lora_a = next(t for k, t in weights[1].items() if "q_proj.lora_A" in k)
    assert lora_a.shape == (8, base.config.hidden_size)  # whole, not a rank's half
    with torch.no_grad():
        logits = tuned(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    assert torch.isfinite(logits).all()


def test_a_checkpoint_refuses_another_layout(runs: Runs, replicated: Attempt) -> None:
    """A run whose preset changed between attempts stops with both layouts named, before it trains a step."""
    before = runs.attempt("switched", "zero2", sigterm_at=3)
    assert before.message.get("checkpointed") is True, before.stderr[-3000:]
    after = runs.attempt("switched", "fsdp")
    assert after.code != 0
    assert "is partitioned (deepspeed zero) but this run is sharded (fsdp)" in after.stderr
    assert "was distributed.preset changed after the run started?" in after.stderr
    assert not after.losses
