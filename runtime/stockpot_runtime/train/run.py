"""``stockpot-runtime train``: one ``TrainRun`` from sources to a committed artifact.

1. Refuse GPU-only settings on a CPU node (before downloading anything); return at once when the artifact
   is already committed (a retried pod after success has nothing to do).
2. Materialize the base model and data (s3://, hf://, pvc://, paths), read and validate the rows.
3. Load the tokenizer and model, apply the adapter, build the method's objective.
4. Train (``TrainingLoop``): resume from the newest complete checkpoint, checkpoint every N steps and on
   SIGTERM, write ``progress.json``/``metrics.jsonl`` and Prometheus metrics.
5. Save the adapter or model with its tokenizer to ``final/``, then ``manifest.json`` — last.
The summary (artifact URI, manifest sha256, steps, loss, resumes) goes to stdout and the termination log.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stockpot_runtime.data.dataset import load_splits
from stockpot_runtime.data.readers import data_files
from stockpot_runtime.spec.method import Task
from stockpot_runtime.spec.model import ModelSource
from stockpot_runtime.spec.peft import AdapterType
from stockpot_runtime.spec.runs import TrainRun
from stockpot_runtime.storage.checkpoints import CheckpointStore
from stockpot_runtime.storage.digests import config_hash, digest_files
from stockpot_runtime.storage.manifest import MANIFEST_NAME, ArtifactRef, commit_artifact, read_artifact_ref
from stockpot_runtime.storage.progress import ProgressReporter
from stockpot_runtime.storage.sources import check_model_dir, materialize
from stockpot_runtime.storage.store import open_store
from stockpot_runtime.storage.uri import join

from . import adapters, checkpointing, distributed, loading
from .loop import LoopSettings, TrainingLoop
from .metrics import TrainingMetrics
from .objectives import causal_lm, distill, grpo, kto, preference, reward_model
from .objectives.base import Context, Objective
from .optimization import build_optimizer, build_scheduler, parameter_groups

log = logging.getLogger(__name__)

BUILDERS: dict[Task, Callable[[Context], Any]] = {
    # each returns an Objective; the protocol takes Sequence[Any] where builders know their item type
    Task.SFT: causal_lm.build,
    Task.PRETRAIN: causal_lm.build,
    **dict.fromkeys((Task.DPO, Task.IPO, Task.SIMPO, Task.ORPO, Task.BCO), preference.build),
    Task.KTO: kto.build,
    Task.REWARD_MODEL: reward_model.build,
    Task.GRPO: grpo.build,
    Task.DISTILL: distill.build,
}


@dataclass
class Summary:
    """What a finished run reports (stdout, termination message)."""

    artifact: ArtifactRef
    steps: int
    loss: float | None
    resumes: int
    tokens: int
    eval: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "result": "Succeeded",
            "artifact": self.artifact.uri,
            "manifestSha256": self.artifact.manifest_sha256,
            "steps": self.steps,
            "loss": self.loss,
            "resumes": self.resumes,
            "tokens": self.tokens,
            **self.eval,
        }


def storage_env(run: TrainRun, env: Mapping[str, str]) -> dict[str, str]:
    """Environment defaults from ``run.storage`` (the pod's env, e.g. from the operator, wins)."""
    defaults = {"AWS_REGION": run.storage.region, "STOCKPOT_S3_ADDRESSING_STYLE": str(run.storage.addressing_style)}
    if run.storage.endpoint:
        defaults["AWS_ENDPOINT_URL"] = run.storage.endpoint
    return {key: value for key, value in defaults.items() if not env.get(key)}


def lineage(run: TrainRun, data_digest: str) -> dict[str, Any]:
    """The manifest's lineage: base model, data digest, config hash, image, resource."""
    return {
        "baseModel": run.model.uri,
        "baseRevision": run.model.revision,
        "data": run.data.train,
        "dataDigest": data_digest,
        "configHash": config_hash(run.model_dump(mode="json", exclude={"lineage", "metrics_port"})),
        "task": str(run.method.task),
        "adapter": str(run.peft.type),
        "image": run.lineage.image,
        "resource": {"namespace": run.lineage.namespace, "name": run.lineage.name, "uid": run.lineage.uid},
    }


def loop_settings(run: TrainRun, items: int, world: int) -> LoopSettings:
    """Steps and batching: epochs × (items / batch / world) micro-batches, or maxSteps."""
    training = run.training
    per_epoch = math.ceil(items / training.batch_size) // world
    micro = None if training.max_steps else training.epochs * per_epoch
    total = training.max_steps or math.ceil((micro or 0) / training.gradient_accumulation_steps)
    if total < 1:
        raise ValueError(
            f"data.train: {items} training items make no optimizer step at batchSize {training.batch_size}"
        )
    return LoopSettings(
        total_steps=total,
        micro_batches=micro,
        accumulation=training.gradient_accumulation_steps,
        batch_size=training.batch_size,
        max_grad_norm=training.max_grad_norm,
        logging_steps=training.logging_steps,
        eval_steps=training.eval_steps,
        checkpoint_every=run.checkpoint.every_steps,
        checkpoint_on_sigterm=run.checkpoint.on_sigterm,
        resume=run.checkpoint.resume,
    )


def existing_artifact(run: TrainRun) -> ArtifactRef | None:
    if open_store(run.artifact_uri).exists(MANIFEST_NAME):
        return read_artifact_ref(run.artifact_uri)
    return None


def make_accelerator(run: TrainRun, cuda: bool, world: int) -> Any:
    from accelerate import Accelerator

    preset = distributed.resolve_preset(run.distributed.preset, world, cuda)
    where = loading.placement(run.training.precision, cuda)
    mixed = {"bf16": "bf16", "fp16": "fp16"}.get(where.precision, "no")
    os.environ.update(distributed.cpu_engine_env(preset, cuda))
    kwargs = distributed.accelerator_kwargs(preset, run.training, world)
    accelerator = Accelerator(cpu=not cuda, mixed_precision=mixed, **kwargs)
    if kwargs and not cuda:
        distributed.shard_on_cpu(accelerator, kwargs)
    if preset is not None and accelerator.is_main_process:
        log.info("distributed: %s, %d processes, accelerate %s", preset, world, accelerator.distributed_type)
    return accelerator


def train(run: TrainRun, *, workdir: Path | None = None, serve_metrics: bool = True) -> Summary:
    """Run ``run`` to a committed artifact (or raise ``Preempted`` after checkpointing on SIGTERM)."""
    cuda = loading.has_cuda()
    loading.require_hardware(run, cuda)
    os.environ.update(storage_env(run, os.environ))
    done = existing_artifact(run)
    if done is not None:
        log.info("artifact already committed at %s; nothing to do", done.uri)
        return Summary(done, steps=0, loss=None, resumes=0, tokens=0)
    with tempfile.TemporaryDirectory(prefix="stockpot-train-") as scratch:
        return _train(run, Path(workdir or scratch), cuda, serve_metrics)


def _train(run: TrainRun, work: Path, cuda: bool, serve_metrics: bool) -> Summary:
    topology = distributed.Topology.from_env(os.environ, run.world)
    accelerator = make_accelerator(run, cuda, topology.size)
    torch.manual_seed(run.training.seed)
    model_dir = check_model_dir(materialize(run.model.uri, work / "model", revision=run.model.revision), run.model.uri)
    train_path = materialize(run.data.train, work / "data" / "train")
    eval_path = materialize(run.data.eval, work / "data" / "eval") if run.data.eval else None
    splits = load_splits(run.data, train_path, eval_path)
    tokenizer = loading.load_tokenizer(model_dir, run.model)
    device = accelerator.device
    where = loading.Placement(device, loading.placement(run.training.precision, cuda).autocast_dtype)
    reward_head = run.method.task == Task.REWARD_MODEL
    model = loading.load_model(
        model_dir,
        run.model,
        head="reward" if reward_head else "causal-lm",
        quantization=run.peft.quantization,
        where=where,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = adapters.apply_adapter(model, run.peft, "SEQ_CLS" if reward_head else "CAUSAL_LM", work)
    if run.training.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        if adapters.is_adapter(model):
            model.enable_input_require_grads()

    def load_frozen(source: ModelSource | None) -> Any:
        path = model_dir if source is None else check_model_dir(materialize(source.uri, work / "frozen"), source.uri)
        frozen = loading.load_model(path, source or run.model, where=where)
        return frozen.eval().requires_grad_(False)

    context = Context(run, tokenizer, splits, device, adapters.is_adapter(model), load_frozen)
    objective: Objective = BUILDERS[run.method.task](context)
    settings = loop_settings(run, len(objective.train_items), topology.size)
    optimizer = build_optimizer(parameter_groups(model, run.training, run.peft), run.training)
    scheduler = build_scheduler(optimizer, run.training, settings.total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    trainable, total = adapters.count_parameters(model)
    log.info("%s: %d/%d parameters trainable, %d steps", run.method.task, trainable, total, settings.total_steps)

    metrics = TrainingMetrics()
    metrics.total_steps.set(settings.total_steps)
    if serve_metrics and run.metrics_port and accelerator.is_main_process:
        metrics.serve(run.metrics_port)
    loop = TrainingLoop(
        objective=objective,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        accelerator=accelerator,
        settings=settings,
        seed=run.training.seed,
        checkpoints=CheckpointStore(join(run.artifact_uri, "checkpoints"), keep=run.checkpoint.keep),
        reporter=ProgressReporter(run.artifact_uri, buffer_dir=work / "progress")
        if accelerator.is_main_process
        else None,
        observe=metrics.observe,
    )
    state = loop.run()
    artifact = _publish(run, accelerator, model, tokenizer, work=work, train_path=train_path)
    if loop.reporter is not None:
        loop.reporter.flush()
    return Summary(artifact, state.step, state.last_loss, state.resumes, state.tokens, state.last_eval, loop.history)


def _publish(
    run: TrainRun, accelerator: Any, model: Any, tokenizer: Any, *, work: Path, train_path: Path
) -> ArtifactRef:
    """Save final/ and commit it, manifest last (main process); every process gets the reference."""
    accelerator.wait_for_everyone()
    gathered = _gather_sharded(accelerator, model, run)
    ref = None
    if accelerator.is_main_process:
        final = work / "final"
        trained = accelerator.unwrap_model(model)
        adapters.save_trained(trained if gathered is None else _Gathered(trained, gathered), run.peft, final, work)
        tokenizer.save_pretrained(final)
        kind = "model" if run.peft.type == AdapterType.FULL else "adapter"
        data_digest = digest_files(data_files(train_path))
        ref = commit_artifact(final, run.artifact_uri, lineage(run, data_digest), kind=kind)
    accelerator.wait_for_everyone()
    return ref or read_artifact_ref(run.artifact_uri)


def _gather_sharded(accelerator: Any, model: Any, run: TrainRun) -> dict[str, Any] | None:
    """With FSDP2 or ZeRO-3 every rank holds only shards of the weights: gather the whole tensors onto rank 0
    (all ranks take part). None when the model's own weights are whole (one process, DDP, ZeRO-2).

    Under FSDP2 an adapter gathers just its trainable weights — the frozen base is not part of what it saves;
    DeepSpeed gathers the whole module (``stage3_gather_16bit_weights_on_model_save``), and peft's
    ``save_pretrained`` picks the adapter's weights out of it.
    """
    if getattr(accelerator, "is_fsdp2", False):
        adapter = run.peft.type != AdapterType.FULL
        return checkpointing.gathered_state_dict(accelerator.unwrap_model(model), trainable_only=adapter)
    if distributed.zero_stage(accelerator) == 3:
        gathered = accelerator.get_state_dict(model)  # a collective; None on every rank but the main one
        return dict(gathered or {})
    return None


class _Gathered:
    """A sharded model as ``adapters.save_trained`` sees it: its ``save_pretrained`` (transformers' or peft's,
    with whatever conversion ``save_trained`` asks for) writes the gathered whole tensors, not the model's own
    state dict of shards. Everything else is the model's."""

    def __init__(self, model: Any, state_dict: dict[str, Any]) -> None:
        self._model, self._state_dict = model, state_dict

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def save_pretrained(self, out_dir: Path, **kwargs: Any) -> None:
        self._model.save_pretrained(out_dir, state_dict=self._state_dict, **kwargs)
