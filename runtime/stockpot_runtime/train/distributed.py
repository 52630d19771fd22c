"""Spreading a run over processes and nodes: the topology, the torchrun self-launch, DDP/FSDP2/DeepSpeed presets.

The operator gives every pod MASTER_ADDR, MASTER_PORT, NNODES, NODE_RANK and NPROC_PER_NODE. When the run has
more than one process, ``stockpot-runtime train`` re-executes itself under ``torch.distributed.run`` (one
process per GPU); each child then sees RANK, LOCAL_RANK and WORLD_SIZE and trains through accelerate.

Presets: ``ddp`` replicates the model; ``fsdp``/``fsdp-offload`` shard it with FSDP2; ``zero2``/``zero3``
(and ``-offload`` variants, optimizer — and for ZeRO-3 parameters — in CPU memory) use DeepSpeed. ``fsdp``,
``zero2`` and ``zero3`` also run between CPU processes (gloo): accelerate only engages its FSDP2 and DeepSpeed
paths for accelerator devices, so ``shard_on_cpu`` switches its state to the plugin's engine after it set up the
CPU process group, and the model is sharded by the same code GPUs run. The ``-offload`` variants need CUDA
GPUs (offloading to CPU memory from a CPU is meaningless); asking for them on a CPU node is an error that says
so. Nothing here imports torch at module level, and every function takes the environment it reads as an
argument.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stockpot_runtime.spec.distributed import DEEPSPEED_PRESETS, DistributedPreset, World
from stockpot_runtime.spec.training import Precision, TrainingSpec

DEFAULT_MASTER_PORT = 29500
FSDP_PRESETS = frozenset({DistributedPreset.FSDP, DistributedPreset.FSDP_OFFLOAD})
OFFLOAD_PRESETS = frozenset(
    {DistributedPreset.FSDP_OFFLOAD, DistributedPreset.ZERO2_OFFLOAD, DistributedPreset.ZERO3_OFFLOAD}
)


class DistributedConfigError(ValueError):
    """The distributed settings cannot work on this node (named field, and the fix)."""


@dataclass(frozen=True)
class Topology:
    """Nodes × processes per node, this node's rank, and where rank 0 listens."""

    nodes: int
    procs_per_node: int
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_MASTER_PORT

    @property
    def size(self) -> int:
        return self.nodes * self.procs_per_node

    @classmethod
    def from_env(cls, env: Mapping[str, str], world: World) -> Topology:
        """The pod's env (set by the operator) over the spec's ``world``."""
        nodes = _env_int(env, "NNODES", world.nodes, minimum=1)
        procs = _env_int(env, "NPROC_PER_NODE", world.procs_per_node, minimum=1)
        rank = _env_int(env, "NODE_RANK", 0, minimum=0)
        if rank >= nodes:
            raise DistributedConfigError(f"NODE_RANK={rank} must be below NNODES={nodes}")
        port = _env_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT, minimum=1)
        if port > 65535:
            raise DistributedConfigError(f"MASTER_PORT={port} is not a TCP port")
        return cls(nodes, procs, rank, env.get("MASTER_ADDR") or "127.0.0.1", port)


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < minimum:
        raise DistributedConfigError(f"{name}={raw!r} must be an integer >= {minimum}")
    return int(text)


def is_launched_child(env: Mapping[str, str]) -> bool:
    """Whether this process was started by torchrun (it sets RANK and WORLD_SIZE, and TORCHELASTIC_RUN_ID)."""
    return ("RANK" in env and "WORLD_SIZE" in env) or "TORCHELASTIC_RUN_ID" in env


def init_process_group_backend(has_gpu: bool) -> str:
    """The ``torch.distributed`` backend: NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if has_gpu else "gloo"


def torchrun_command(topology: Topology, argv: Sequence[str], python: str = sys.executable) -> list[str]:
    """``python -m torch.distributed.run … -m stockpot_runtime.cli <argv>`` for this node.

    No torchrun restarts: a failed process fails the pod, and the Job's retry resumes from the checkpoint.
    """
    return [
        python,
        "-m",
        "torch.distributed.run",
        f"--nnodes={topology.nodes}",
        f"--nproc-per-node={topology.procs_per_node}",
        f"--node-rank={topology.node_rank}",
        f"--master-addr={topology.master_addr}",
        f"--master-port={topology.master_port}",
        "--max-restarts=0",
        "-m",
        "stockpot_runtime.cli",
        *argv,
    ]


def resolve_preset(preset: DistributedPreset, world_size: int, cuda: bool) -> DistributedPreset | None:
    """The preset to use (None: one plain process).

    Sharding needs more than one process (a single one has nothing to shard with) and ZeRO needs DeepSpeed.
    On CPUs, fsdp, zero2 and zero3 run over gloo; the ``-offload`` variants move state from GPU to CPU memory
    and need CUDA GPUs.
    """
    if preset in (DistributedPreset.AUTO, DistributedPreset.DDP):
        return DistributedPreset.DDP if world_size > 1 else None
    if preset in OFFLOAD_PRESETS and not cuda:
        raise DistributedConfigError(
            f"distributed.preset: {preset} offloads shards from GPU to CPU memory and needs CUDA GPUs; this node "
            f"has none — use {preset.removesuffix('-offload')} (or ddp) for CPU runs"
        )
    if preset in DEEPSPEED_PRESETS and importlib.util.find_spec("deepspeed") is None:
        raise DistributedConfigError(
            f"distributed.preset: {preset} needs DeepSpeed, which this image lacks — install stockpot[deepspeed]"
        )
    if not cuda and world_size == 1:
        return None
    return preset


# ZeRO bucket sizes, in elements. Concrete numbers because the "auto" values are filled in by HF Trainer
# (hidden_size² and friends) and we drive accelerate directly. Communication buckets are 5e7 rather than
# DeepSpeed's 5e8 default: with overlap_comm, ZeRO-2 keeps several buckets of each kind alive at once, and at
# 5e8 that reserves gigabytes per GPU before the model gets any. ZeRO-3's prefetch bucket (5e7) and persistence
# threshold (1e5: parameters smaller than this, biases and norms, stay whole on every GPU) are DeepSpeed's defaults.
COMM_BUCKET_ELEMENTS = 50_000_000
ZERO3_PREFETCH_ELEMENTS = 50_000_000
ZERO3_PERSISTENCE_THRESHOLD = 100_000


def deepspeed_config(preset: DistributedPreset, training: TrainingSpec, world_size: int) -> dict[str, Any]:
    """A DeepSpeed config for a ZeRO preset, with concrete batch arithmetic and bucket sizes.

    Half precision: an explicit bf16/fp16/fp32 sets the ``bf16``/``fp16`` sections. ``auto`` leaves them out,
    and accelerate fills in the one matching the ``mixed_precision`` the Accelerator was given (bf16 on GPUs
    that support it, else fp16): writing bf16 here would make accelerate refuse an fp16 Accelerator.
    """
    if preset not in DEEPSPEED_PRESETS:
        raise ValueError(f"{preset} is not a DeepSpeed preset")
    stage = 3 if preset in (DistributedPreset.ZERO3, DistributedPreset.ZERO3_OFFLOAD) else 2
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": COMM_BUCKET_ELEMENTS,
    }
    if stage == 2:
        zero["allgather_bucket_size"] = COMM_BUCKET_ELEMENTS
    else:
        zero.update(
            {
                "stage3_prefetch_bucket_size": ZERO3_PREFETCH_ELEMENTS,
                "stage3_param_persistence_threshold": ZERO3_PERSISTENCE_THRESHOLD,
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    if preset in OFFLOAD_PRESETS:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    micro, accumulation = training.batch_size, training.gradient_accumulation_steps
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": micro * accumulation * world_size,
        "gradient_clipping": training.max_grad_norm,
        "zero_optimization": zero,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if training.precision != Precision.AUTO:
        config["bf16"] = {"enabled": training.precision == Precision.BF16}
        config["fp16"] = {"enabled": training.precision == Precision.FP16}
    return config


def fsdp_plugin_kwargs(preset: DistributedPreset, training: TrainingSpec) -> dict[str, Any]:
    """Keyword arguments of accelerate's ``FullyShardedDataParallelPlugin`` for FSDP2.

    No ``mixed_precision_policy``: accelerate derives it from the Accelerator's ``mixed_precision``, so the
    precision is resolved in one place. ``cpu_ram_efficient_loading`` makes the plugin set
    ``FSDP_CPU_RAM_EFFICIENT_LOADING`` in the environment, so build it before loading the model: transformers
    then reads the weights on rank 0 only and accelerate broadcasts them when it shards.
    """
    if preset not in FSDP_PRESETS:
        raise ValueError(f"{preset} is not an FSDP preset")
    return {
        "fsdp_version": 2,
        "reshard_after_forward": True,
        "auto_wrap_policy": "transformer_based_wrap",
        "cpu_offload": preset == DistributedPreset.FSDP_OFFLOAD,
        "state_dict_type": "SHARDED_STATE_DICT",
        "activation_checkpointing": training.gradient_checkpointing,
        "cpu_ram_efficient_loading": True,
    }


def accelerator_kwargs(preset: DistributedPreset | None, training: TrainingSpec, world_size: int) -> dict[str, Any]:
    """The plugin ``accelerate.Accelerator`` needs for ``preset``: empty for ddp and a single process.

    The caller passes ``cpu`` and ``mixed_precision`` itself; the plugins take their precision from it.
    """
    if preset is None:
        return {}
    if preset in DEEPSPEED_PRESETS:
        from accelerate.utils import DeepSpeedPlugin

        return {"deepspeed_plugin": DeepSpeedPlugin(hf_ds_config=deepspeed_config(preset, training, world_size))}
    if preset in FSDP_PRESETS:
        from accelerate.utils import FullyShardedDataParallelPlugin

        return {"fsdp_plugin": FullyShardedDataParallelPlugin(**fsdp_plugin_kwargs(preset, training))}
    return {}


def shard_on_cpu(accelerator: Any, plugins: dict[str, Any]) -> None:
    """Make an ``Accelerator(cpu=True, fsdp_plugin=… or deepspeed_plugin=…)`` shard between CPU processes.

    accelerate (1.15) turns a plugin into ``DistributedType.FSDP``/``DEEPSPEED`` only for accelerator devices;
    CPU processes stay ``MULTI_CPU`` and the plugin is dropped without a word — the run would be DDP. After the
    Accelerator has set up the gloo process group, this switches its shared state (and ``PartialState``'s, which
    the collectives helpers read) to the plugin's engine, so ``prepare`` takes the same path GPUs take:
    ``fully_shard`` on the CPU device mesh, or ``deepspeed.initialize`` on DeepSpeed's CPU accelerator
    (``DS_ACCELERATOR=cpu``, set before DeepSpeed is imported — see ``cpu_engine_env``).
    """
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return
    if accelerator.distributed_type != DistributedType.MULTI_CPU:
        raise DistributedConfigError(
            f"distributed.preset: sharding on CPU needs torchrun's CPU processes, not {accelerator.distributed_type}"
        )
    state = accelerator.state
    if "deepspeed_plugin" in plugins:
        from deepspeed import comm

        # what accelerate does on GPUs: DeepSpeed's collectives (and zero.Init's world size) on the process group
        comm.init_distributed(dist_backend=state.backend, auto_mpi_discovery=False)
        plugin = plugins["deepspeed_plugin"]
        plugin.set_mixed_precision(state.mixed_precision)
        plugin.select(_from_accelerator_state=True)
        state.deepspeed_plugins = plugin
        engine = DistributedType.DEEPSPEED
    else:
        state.fsdp_plugin = plugins["fsdp_plugin"]
        engine = DistributedType.FSDP
    state.distributed_type = engine
    PartialState._shared_state["distributed_type"] = engine


def cpu_engine_env(preset: DistributedPreset | None, cuda: bool) -> dict[str, str]:
    """Environment a sharding engine needs before it is imported: DeepSpeed picks its accelerator at import and
    finds none without CUDA unless told to use the CPU one."""
    if preset in DEEPSPEED_PRESETS and not cuda:
        return {"DS_ACCELERATOR": "cpu"}
    return {}


def zero_stage(accelerator: Any) -> int:
    """The DeepSpeed ZeRO stage the Accelerator runs (0: not DeepSpeed)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return 0
    return int(accelerator.state.deepspeed_plugin.zero_stage)
