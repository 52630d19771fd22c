"""Topology from the operator's env, the torchrun command, and the DDP / FSDP2 / DeepSpeed presets."""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin
from torch.distributed.run import get_args_parser

from stockpot_runtime.spec.distributed import DEEPSPEED_PRESETS, DistributedPreset, World
from stockpot_runtime.spec.training import TrainingSpec
from stockpot_runtime.train import checkpointing
from stockpot_runtime.train import distributed as dist

pytestmark = pytest.mark.unit

SHARDING_PRESETS = sorted(set(DistributedPreset) - {DistributedPreset.AUTO, DistributedPreset.DDP})
CPU_SHARDING_PRESETS = [DistributedPreset.FSDP, DistributedPreset.ZERO2, DistributedPreset.ZERO3]


@pytest.fixture
def restored_environ() -> Iterator[None]:
    """accelerate's plugins write to os.environ when built; keep that out of the other tests."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize(
    ("env", "world", "expected"),
    [
        ({}, World(), dist.Topology(1, 1, 0, "127.0.0.1", 29500)),
        ({}, World(nodes=3, procs_per_node=2), dist.Topology(3, 2, 0, "127.0.0.1", 29500)),
        (
            {"NNODES": "2", "NPROC_PER_NODE": "4", "NODE_RANK": "1", "MASTER_ADDR": "ft-0.ft", "MASTER_PORT": "29400"},
            World(),
            dist.Topology(2, 4, 1, "ft-0.ft", 29400),
        ),
        ({"NPROC_PER_NODE": "8"}, World(nodes=2, procs_per_node=1), dist.Topology(2, 8, 0, "127.0.0.1", 29500)),
        ({"NNODES": "", "MASTER_ADDR": "", "NODE_RANK": " 0 "}, World(nodes=2), dist.Topology(2, 1)),
    ],
)
def test_topology_from_env_overrides_the_spec(env: dict[str, str], world: World, expected: dist.Topology) -> None:
    assert dist.Topology.from_env(env, world) == expected


def test_topology_size() -> None:
    assert dist.Topology(2, 4, 1, "ft-0.ft", 29400).size == 8


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NNODES": "two"}, "NNODES='two'"),
        ({"NNODES": "0"}, "NNODES='0' must be an integer >= 1"),
        ({"NNODES": "²"}, "NNODES='²'"),
        ({"NNODES": "2", "NODE_RANK": "2"}, "NODE_RANK=2 must be below NNODES=2"),
        ({"NODE_RANK": "-1"}, "NODE_RANK='-1'"),
        ({"NPROC_PER_NODE": "0"}, "NPROC_PER_NODE='0'"),
        ({"NPROC_PER_NODE": "1.5"}, "NPROC_PER_NODE='1.5'"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000"),
        ({"MASTER_PORT": "http"}, "MASTER_PORT='http'"),
    ],
)
def test_malformed_env_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(dist.DistributedConfigError, match=message):
        dist.Topology.from_env(env, World())
    assert issubclass(dist.DistributedConfigError, ValueError)


@pytest.mark.parametrize(
    ("topology", "expected"),
    [
        (
            dist.Topology(1, 2, 0, "127.0.0.1", 29500),
            ["--nnodes=1", "--nproc-per-node=2", "--node-rank=0", "--master-addr=127.0.0.1", "--master-port=29500"],
        ),
        (
            dist.Topology(2, 4, 1, "ft-0.ft", 29400),
            ["--nnodes=2", "--nproc-per-node=4", "--node-rank=1", "--master-addr=ft-0.ft", "--master-port=29400"],
        ),
    ],
)
def test_torchrun_command_renders_the_layout(topology: dist.Topology, expected: list[str]) -> None:
    command = dist.torchrun_command(topology, ["train", "--spec", "/s.json"], python="/venv/bin/python")
    assert command == [
        "/venv/bin/python",
        "-m",
        "torch.distributed.run",
        *expected,
        "--max-restarts=0",
        "-m",
        "stockpot_runtime.cli",
        "train",
        "--spec",
        "/s.json",
    ]


@pytest.mark.parametrize("topology", [dist.Topology(1, 2), dist.Topology(2, 4, 1, "ft-0.ft", 29400)])
def test_torchrun_command_is_accepted_by_torchrun(topology: dist.Topology) -> None:
    command = dist.torchrun_command(topology, ["train", "--spec", "/s.json"])
    args = get_args_parser().parse_args(command[3:])
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == (
        str(topology.nodes),
        str(topology.procs_per_node),
        topology.node_rank,
    )
    assert (args.master_addr, args.master_port, args.max_restarts) == (topology.master_addr, topology.master_port, 0)
    assert args.rdzv_backend == "static"  # a fixed node rank per pod, rank 0 at MASTER_ADDR
    assert args.module
    assert (args.training_script, args.training_script_args) == ("stockpot_runtime.cli", ["train", "--spec", "/s.json"])


def test_is_launched_child() -> None:
    assert dist.is_launched_child({"RANK": "0", "WORLD_SIZE": "2"})
    assert dist.is_launched_child({"TORCHELASTIC_RUN_ID": "none"})
    assert not dist.is_launched_child({"NNODES": "2", "NODE_RANK": "0", "MASTER_ADDR": "ft-0.ft"})
    assert not dist.is_launched_child({"RANK": "0"})


def test_backend() -> None:
    assert dist.init_process_group_backend(has_gpu=True) == "nccl"
    assert dist.init_process_group_backend(has_gpu=False) == "gloo"


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_and_ddp_resolve_by_world_size(cuda: bool) -> None:
    for preset in (DistributedPreset.AUTO, DistributedPreset.DDP):
        assert dist.resolve_preset(preset, 1, cuda) is None
        assert dist.resolve_preset(preset, 2, cuda) == DistributedPreset.DDP


@pytest.mark.parametrize("preset", sorted(dist.OFFLOAD_PRESETS))
def test_offload_presets_need_gpus(preset: DistributedPreset) -> None:
    with pytest.raises(dist.DistributedConfigError) as refused:
        dist.resolve_preset(preset, 2, cuda=False)
    message = str(refused.value)
    assert message.startswith(f"distributed.preset: {preset} ")  # the field, then the fix
    assert "needs CUDA GPUs; this node has none" in message
    assert message.endswith(f"use {preset.removesuffix('-offload')} (or ddp) for CPU runs")


@pytest.mark.parametrize("preset", CPU_SHARDING_PRESETS)
def test_sharding_presets_run_between_cpu_processes(preset: DistributedPreset) -> None:
    assert dist.resolve_preset(preset, 2, cuda=False) == preset
    assert dist.resolve_preset(preset, 1, cuda=False) is None  # one process: nothing to shard with


@pytest.mark.parametrize("preset", SHARDING_PRESETS)
def test_sharding_presets_on_gpus(preset: DistributedPreset) -> None:
    assert dist.resolve_preset(preset, 8, cuda=True) == preset
    assert dist.resolve_preset(preset, 1, cuda=True) == preset  # one GPU: FSDP/ZeRO still save its memory


@pytest.mark.parametrize(
    ("preset", "cuda"),
    [
        *((preset, True) for preset in sorted(DEEPSPEED_PRESETS)),
        (DistributedPreset.ZERO2, False),
        (DistributedPreset.ZERO3, False),
    ],
)
def test_zero_presets_without_deepspeed_name_the_extra(
    preset: DistributedPreset, cuda: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "deepspeed" else find_spec(name))
    with pytest.raises(dist.DistributedConfigError, match=r"needs DeepSpeed.*stockpot\[deepspeed\]"):
        dist.resolve_preset(preset, 8, cuda=cuda)
    assert dist.resolve_preset(DistributedPreset.FSDP, 8, cuda=cuda) == DistributedPreset.FSDP


def test_shard_on_cpu_only_switches_cpu_process_groups() -> None:
    from accelerate.utils import DistributedType

    for engine in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        dist.shard_on_cpu(SimpleNamespace(distributed_type=engine), {})  # already sharding: nothing to do
    with pytest.raises(dist.DistributedConfigError, match=r"distributed\.preset: sharding on CPU needs torchrun"):
        dist.shard_on_cpu(SimpleNamespace(distributed_type=DistributedType.NO), {"fsdp_plugin": None})


def test_deepspeed_is_told_to_use_the_cpu_before_it_is_imported() -> None:
    assert dist.cpu_engine_env(DistributedPreset.ZERO2, cuda=False) == {"DS_ACCELERATOR": "cpu"}
    assert dist.cpu_engine_env(DistributedPreset.ZERO3, cuda=True) == {}
    assert dist.cpu_engine_env(DistributedPreset.FSDP, cuda=False) == {}
    assert dist.cpu_engine_env(None, cuda=False) == {}


def test_zero_stage_of_an_accelerator() -> None:
    from accelerate.utils import DistributedType

    def accelerator(kind: DistributedType, stage: int | None = None) -> SimpleNamespace:
        state = SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=stage))
        return SimpleNamespace(distributed_type=kind, state=state)

    assert dist.zero_stage(accelerator(DistributedType.DEEPSPEED, 3)) == 3
    assert dist.zero_stage(accelerator(DistributedType.DEEPSPEED, 2)) == 2
    assert dist.zero_stage(accelerator(DistributedType.FSDP)) == 0
    assert dist.zero_stage(accelerator(DistributedType.MULTI_CPU)) == 0


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
    training = TrainingSpec(batch_size=2, gradient_accumulation_steps=8, max_grad_norm=0.5, precision="bf16")
    config = dist.deepspeed_config(preset, training, world_size=16)
    zero = config["zero_optimization"]
    assert zero["stage"] == stage
    assert zero["overlap_comm"] is zero["contiguous_gradients"] is True
    cpu = {"device": "cpu", "pin_memory": True}
    assert (zero.get("offload_optimizer"), zero.get("offload_param")) == (
        cpu if offload_optimizer else None,
        cpu if offload_param else None,
    )
    assert config["train_micro_batch_size_per_gpu"] == 2
    assert config["gradient_accumulation_steps"] == 8
    assert config["train_batch_size"] == 2 * 8 * 16
    assert config["gradient_clipping"] == 0.5
    assert (config["bf16"], config["fp16"]) == ({"enabled": True}, {"enabled": False})
    assert zero.get("stage3_gather_16bit_weights_on_model_save", False) == (stage == 3)
    assert ("allgather_bucket_size" in zero) == (stage == 2)
    buckets = [v for k, v in zero.items() if k.endswith(("_size", "_threshold"))]
    assert buckets
    assert all(isinstance(v, int) and v > 0 for v in buckets)  # concrete numbers, no "auto"


@pytest.mark.parametrize(
    ("precision", "bf16", "fp16"),
    [("bf16", True, False), ("fp16", False, True), ("fp32", False, False), ("auto", None, None)],
)
def test_deepspeed_precision(precision: str, bf16: bool | None, fp16: bool | None) -> None:
    config = dist.deepspeed_config(DistributedPreset.ZERO2, TrainingSpec(precision=precision), world_size=2)
    assert config.get("bf16", {}).get("enabled") is bf16
    assert config.get("fp16", {}).get("enabled") is fp16


def test_non_deepspeed_presets_have_no_deepspeed_config() -> None:
    with pytest.raises(ValueError, match="not a DeepSpeed preset"):
        dist.deepspeed_config(DistributedPreset.FSDP, TrainingSpec(), 2)
    with pytest.raises(ValueError, match="not an FSDP preset"):
        dist.fsdp_plugin_kwargs(DistributedPreset.ZERO3, TrainingSpec())


@pytest.mark.parametrize("preset", [DistributedPreset.FSDP, DistributedPreset.FSDP_OFFLOAD])
def test_fsdp_kwargs_are_parameters_of_accelerates_plugin(preset: DistributedPreset) -> None:
    kwargs = dist.fsdp_plugin_kwargs(preset, TrainingSpec(gradient_checkpointing=True))
    parameters = inspect.signature(FullyShardedDataParallelPlugin).parameters
    assert set(kwargs) <= set(parameters)
    assert kwargs["fsdp_version"] == 2
    assert kwargs["reshard_after_forward"] is True
    assert kwargs["cpu_offload"] == (preset == DistributedPreset.FSDP_OFFLOAD)
    assert kwargs["state_dict_type"] == "SHARDED_STATE_DICT"
    assert kwargs["activation_checkpointing"] is True
    assert dist.fsdp_plugin_kwargs(preset, TrainingSpec())["activation_checkpointing"] is False


@pytest.mark.usefixtures("restored_environ")
@pytest.mark.parametrize("preset", [DistributedPreset.FSDP, DistributedPreset.FSDP_OFFLOAD])
def test_fsdp_plugin_builds_on_cpu(preset: DistributedPreset) -> None:
    plugin = dist.accelerator_kwargs(preset, TrainingSpec(gradient_checkpointing=True), 4)["fsdp_plugin"]
    assert isinstance(plugin, FullyShardedDataParallelPlugin)
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True
    assert type(plugin.cpu_offload).__name__ == (
        "CPUOffloadPolicy" if preset == DistributedPreset.FSDP_OFFLOAD else "OffloadPolicy"
    )
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    assert plugin.activation_checkpointing is True
    assert plugin.mixed_precision_policy is None  # accelerate sets it from Accelerator(mixed_precision=...)


@pytest.mark.usefixtures("restored_environ")
@pytest.mark.parametrize("preset", sorted(DEEPSPEED_PRESETS))
def test_deepspeed_plugin_reads_the_config(preset: DistributedPreset) -> None:
    training = TrainingSpec(batch_size=2, gradient_accumulation_steps=4, max_grad_norm=0.5)
    plugin = dist.accelerator_kwargs(preset, training, 8)["deepspeed_plugin"]
    assert isinstance(plugin, DeepSpeedPlugin)
    stage3 = preset in (DistributedPreset.ZERO3, DistributedPreset.ZERO3_OFFLOAD)
    assert plugin.zero_stage == (3 if stage3 else 2)
    assert plugin.offload_optimizer_device == ("cpu" if preset in dist.OFFLOAD_PRESETS else "none")
    assert plugin.offload_param_device == ("cpu" if preset == DistributedPreset.ZERO3_OFFLOAD else "none")
    assert plugin.zero3_save_16bit_model is stage3
    assert (plugin.gradient_accumulation_steps, plugin.gradient_clipping) == (4, 0.5)
    assert plugin.deepspeed_config["train_batch_size"] == 2 * 4 * 8


def test_ddp_and_single_process_need_no_plugin() -> None:
    assert dist.accelerator_kwargs(None, TrainingSpec(), 1) == {}
    assert dist.accelerator_kwargs(DistributedPreset.DDP, TrainingSpec(), 2) == {}


def test_importing_the_module_stays_cheap() -> None:
    source = inspect.getsource(dist).split('"""', 2)[2]
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in top_level if "torch" in line or "accelerate" in line or "deepspeed" in line]


def test_sharded_checkpoints_hold_each_ranks_trainable_shards() -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    sharded = StateDictOptions(**checkpointing.SHARDED_OPTIONS)
    assert (sharded.full_state_dict, sharded.cpu_offload) == (False, False)  # never gathered onto one rank
    assert sharded.ignore_frozen_params is True  # a LoRA checkpoint without the frozen base
    assert sharded.strict is False  # set_state_dict gets only the trainable keys, checked against the metadata


def test_frozen_tied_weights_stay_out_of_a_sharded_checkpoint() -> None:
    import torch
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    model = torch.nn.Sequential(torch.nn.Embedding(8, 4), torch.nn.Linear(4, 8, bias=False), torch.nn.Linear(8, 2))
    model[1].weight = model[0].weight  # a tied head, as tie_word_embeddings
    model[0].requires_grad_(False)
    state = get_model_state_dict(model, options=StateDictOptions(**checkpointing.SHARDED_OPTIONS))
    assert "1.weight" in state  # the option alone keeps the alias of the frozen embedding
    assert set(checkpointing.without_frozen(model, state)) == {"2.weight", "2.bias"}


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")
def test_a_sharded_checkpoint_round_trips_in_one_process(tmp_path: Path) -> None:
    """The DCP path without a process group: trainable weights and optimizer moments only, restored in place."""
    import torch

    def build() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
        model[0].requires_grad_(False)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
        return model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    model, optimizer, scheduler = build()
    for _ in range(2):
        model(torch.ones(3, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
    directory = checkpointing.save_sharded_state(
        tmp_path / "state",
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        loop_state={"step": 2},
        rng_states=[{"rank": 0}],
        main=True,
    )
    assert checkpointing.layout_of(directory) is checkpointing.Layout.FSDP
    assert not (directory / checkpointing.WEIGHTS).exists()

    fresh, fresh_optimizer, fresh_scheduler = build()
    loop_state, rngs = checkpointing.load_sharded_state(
        directory, model=fresh, optimizer=fresh_optimizer, scheduler=fresh_scheduler
    )
    assert (loop_state, rngs) == ({"step": 2}, [{"rank": 0}])
    for (name, saved), restored in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(saved, restored), name
    moments = [optimizer.state[p]["exp_avg"] for p in model[1].parameters()]
    restored_moments = [fresh_optimizer.state[p]["exp_avg"] for p in fresh[1].parameters()]
    assert all(torch.equal(a, b) for a, b in zip(moments, restored_moments, strict=True))
    assert fresh_scheduler.get_last_lr() == scheduler.get_last_lr() == [0.025]

    changed = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))  # the first layer trains too
    changed_optimizer = torch.optim.AdamW(changed.parameters())
    with pytest.raises(ValueError, match=r"missing \['0.bias', '0.weight'\].*spec changed"):
        checkpointing.load_sharded_state(
            directory,
            model=changed,
            optimizer=changed_optimizer,
            scheduler=torch.optim.lr_scheduler.StepLR(changed_optimizer, step_size=1),
        )
