"""Topology from the operator's env, the torchrun command, and the DDP / FSDP2 / DeepSpeed presets."""

from __future__ import annotations

import inspect

import pytest
from accelerate.utils import FullyShardedDataParallelPlugin
from torch.distributed.run import get_args_parser

from stockpot_runtime.spec.distributed import DistributedPreset, World
from stockpot_runtime.spec.training import TrainingSpec
from stockpot_runtime.train import distributed as dist

pytestmark = pytest.mark.unit


def test_topology_from_env_overrides_the_spec() -> None:
    env = {"NNODES": "2", "NPROC_PER_NODE": "4", "NODE_RANK": "1", "MASTER_ADDR": "ft-0.ft", "MASTER_PORT": "29400"}
    topology = dist.Topology.from_env(env, World(nodes=1, procs_per_node=1))
    assert topology == dist.Topology(2, 4, 1, "ft-0.ft", 29400)
    assert topology.size == 8
    assert dist.Topology.from_env({}, World(nodes=3, procs_per_node=2)).size == 6


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NNODES": "two"}, "NNODES='two'"),
        ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK=2 must be below NNODES=2"),
        ({"NPROC_PER_NODE": "0"}, "NPROC_PER_NODE='0'"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000"),
    ],
)
def test_malformed_env_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(dist.DistributedConfigError, match=message):
        dist.Topology.from_env(env, World())


def test_torchrun_command_is_accepted_by_torchrun() -> None:
    command = dist.torchrun_command(dist.Topology(2, 4, 1, "ft-0.ft", 29400), ["train", "--spec", "/s.json"])
    assert command[1:3] == ["-m", "torch.distributed.run"]
    args = get_args_parser().parse_args(command[3:])
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("2", "4", 1)
    assert (args.master_addr, args.master_port, args.max_restarts) == ("ft-0.ft", 29400, 0)
    assert args.module
    assert (args.training_script, args.training_script_args) == ("stockpot_runtime.cli", ["train", "--spec", "/s.json"])


def test_is_launched_child() -> None:
    assert dist.is_launched_child({"RANK": "0", "WORLD_SIZE": "2"})
    assert not dist.is_launched_child({"NNODES": "2"})


def test_presets_resolve_and_sharding_needs_gpus() -> None:
    assert dist.resolve_preset(DistributedPreset.AUTO, 1, cuda=False) is None
    assert dist.resolve_preset(DistributedPreset.AUTO, 2, cuda=False) == DistributedPreset.DDP
    for preset in (DistributedPreset.FSDP, DistributedPreset.ZERO3_OFFLOAD):
        with pytest.raises(dist.DistributedConfigError, match=r"needs CUDA GPUs.*use ddp"):
            dist.resolve_preset(preset, 2, cuda=False)


@pytest.mark.parametrize(
    ("preset", "stage", "offload_optimizer", "offload_param"),
    [
        (DistributedPreset.ZERO2, 2, False, False),
        (DistributedPreset.ZERO2_OFFLOAD, 2, True, False),
        (DistributedPreset.ZERO3, 3, False, False),
        (DistributedPreset.ZERO3_OFFLOAD, 3, True, True),
    ],
)
def test_deepspeed_configs(preset: DistributedPreset, stage: int, offload_optimizer: bool, offload_param: bool) -> None:
    training = TrainingSpec(batch_size=2, gradient_accumulation_steps=8, max_grad_norm=0.5, precision="auto")
    config = dist.deepspeed_config(preset, training, world_size=16)
    zero = config["zero_optimization"]
    assert zero["stage"] == stage
    assert ("offload_optimizer" in zero, "offload_param" in zero) == (offload_optimizer, offload_param)
    assert config["train_batch_size"] == 2 * 8 * 16
    assert config["gradient_clipping"] == 0.5
    assert config["bf16"] == {"enabled": True}
    assert config["fp16"] == {"enabled": False}
    assert zero.get("stage3_gather_16bit_weights_on_model_save", False) == (stage == 3)


@pytest.mark.parametrize("preset", [DistributedPreset.FSDP, DistributedPreset.FSDP_OFFLOAD])
def test_fsdp_kwargs_are_parameters_of_accelerates_plugin(preset: DistributedPreset) -> None:
    kwargs = dist.fsdp_plugin_kwargs(preset, TrainingSpec(gradient_checkpointing=True))
    parameters = inspect.signature(FullyShardedDataParallelPlugin).parameters
    assert set(kwargs) <= set(parameters)
    assert kwargs["fsdp_version"] == 2
    assert kwargs["cpu_offload"] == (preset == DistributedPreset.FSDP_OFFLOAD)
    assert kwargs["activation_checkpointing"] is True
    assert dist.accelerator_kwargs(None, TrainingSpec(), 1) == {}
