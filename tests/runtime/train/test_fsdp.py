"""FSDP2 between two CPU processes (gloo), through the command: the same training as DDP, sharded checkpoints,
resume after SIGTERM, and the gathered artifact.

A ``sitecustomize`` on PYTHONPATH (this test's own, in tmp_path) hooks every launched process: it records the
main rank's logged records to a file per attempt, and can send SIGTERM to rank 0 after a chosen step (the loop
agrees across ranks, and every rank writes its shards).
"""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from stockpot_runtime.storage.checkpoints import MARKER_NAME, CheckpointStore
from stockpot_runtime.storage.manifest import MANIFEST_NAME
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
    "distributed": {"preset": "fsdp"},
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def attempt(tmp_path: Path) -> Callable[..., tuple[int, dict[str, Any], str, dict[int, float]]]:
    """Run one attempt of ``spec``: exit code, termination message, stderr and the main rank's step losses."""
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
    counter = iter(range(100))

    def run(spec: dict[str, Any], **stop: int) -> tuple[int, dict[str, Any], str, dict[int, float]]:
        n = next(counter)
        records = tmp_path / f"records-{n}.jsonl"
        env = {
            "PYTHONPATH": str(hook_dir),
            "STOCKPOT_TEST_RECORDS": str(records),
            "MASTER_PORT": str(free_port()),
            "OMP_NUM_THREADS": "1",
            **{f"STOCKPOT_TEST_{name.upper()}": str(step) for name, step in stop.items()},
        }
        workdir = tmp_path / f"attempt-{n}"
        workdir.mkdir()
        code, message, stderr = run_cli(spec, workdir, env)
        lines = records.read_text().splitlines() if records.exists() else []
        losses = {r["step"]: r["loss"] for r in map(json.loads, lines)}
        return code, message, stderr, losses

    return run


def test_fsdp_trains_like_ddp_and_resumes_from_sharded_checkpoints(
    toy_model: Path, task_rows: Callable[..., Path], tmp_path: Path, attempt: Callable[..., Any]
) -> None:
    data = task_rows(n=200)

    def spec(name: str, preset: str = "fsdp") -> dict[str, Any]:
        return spec_json(toy_model, data, tmp_path / name, **{**SPEC, "distributed": {"preset": preset}})

    code, message, stderr, reference = attempt(spec("straight"))
    assert code == 0, stderr[-3000:]
    assert "distributed: fsdp, 2 processes, accelerate DistributedType.FSDP" in stderr
    assert sorted(reference) == list(range(1, 9))

    # Sharding changes where the state lives, not the arithmetic: DDP all-reduces the same gradient sums that
    # FSDP2 reduce-scatters, so only float rounding (~1e-7 relative in fp32) may differ.
    code, _, stderr, replicated = attempt(spec("ddp", preset="ddp"))
    assert code == 0, stderr[-3000:]
    assert "distributed: ddp, 2 processes, accelerate DistributedType.MULTI_CPU" in stderr
    for step, loss in replicated.items():
        assert loss == pytest.approx(reference[step], abs=1e-5), step

    # SIGTERM after step 4: both ranks stop there, write their shards, rank 0 marks the checkpoint complete.
    code, message, stderr, before = attempt(spec("interrupted"), sigterm_at=4)
    assert message == {"result": "Preempted", "step": 4, "checkpointed": True}, stderr[-3000:]
    assert sorted(before) == [1, 2, 3, 4]
    store = CheckpointStore(tmp_path / "interrupted" / "checkpoints")
    assert [ref.step for ref in store.complete()] == [3, 4]
    checkpoint = tmp_path / "interrupted" / "checkpoints" / "step-4"
    listed = {f["path"] for f in json.loads((checkpoint / MARKER_NAME).read_text())["files"]}
    assert listed == {
        "sharded/.metadata",
        "sharded/__0_0.distcp",  # rank 0's shards
        "sharded/__1_0.distcp",  # rank 1's, uploaded into the same directory
        "scheduler.pt",
        "rng.pt",
        "state.json",
    }
    assert_sharded_over_two_ranks(checkpoint / "sharded")

    code, message, stderr, after = attempt(spec("interrupted"))
    assert code == 0, stderr[-3000:]
    assert "resumed from checkpoint step 4" in stderr
    assert message["resumes"] == 1
    assert sorted(after) == [5, 6, 7, 8]
    # Same shards, optimizer moments, scheduler and RNG streams (LoRA dropout): deterministic, so the losses
    # match to float rounding; 1e-4 as for single-process and DDP resumes (test_resume).
    for step, loss in after.items():
        assert loss == pytest.approx(reference[step], abs=1e-4), step

    # The artifact holds whole (gathered) tensors — the same adapter as the uninterrupted run's — and loads
    # with plain peft on the base model.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    finals = [tmp_path / name / "final" for name in ("straight", "interrupted")]
    assert all((final.parent / MANIFEST_NAME).exists() for final in finals)
    weights = [load_file(str(final / "adapter_model.safetensors")) for final in finals]
    assert weights[0].keys() == weights[1].keys()
    assert any("lora_A" in key for key in weights[0])
    for key, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][key], tensor, rtol=0, atol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(toy_model)
    tuned = PeftModel.from_pretrained(base, finals[1]).eval()
    lora_a = next(t for k, t in weights[1].items() if "q_proj.lora_A" in k)
    assert lora_a.shape == (8, base.config.hidden_size)  # whole, not a rank's half
    with torch.no_grad():
        logits = tuned(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    assert logits.shape[:2] == (1, 4)
    assert torch.isfinite(logits).all()


def assert_sharded_over_two_ranks(sharded: Path) -> None:
    """The DCP metadata records each adapter matrix as two row-halves, one per rank: the state was sharded."""
    from torch.distributed.checkpoint import FileSystemReader

    metadata = FileSystemReader(str(sharded)).read_metadata().state_dict_metadata
    lora_a = [key for key in metadata if key.startswith("model.") and "lora_A" in key]
    assert lora_a
    assert not [key for key in metadata if key.startswith("model.") and "lora" not in key]  # no frozen base
    for key in lora_a:
        chunks = metadata[key].chunks
        assert sorted(tuple(chunk.offsets) for chunk in chunks) == [(0, 0), (4, 0)], key  # r=8 rows, 4 each
