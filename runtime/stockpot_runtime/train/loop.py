"""The optimisation loop, shared by every objective.

One optimizer step = ``gradient_accumulation_steps`` micro-batches, whose summed losses are divided by the
step's total weight (so accumulation equals one large batch). Batches come from ``BatchPlan``: a pure
function of (seed, epoch, rank), so the step number alone is the data position a resume needs. After each
step: clip, optimizer, scheduler; every ``logging_steps`` a metrics record; every ``checkpoint.everySteps``
and on SIGTERM a checkpoint; evaluation every ``eval_steps`` or at each epoch end. Processes coordinate
through accelerate (DDP, FSDP2 or DeepSpeed when launched by torchrun; a plain process otherwise).

Checkpoints: with whole weights (one process, DDP) the main process writes and uploads them; with FSDP2 or
DeepSpeed ZeRO every rank writes its shards to its own scratch directory and uploads them into the same
``step-N/``, and the main process writes the completion marker, listing every rank's files, only after all of
them are uploaded.
"""

from __future__ import annotations

import logging
import math
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from stockpot_runtime.data.collate import length_grouped_batches
from stockpot_runtime.storage.checkpoints import MARKER_NAME, CheckpointRef, CheckpointStore, marker, step_dir
from stockpot_runtime.storage.digests import FileEntry, file_entries
from stockpot_runtime.storage.progress import ProgressReporter
from stockpot_runtime.storage.store import write_json

from .checkpointing import (
    Layout,
    layout_of,
    load_deepspeed_state,
    load_sharded_state,
    load_state,
    rng_state,
    save_deepspeed_state,
    save_sharded_state,
    save_state,
    set_rng_state,
)
from .objectives.base import Batch, Objective

log = logging.getLogger(__name__)


class Preempted(Exception):
    """SIGTERM arrived; the state was checkpointed (when allowed) and the run should exit for a retry."""

    def __init__(self, step: int, checkpointed: bool) -> None:
        self.step = step
        self.checkpointed = checkpointed
        super().__init__(
            f"stopped by SIGTERM after step {step} ({'checkpointed' if checkpointed else 'no checkpoint'})"
        )


class BatchPlan:
    """Which items each micro-batch holds: per epoch, a length-grouped shuffle seeded with seed + epoch.

    With several processes every rank takes every world-th batch; epochs are cut to a multiple of the world
    size so ranks step together.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if not lengths:
            raise ValueError("no training items: the data produced no examples")
        self.lengths = list(lengths)
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.per_epoch = math.ceil(len(self.lengths) / batch_size) // world
        if self.per_epoch == 0:
            raise ValueError(f"{len(self.lengths)} items make fewer batches than the {world} processes")
        self._epoch: int | None = None
        self._batches: list[list[int]] = []

    def micro_batch(self, index: int) -> tuple[int, list[int]]:
        """(epoch, item indices) of this rank's ``index``-th micro-batch."""
        epoch, position = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            batches = length_grouped_batches(self.lengths, self.batch_size, self.seed + epoch)
            self._batches, self._epoch = batches[self.rank :: self.world][: self.per_epoch], epoch
        return epoch, self._batches[position]


@dataclass
class LoopSettings:
    """The loop's knobs, resolved from the run spec."""

    total_steps: int
    micro_batches: int | None
    """Micro-batches in the whole run (epochs × per epoch), or None when max_steps decides."""
    accumulation: int
    batch_size: int
    max_grad_norm: float
    logging_steps: int
    eval_steps: int | None
    checkpoint_every: int
    checkpoint_on_sigterm: bool = True
    resume: bool = True


@dataclass
class LoopState:
    step: int = 0
    tokens: int = 0
    samples: int = 0
    resumes: int = 0
    resumed_from: int | None = None
    checkpoint: dict[str, Any] | None = None
    """The newest complete checkpoint: {uri, step}."""
    last_loss: float | None = None
    last_eval: dict[str, float] = field(default_factory=dict)


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class TrainingLoop:
    """Runs an objective to completion (or to SIGTERM), reporting and checkpointing along the way."""

    def __init__(
        self,
        *,
        objective: Objective,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        accelerator: Any,
        settings: LoopSettings,
        seed: int,
        checkpoints: CheckpointStore | None,
        reporter: ProgressReporter | None,
        observe: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.objective, self.model, self.optimizer, self.scheduler = objective, model, optimizer, scheduler
        self.accelerator, self.settings = accelerator, settings
        self.checkpoints, self.reporter, self.observe = checkpoints, reporter, observe
        self.plan = BatchPlan(
            objective.lengths(objective.train_items),
            settings.batch_size,
            seed,
            accelerator.process_index,
            accelerator.num_processes,
        )
        self.state = LoopState()
        self.history: list[dict[str, Any]] = []
        self._stop_requested = False
        self._last_train: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    @cached_property
    def layout(self) -> Layout:
        """Whole weights on the main process, or shards on every rank (FSDP2, DeepSpeed ZeRO): then every rank
        writes and reads its own part of a checkpoint."""
        from accelerate.utils import DistributedType

        if getattr(self.accelerator, "is_fsdp2", False):
            return Layout.FSDP
        if self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            return Layout.DEEPSPEED
        return Layout.WHOLE

    def run(self) -> LoopState:
        """Resume if possible, then train until total_steps; raises ``Preempted`` on SIGTERM."""
        self.resume()
        with self._sigterm_flag():
            self.model.train()
            window = _Window(time.monotonic())
            started = time.monotonic()
            start_step = self.state.step
            for step in range(self.state.step, self.settings.total_steps):
                record = self._train_step(step)
                self.state.step = step + 1
                window.add(record)
                if self.state.step % self.settings.logging_steps == 0 or self.state.step == self.settings.total_steps:
                    self._log(window.flush(record, self.state.step))
                if self._eval_due(step):
                    self._evaluate()
                self._report(started, start_step)
                if (
                    self.state.step % self.settings.checkpoint_every == 0
                    and self.state.step < self.settings.total_steps
                ):
                    self.save_checkpoint()
                if self.state.step < self.settings.total_steps and self._should_stop():
                    # (after the last step there is nothing to save: the artifact is published instead)
                    saved = self.settings.checkpoint_on_sigterm
                    if saved:
                        self.save_checkpoint()
                    raise Preempted(self.state.step, saved)
        return self.state

    @contextmanager
    def _sigterm_flag(self) -> Iterator[None]:
        def handler(signum: int, frame: Any) -> None:
            log.warning("SIGTERM: finishing step %d, then checkpointing", self.state.step + 1)
            self._stop_requested = True

        try:
            previous = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread: no signal handling
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _should_stop(self) -> bool:
        flag = torch.tensor([1.0 if self._stop_requested else 0.0], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        return bool(flag.item() > 0)

    # -- one step ------------------------------------------------------------------------------------------------

    def _micro_indices(self, step: int) -> range:
        acc = self.settings.accumulation
        end = (step + 1) * acc
        if self.settings.micro_batches is not None:
            end = min(end, self.settings.micro_batches)
        return range(step * acc, end)

    def _backward(self, loss: torch.Tensor, last: bool) -> None:
        """Backward through one micro-batch's share of the step's loss (already divided by the step's weight).

        Under DeepSpeed the engine owns the update: at the boundary its ``step`` clips, steps the optimizer and
        the scheduler and zeroes the gradients (the loop's own calls are accelerate's no-ops then). The loop
        drives the engine itself because accelerate would mark every micro-batch a boundary (its flag follows
        ``accumulate()``, which this loop does not use) and the engine would divide the loss by the accumulation
        steps a second time.
        """
        if self.layout is Layout.DEEPSPEED:
            self.model.set_gradient_accumulation_boundary(last)
            self.model.backward(loss, scale_wrt_gas=False)
            self.model.step()
        else:
            self.accelerator.backward(loss)

    def _train_step(self, step: int) -> dict[str, Any]:
        device = self.accelerator.device
        batches = []
        epoch, samples = 0, 0
        for index in self._micro_indices(step):
            epoch, items = self.plan.micro_batch(index)
            samples += len(items)
            batches.append(to_device(self.objective.collate([self.objective.train_items[i] for i in items]), device))
        weight = sum(self.objective.weight(b) for b in batches)
        lr = float(self.scheduler.get_last_lr()[0])  # this step's: DeepSpeed steps the scheduler inside backward
        loss_sum, metric_sums, tokens = 0.0, dict[str, float](), 0
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = nullcontext() if last else self.accelerator.no_sync(self.model)
            with sync, self.accelerator.autocast():
                out = self.objective.loss(self.model, batch)
                scaled = out.loss / max(weight, 1.0)
            self._backward(scaled, last)
            loss_sum += float(out.loss.detach())
            for key, value in out.metrics.items():
                metric_sums[key] = metric_sums.get(key, 0.0) + value
            tokens += self.objective.tokens(batch)
        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.settings.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.tokens += tokens
        self.state.samples += samples
        norm = max(weight, 1.0)
        return {
            "loss": loss_sum / norm,
            "lr": lr,
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "epoch": self._epoch_at(step + 1, epoch),
            "tokens": tokens,
            "samples": samples,
            **{key: value / norm for key, value in metric_sums.items()},
        }

    def _epoch_at(self, step: int, fallback: int) -> float:
        micro = step * self.settings.accumulation
        if self.settings.micro_batches is not None:
            micro = min(micro, self.settings.micro_batches)
        return round(micro / self.plan.per_epoch, 4) if self.plan.per_epoch else float(fallback)

    # -- reporting -----------------------------------------------------------------------------------------------

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if "loss" in record:
            self.state.last_loss = record["loss"]
            self._last_train = record
        if not self.is_main:
            return
        log.info("%s", " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        if self.reporter is not None:
            self.reporter.log_metrics(record)
        if self.observe is not None:
            self.observe(record)

    def _eval_due(self, step: int) -> bool:
        if not self.objective.eval_items:
            return False
        done = self.state.step
        if done == self.settings.total_steps:
            return True
        if self.settings.eval_steps is not None:
            return done % self.settings.eval_steps == 0
        per_step = self.settings.accumulation
        return (done * per_step) // self.plan.per_epoch > (step * per_step) // self.plan.per_epoch

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        total_loss, total_weight, sums = 0.0, 0.0, dict[str, float]()
        items = self.objective.eval_items
        size = self.settings.batch_size
        with torch.no_grad():
            for start in range(0, len(items), size):
                batch = to_device(self.objective.collate(items[start : start + size]), self.accelerator.device)
                with self.accelerator.autocast():
                    out = self.objective.loss(self.model, batch)
                total_loss += float(out.loss)
                total_weight += self.objective.weight(batch)
                for key, value in out.metrics.items():
                    sums[key] = sums.get(key, 0.0) + value
        self.model.train()
        norm = max(total_weight, 1.0)
        result = {"eval_loss": total_loss / norm, **{f"eval_{k}": v / norm for k, v in sums.items()}}
        self.state.last_eval = result
        self._log({"step": self.state.step, **result})
        return result

    def _report(self, started: float, start_step: int) -> None:
        if self.reporter is None or not self.is_main:
            return
        train = self._last_train
        done = self.state.step - start_step
        elapsed = time.monotonic() - started
        remaining = self.settings.total_steps - self.state.step
        self.reporter.report(
            self.state.step,
            force=self.state.step == self.settings.total_steps,
            total_steps=self.settings.total_steps,
            epoch=train.get("epoch"),
            loss=self.state.last_loss,
            lr=float(self.scheduler.get_last_lr()[0]),
            tokens_per_second=train.get("tokens_per_second"),
            eta_seconds=elapsed / done * remaining if done else None,
            resumes=self.state.resumes,
            checkpoint=self.state.checkpoint,
        )

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        """Every rank contributes its RNG state; the main process writes and uploads the checkpoint (with FSDP2 or
        DeepSpeed, every rank writes and uploads its shards and the main process commits them)."""
        from accelerate.utils import gather_object

        rngs = gather_object([rng_state()]) if self.accelerator.num_processes > 1 else [rng_state()]
        if self.layout is not Layout.WHOLE:
            if self.checkpoints is not None:
                self._save_sharded(rngs, self.checkpoints)
        elif self.is_main and self.checkpoints is not None:
            with tempfile.TemporaryDirectory(prefix="stockpot-ckpt-") as scratch:
                directory = save_state(
                    Path(scratch) / "state",
                    model=self.accelerator.unwrap_model(self.model),
                    optimizer=self.optimizer,
                    **self._replicated(rngs),
                )
                ref = self.checkpoints.save(self.state.step, directory)
            self.state.checkpoint = {"uri": ref.uri, "step": ref.step}
            log.info("checkpoint step %d: %s", ref.step, ref.uri)
        self.accelerator.wait_for_everyone()

    def _save_sharded(self, rngs: list[dict[str, Any]], checkpoints: CheckpointStore) -> None:
        """Every rank: write its shards, upload them into ``step-N/``; the main process then marks it complete."""
        step = self.state.step
        child = checkpoints.store.child(step_dir(step))
        done = self._from_main(lambda: child.exists(MARKER_NAME))  # already saved (SIGTERM right after a save)
        if not done:
            if self.is_main:
                child.delete()  # the leftovers of an interrupted upload of this step
            self.accelerator.wait_for_everyone()
            with tempfile.TemporaryDirectory(prefix="stockpot-ckpt-") as scratch:
                directory = self._write_shards(Path(scratch) / "state", rngs)
                child.put_dir(directory)
                entries = self._gather_entries(file_entries(directory))
            if self.is_main:  # every rank's files are uploaded: only now may the marker say so
                write_json(child, MARKER_NAME, marker(step, entries))
                checkpoints.prune()
        ref = CheckpointRef(step, child.uri)
        self.state.checkpoint = {"uri": ref.uri, "step": ref.step}
        if self.is_main:
            log.info("checkpoint step %d: %s (sharded)", ref.step, ref.uri)

    def _gather_entries(self, mine: list[FileEntry]) -> list[FileEntry]:
        """Every rank's uploaded files, on every rank (a collective that doubles as the barrier before the marker)."""
        from accelerate.utils import gather_object

        per_rank = gather_object([mine]) if self.accelerator.num_processes > 1 else [mine]
        merged = {entry.path: entry for entries in per_rank for entry in entries}
        if len(merged) != sum(len(entries) for entries in per_rank):
            raise RuntimeError(f"checkpoint step {self.state.step}: two ranks wrote a file of the same name")
        return sorted(merged.values(), key=lambda entry: entry.path)

    def _from_main(self, compute: Callable[[], Any]) -> Any:
        """``compute()`` on the main process, its result on every process (so all ranks take the same branch)."""
        if self.accelerator.num_processes == 1:
            return compute()
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([compute() if self.is_main else None])[0]

    def _write_shards(self, directory: Path, rngs: list[dict[str, Any]]) -> Path:
        """Every rank: this rank's part of the checkpoint, written into ``directory`` by the layout's engine."""
        replicated = {**self._replicated(rngs), "main": self.is_main}
        if self.layout is Layout.DEEPSPEED:
            return save_deepspeed_state(directory, engine=self.model, **replicated)
        model = self.accelerator.unwrap_model(self.model)
        return save_sharded_state(directory, model=model, optimizer=self.optimizer, **replicated)

    def _replicated(self, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        """What every layout's checkpoint holds whole, as keyword arguments of the ``save_*state`` functions."""
        return {"scheduler": self.scheduler, "loop_state": self._loop_state_json(), "rng_states": rngs}

    def _loop_state_json(self) -> dict[str, Any]:
        return {
            "step": self.state.step,
            "tokens": self.state.tokens,
            "samples": self.state.samples,
            "resumes": self.state.resumes,
            "objective": self.objective.state_dict(),
        }

    def resume(self) -> bool:
        """Load the newest complete checkpoint, if resuming is on and one exists."""
        if not self.settings.resume or self.checkpoints is None:
            return False
        checkpoints = self.checkpoints
        ref: CheckpointRef | None = self._from_main(checkpoints.latest_complete)  # one choice for every rank
        if ref is None:
            return False
        with tempfile.TemporaryDirectory(prefix="stockpot-resume-") as scratch:
            directory = checkpoints.restore(ref.step, Path(scratch) / "state")  # every rank: all ranks' files
            saved = layout_of(directory)
            if saved is not self.layout:
                raise ValueError(
                    f"checkpoint {ref.uri} is {saved} but this run is {self.layout} — was distributed.preset "
                    "changed after the run started? Restore the preset, or start a new run"
                )
            if self.layout is Layout.DEEPSPEED:
                loop_state, rngs = load_deepspeed_state(directory, engine=self.model, scheduler=self.scheduler)
            else:
                load = load_sharded_state if self.layout is Layout.FSDP else load_state
                loop_state, rngs = load(
                    directory,
                    model=self.accelerator.unwrap_model(self.model),
                    optimizer=self.optimizer,
                    scheduler=self.scheduler,
                )
        rank = self.accelerator.process_index
        set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0])
        self.objective.load_state_dict(loop_state.get("objective", {}))
        self.state = LoopState(
            step=int(loop_state["step"]),
            tokens=int(loop_state["tokens"]),
            samples=int(loop_state["samples"]),
            resumes=int(loop_state.get("resumes", 0)) + 1,
            resumed_from=ref.step,
            checkpoint={"uri": ref.uri, "step": ref.step},
        )
        log.info("resumed from checkpoint step %d (%s)", ref.step, ref.uri)
        return True


class _Window:
    """Tokens, samples and throughput since the previous log record."""

    def __init__(self, started: float) -> None:
        self.started, self.tokens, self.samples = started, 0, 0

    def add(self, record: dict[str, Any]) -> None:
        self.tokens += record["tokens"]
        self.samples += record["samples"]

    def flush(self, record: dict[str, Any], step: int) -> dict[str, Any]:
        """The step's record with the window's tokens, samples and tokens per second."""
        now = time.monotonic()
        elapsed = max(now - self.started, 1e-9)
        out = {
            "step": step,
            **record,
            "tokens": self.tokens,
            "samples": self.samples,
            "tokens_per_second": self.tokens / elapsed,
        }
        self.started, self.tokens, self.samples = now, 0, 0
        return out
