"""A real two-process DDP step on CPU (gloo), launched with the command the runtime uses for itself."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

from stockpot_runtime.train import distributed as dist

pytestmark = pytest.mark.runtime

SEED = 1234

PROBE = textwrap.dedent(
    """
    import json
    import os
    import sys

    import torch
    import torch.distributed as td
    from torch.nn.parallel import DistributedDataParallel

    from stockpot_runtime.train.distributed import init_process_group_backend

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    td.init_process_group(backend=init_process_group_backend(has_gpu=False))
    torch.manual_seed(int(sys.argv[2]))
    model = torch.nn.Linear(4, 1)
    initial = {name: p.detach().tolist() for name, p in model.named_parameters()}
    ddp = DistributedDataParallel(model)
    x = torch.arange(8.0).reshape(2, 4) + 10.0 * rank
    y = torch.tensor([[1.0], [-1.0]]) * (rank + 1)
    torch.nn.functional.mse_loss(ddp(x), y).backward()
    grads = {name: p.grad.tolist() for name, p in model.named_parameters()}
    with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as out:
        json.dump({"rank": rank, "world": world, "backend": td.get_backend(), "initial": initial, "grads": grads}, out)
    # both ranks reach the teardown together: a rank that destroys its gloo group while the other still has
    # work in flight aborts ("terminate called without an active exception") in about one run in three
    td.barrier()
    td.destroy_process_group()
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def single_process_grads(rank: int) -> dict[str, torch.Tensor]:
    """The gradient one rank's batch gives on its own, from the same seeded initialisation."""
    torch.manual_seed(SEED)
    model = torch.nn.Linear(4, 1)
    x = torch.arange(8.0).reshape(2, 4) + 10.0 * rank
    y = torch.tensor([[1.0], [-1.0]]) * (rank + 1)
    torch.autograd.backward(torch.nn.functional.mse_loss(model(x), y))
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def test_two_cpu_processes_average_gradients(tmp_path: Path) -> None:
    script = tmp_path / "ddp_probe.py"
    script.write_text(PROBE, encoding="utf-8")
    topology = dist.Topology(nodes=1, procs_per_node=2, master_addr="127.0.0.1", master_port=free_port())
    command = dist.torchrun_command(topology, [])
    assert command[-2:] == ["-m", "stockpot_runtime.cli"]
    command = [*command[:-2], str(script), str(tmp_path), str(SEED)]  # the same launcher flags, our probe script
    assert "--nnodes=1" in command
    assert "--nproc-per-node=2" in command
    launched = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launched} | {"OMP_NUM_THREADS": "1"}

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"], r["backend"]) for r in results] == [(0, 2, "gloo"), (1, 2, "gloo")]
    assert results[0]["initial"] == results[1]["initial"]
    torch.manual_seed(SEED)
    here = {name: p.detach().tolist() for name, p in torch.nn.Linear(4, 1).named_parameters()}
    assert here == results[0]["initial"]  # so the single-process reference starts from the same weights

    alone = [single_process_grads(r) for r in range(2)]
    for name in ("weight", "bias"):
        rank0, rank1 = (torch.tensor(r["grads"][name]) for r in results)
        assert torch.equal(rank0, rank1)
        assert not torch.allclose(alone[0][name], alone[1][name])  # the ranks really saw different data
        torch.testing.assert_close(rank0, (alone[0][name] + alone[1][name]) / 2, rtol=1e-5, atol=1e-6)
