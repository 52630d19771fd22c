"""Where plain TRL ``SFTTrainer`` spends its time on the tiny toy model, under whichever TRL this interpreter has.

Runs under both benchmark venvs (``.venv``: TRL 1.16; ``.bench/soup``: TRL 0.29, which soup-cli 0.77 resolves); the
two share torch, transformers, peft and datasets versions (accelerate may differ by a minor version: each run records
its versions), so TRL is what differs. The tiny toy Llama (hidden 64, 2 layers) and the ChatML ``add`` rows are
built offline by bench/train.py's helpers, and ``SFTTrainer`` gets bench/train.py's TRL hyperparameters (LoRA r 8,
alpha 16, dropout 0.05, all linear layers, batch 8, max length 256, assistant-only loss, ``use_cpu``, fp32, lr 1e-4
constant, AdamW, clip 1.0, seed 0); activation (gradient) checkpointing, padding-free and Liger are left at each
TRL's defaults unless a variant changes them.

Every run is its own process. Per step it records the real (attention-mask) tokens, the padded tokens, the step's
wall time (between ``on_step_end`` callbacks, as bench/train.py), the cores other processes used meanwhile (steps
where they used ``QUIET_STEP`` or more are left out of tokens/s and the phases; see ``MIN_QUIET_SHARE`` for whole
runs) and an exclusive wall-clock split into phases:

- ``data``: ``get_batch_samples`` (row fetch and DataLoader), without the collator;
- ``collate``: the data collator;
- ``forward``: the backbone (the ``LlamaModel`` forward, final norm included; no LM head);
- ``head_fwd``: the rest of ``compute_loss`` -- LM head, loss, TRL's entropy / token-accuracy metrics;
- ``head_bwd``: backward from the loss until the backbone's output has its gradient (a tensor hook);
- ``backward``: the rest of backward (the decoder layers, with the recompute when checkpointing is on);
- ``optimizer``: gradient clipping, ``optimizer.step``, scheduler, ``zero_grad``;
- ``other``: everything else (``training_step`` glue, callbacks, logging).

Variants: ``gc`` (``default``/``on``/``off``), ``head`` (``default``; ``logits``: TRL 0.29.1's ``compute_loss`` --
full logits, transformers' cross-entropy, then entropy and token accuracy from the logits -- run on TRL 1.16;
``logits-lean``: full logits and cross-entropy without the metrics; ``fused-lean``: TRL 1.16's chunked head
computing log-probabilities only, without its entropy / top-1 outputs) and ``config`` (``lora``/``full``); ``MATRIX``
is the combinations ``--compare`` runs.
The profiled runs (torch.profiler: self-CPU time of the aten ops per phase; cProfile: Python functions per phase)
cover the steps after the warmup, all of them; their times include the profiler's overhead, so the phase split of
the unprofiled runs is the one to compare.

Usage:
  python bench/trl_profile.py [--reps 3]    # this interpreter's TRL: default run timed, then profiled
  python bench/trl_profile.py --compare [--reps 3] [--soup] [--out results.json]
                                            # both venvs x the variant matrix, interleaved; markdown tables
"""

from __future__ import annotations

import os
import sys

# Run as a script, bench/ leads sys.path and bench/operator.py would shadow the standard library's `operator`
if os.path.dirname(os.path.abspath(__file__)) in sys.path:
    sys.path.remove(os.path.dirname(os.path.abspath(__file__)))

import argparse
import contextlib
import cProfile
import functools
import importlib.util
import itertools
import json
import pstats
import resource
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
PYTHONS = {"1.16": REPO_ROOT / ".venv" / "bin" / "python", "0.29": REPO_ROOT / ".bench" / "soup" / "bin" / "python"}
PHASES = ("data", "collate", "forward", "head_fwd", "head_bwd", "backward", "optimizer", "other")
RESULT = "RESULT "
QUIET_STEP = 0.5
"""Steps during which other processes used this many cores or more are left out: with torch's two threads on two
cores, a third busy process slows a step down by up to 10-50x (a descheduled thread stalls every parallel region)."""
MIN_QUIET_SHARE = 0.5
"""A run with a smaller share of quiet steady steps is repeated (twice at most), and left out of medians if still so."""
MATRIX: tuple[tuple[str, str, str, str], ...] = (
    # (TRL, config, gc, head), in the interleaving order. Both TRLs default to checkpointing on; the gc=off rows
    # isolate the recompute, and each 1.16 gc=off head row differs from 1.16 gc=off default in its head only.
    ("0.29", "lora", "default", "default"),
    ("1.16", "lora", "default", "default"),
    ("0.29", "lora", "off", "default"),
    ("1.16", "lora", "off", "default"),
    ("1.16", "lora", "off", "logits"),
    ("1.16", "lora", "off", "fused-lean"),
    ("1.16", "lora", "off", "logits-lean"),
    ("0.29", "lora", "off", "logits-lean"),
    ("0.29", "full", "default", "default"),
    ("1.16", "full", "default", "default"),
    ("0.29", "full", "off", "default"),
    ("1.16", "full", "off", "default"),
)


def bench_train() -> Any:
    """bench/train.py as a module (its helpers import ``stockpot_runtime``, added from the source tree if absent)."""
    if importlib.util.find_spec("stockpot_runtime") is None:
        sys.path.append(str(REPO_ROOT / "runtime"))
    spec = importlib.util.spec_from_file_location("bench_train", BENCH / "train.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(work: Path) -> dict[str, str]:
    """The tiny toy model and the data rows, as bench/train.py's ``prepare`` builds them (tiny model only)."""
    train = bench_train()
    from stockpot_runtime.toy.model import save_toy_model

    model = save_toy_model(work / "tiny", **train.MODELS["tiny"])
    data = work / "data" / "train.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in train.conversation_rows(train.ROWS)), encoding="utf-8")
    return {"model": str(model), "data": str(data)}


# -- phases ----------------------------------------------------------------------------------------------------


class Phases:
    """Exclusive wall-clock time per phase; optionally one cProfile per phase and torch.profiler markers."""

    def __init__(self) -> None:
        self.current = "other"
        self.since = time.perf_counter()
        self.totals: dict[str, float] = defaultdict(float)
        self.profiles: dict[str, cProfile.Profile] | None = None
        self.markers = False

    def account(self) -> None:
        now = time.perf_counter()
        self.totals[self.current] += now - self.since
        self.since = now

    def switch(self, name: str) -> str:
        self.account()
        previous, self.current = self.current, name
        if self.profiles is not None:
            self.profiles[previous].disable()
            self.profiles.setdefault(name, cProfile.Profile()).enable()
        if self.markers:
            import torch

            # an empty range: only its start matters, as the marker torch_ops splits the op timeline at
            with torch.profiler.record_function(f"phase>{name}"):
                pass
        return previous

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        previous = self.switch(name)
        try:
            yield
        finally:
            self.switch(previous)

    def snapshot(self) -> dict[str, float]:
        self.account()
        return dict(self.totals)

    def start_cprofile(self) -> None:
        self.profiles = {self.current: cProfile.Profile()}
        self.profiles[self.current].enable()

    def stop_cprofile(self) -> None:
        if self.profiles is not None:
            self.profiles[self.current].disable()


class Collate:
    """The trainer's collator, timed as the ``collate`` phase."""

    def __init__(self, inner: Any, phases: Phases) -> None:
        self.inner, self.phases = inner, phases

    def __call__(self, examples: list[dict[str, Any]]) -> Any:
        with self.phases.phase("collate"):
            return self.inner(examples)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# -- one run (child process) -----------------------------------------------------------------------------------


def entropy_029(logits: Any, chunk_size: int = 128) -> Any:
    """TRL 0.29.1's ``entropy_from_logits`` (its torch path)."""
    import torch
    import torch.nn.functional as F

    flat = logits.reshape(-1, logits.shape[-1])
    parts = []
    for chunk in flat.split(chunk_size, dim=0):
        logps = F.log_softmax(chunk, dim=-1)
        parts.append(-(torch.exp(logps) * logps).sum(-1))
    return torch.cat(parts, dim=0).reshape(logits.shape[:-1])


def custom_loss(trainer: Any, model: Any, inputs: dict[str, Any], num_items: Any, head: str) -> Any:
    """The ``logits``, ``logits-lean`` and ``fused-lean`` loss heads (see the module docstring)."""
    import torch
    from transformers import Trainer

    inputs["use_cache"] = False
    if head == "fused-lean":
        outputs = model(**inputs, fused_lm_head=True)
        count = outputs.label_mask.sum() if num_items is None else num_items
        return -outputs.log_probs.sum() / torch.as_tensor(count).clamp(min=1)
    labels = inputs["labels"]
    loss, outputs = Trainer.compute_loss(trainer, model, inputs, return_outputs=True, num_items_in_batch=num_items)
    if head == "logits":  # TRL 0.29.1's SFTTrainer.compute_loss metrics, without Liger
        with torch.no_grad():
            mask = inputs["attention_mask"]
            (torch.sum(entropy_029(outputs.logits) * mask) / mask.sum()).item()
            predictions = outputs.logits[..., :-1, :].contiguous().argmax(dim=-1)
            shift = labels[..., 1:].contiguous()
            valid = shift != -100
            (((predictions == shift) & valid).sum() / valid.sum()).item()
    return loss


def sft_config(spec: dict[str, Any], out: str) -> Any:
    """bench/train.py's ``SFTConfig``, keeping only the fields this TRL has (dropped ones are reported)."""
    import dataclasses

    from trl.trainer.sft_config import SFTConfig

    wanted = bench_train().trl_config(spec["steps"], out)
    if spec["gc"] != "default":
        wanted["gradient_checkpointing"] = spec["gc"] == "on"
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    spec["dropped_args"] = sorted(set(wanted) - names)
    return SFTConfig(**{k: v for k, v in wanted.items() if k in names})


def instrument(trainer: Any, phases: Phases, spec: dict[str, Any]) -> None:
    """Phase switches around the backbone forward, backward and the collator; ``fused-lean``'s head."""
    if spec["head"] == "fused-lean":
        from trl.trainer.utils import add_fused_lm_head

        base = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
        del base.forward  # TRL's instance-level fused forward; back to the class's, then patched again
        add_fused_lm_head(base, outputs=("log_probs",))
    backbone = next(m for m in trainer.model.modules() if type(m).__name__ == "LlamaModel")
    stack: list[str] = []

    def to_backbone_backward(grad: Any) -> None:
        phases.switch("backward")

    def pre(module: Any, args: Any) -> None:
        stack.append(phases.switch("forward"))

    def post(module: Any, args: Any, output: Any) -> None:
        phases.switch(stack.pop())
        if output.last_hidden_state.requires_grad:
            output.last_hidden_state.register_hook(to_backbone_backward)

    backbone.register_forward_pre_hook(pre)
    backbone.register_forward_hook(post)
    backward = trainer.accelerator.backward

    def timed_backward(loss: Any, **kwargs: Any) -> Any:
        with phases.phase("head_bwd"):
            return backward(loss, **kwargs)

    trainer.accelerator.backward = timed_backward
    trainer.data_collator = Collate(trainer.data_collator, phases)


def facts_of(trainer: Any, model: Any) -> dict[str, Any]:
    """Mode and defaults as the first step sees them."""
    import torch

    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    args = trainer.args
    return {
        "model_training": model.training,
        "dropout_modules_training": f"{sum(m.training for m in dropouts)}/{len(dropouts)}",
        "gradient_checkpointing": bool(getattr(args, "gradient_checkpointing", False)),
        "model_is_gradient_checkpointing": bool(getattr(model, "is_gradient_checkpointing", False)),
        "padding_free": getattr(args, "padding_free", None),
        "use_liger_kernel": getattr(args, "use_liger_kernel", None),
        "loss_type": getattr(args, "loss_type", None),
        "collator": type(getattr(trainer.data_collator, "inner", trainer.data_collator)).__name__,
        "torch_threads": torch.get_num_threads(),
    }


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``SFTTrainer`` run on ``spec``; per-step tokens, seconds and phase seconds (and profiles if asked)."""
    import accelerate
    import datasets
    import peft
    import torch
    import transformers
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    phases, warmup = Phases(), spec["warmup"]
    record: dict[str, Any] = {"tokens": [], "padded": [], "ends": [], "cpu": [], "phases": [], "facts": {}}
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])

    class Probe(SFTTrainer):  # TRL's methods are untyped, hence the ignores
        def get_batch_samples(self, *args: Any, **kwargs: Any) -> Any:
            with phases.phase("data"):
                return super().get_batch_samples(*args, **kwargs)

        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            record["tokens"].append(int(inputs["attention_mask"].sum()))
            record["padded"].append(int(inputs["input_ids"].numel()))
            return super().training_step(model, inputs, *args, **kwargs)  # type: ignore[no-untyped-call]

        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            if not record["facts"]:
                record["facts"] = facts_of(self, model)
            with phases.phase("head_fwd"):
                if spec["head"] != "default":
                    return custom_loss(self, model, inputs, num_items_in_batch, spec["head"])
                return super().compute_loss(  # type: ignore[no-untyped-call]
                    model, inputs, return_outputs, num_items_in_batch
                )

        def _clip_grad_norm(self, model: Any) -> Any:
            with phases.phase("optimizer"):
                return super()._clip_grad_norm(model)  # type: ignore[no-untyped-call]

    class Clock(TrainerCallback):
        def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            phases.switch("optimizer")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            phases.switch("other")
            record["ends"].append(time.perf_counter())
            record["cpu"].append((busy_cores(), own_cpu(resource.RUSAGE_SELF)))
            record["phases"].append(phases.snapshot())
            if len(record["ends"]) == warmup and spec["profile"] == "cprofile":
                phases.start_cprofile()
            if len(record["ends"]) == warmup and spec["profile"] == "torch":
                profiler.start()
                phases.markers = True

    rows, tokenizer, model, lora = bench_train().trl_inputs(spec)
    with tempfile.TemporaryDirectory(prefix="trl-profile-") as out:
        trainer = Probe(
            model=model,
            args=sft_config(spec, out),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=lora if spec["config"] == "lora" else None,
            callbacks=[Clock()],
        )
        instrument(trainer, phases, spec)
        phases.snapshot()
        started, base = time.perf_counter(), dict(phases.totals)
        cpu = (busy_cores(), own_cpu(resource.RUSAGE_SELF))
        trainer.train()
        phases.stop_cprofile()
        if spec["profile"] == "torch":
            profiler.stop()
    ends, snaps = record["ends"], [base, *record["phases"]]
    seconds = [b - a for a, b in zip([started, *ends[:-1]], ends, strict=True)]
    per_step = [{p: b.get(p, 0.0) - a.get(p, 0.0) for p in PHASES} for a, b in itertools.pairwise(snaps)]
    # cores other processes used during each step: the machine's busy time minus this process's CPU time
    foreign = [
        max(0.0, (machine - machine_before - (own - own_before)) / step)
        for ((machine_before, own_before), (machine, own)), step in zip(
            itertools.pairwise([cpu, *record["cpu"]]), seconds, strict=True
        )
    ]
    after_warmup = range(warmup, len(seconds))
    steady = [i for i in after_warmup if foreign[i] < QUIET_STEP] or list(after_warmup)  # all, if none was quiet
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    result = {
        **{k: spec[k] for k in ("config", "gc", "head", "profile", "dropped_args")},
        "trl": trl.__version__,
        "versions": (
            f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
            f"accelerate {accelerate.__version__}, datasets {datasets.__version__}"
        ),
        "sft_config_has": sorted(f for f in ("loss_type", "padding_free", "use_liger_kernel") if hasattr(SFTConfig, f)),
        "tokens": record["tokens"],
        "padded": record["padded"],
        "seconds": seconds,
        "phases": per_step,
        "foreign_cores_per_step": [round(f, 2) for f in foreign],
        "steady": steady,
        "quiet_share": sum(foreign[i] < QUIET_STEP for i in steady) / len(after_warmup),
        "losses": losses,
        "facts": record["facts"],
        "tokens_per_second": sum(record["tokens"][i] for i in steady) / sum(seconds[i] for i in steady),
    }
    steps = len(seconds) - warmup
    if spec["profile"] == "torch":
        result["torch_ops"] = torch_ops(profiler, steps)
    if spec["profile"] == "cprofile" and phases.profiles is not None:
        result["python_functions"] = python_functions(phases.profiles, steps)
    return result


def torch_ops(profiler: Any, steps: int, top: int = 8) -> dict[str, Any]:
    """Per phase: self-CPU ms per step of all ops and of the top ops (phase = the last marker before the op)."""
    events = sorted(profiler.events(), key=lambda e: e.time_range.start)
    thread = next(e.thread for e in events if e.name.startswith("phase>"))
    current, totals = "other", defaultdict[tuple[str, str], float](float)
    for event in events:
        if event.name.startswith("phase>"):
            current = event.name.removeprefix("phase>") if event.thread == thread else current
            continue
        phase = current if event.thread == thread else "other threads"
        totals[(phase, event.name)] += event.self_cpu_time_total / 1000 / steps
    out = {}
    for phase in {p for p, _ in totals}:
        rows = sorted(((n, ms) for (p, n), ms in totals.items() if p == phase), key=lambda r: -r[1])
        out[phase] = {
            "self_ms_per_step": sum(ms for _, ms in rows),
            "top": [[name, round(ms, 3)] for name, ms in rows[:top]],
        }
    return out


def python_functions(profiles: dict[str, cProfile.Profile], steps: int, top: int = 8) -> dict[str, Any]:
    """Per phase: calls per step, and the top functions by self time (ms per step, calls per step)."""
    out: dict[str, Any] = {}
    for phase, profile in profiles.items():
        try:
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        except TypeError:  # nothing was recorded in this phase
            continue
        rows = sorted(stats.items(), key=lambda kv: -kv[1][2])
        out[phase] = {
            "calls_per_step": sum(v[1] for v in stats.values()) / steps,
            "self_ms_per_step": sum(v[2] for v in stats.values()) * 1000 / steps,
            "top": [[short(key), round(v[2] * 1000 / steps, 3), round(v[1] / steps, 1)] for key, v in rows[:top]],
        }
    return out


def short(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    for marker in ("site-packages/", "bench/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


# -- orchestration (parent) ------------------------------------------------------------------------------------


def busy_cores() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu(who: int = resource.RUSAGE_CHILDREN) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def wait_quiet(limit: float, patience: float) -> None:
    """Wait (up to ``patience`` seconds) until other work uses less than ``limit`` cores over 2 s."""
    deadline = time.monotonic() + patience
    while True:
        before = busy_cores()
        time.sleep(2.0)
        if (busy_cores() - before) / 2.0 < limit or time.monotonic() > deadline:
            return
        time.sleep(3.0)


def guarded(run: Callable[[], dict[str, Any]], quiet: float = 0.25, patience: float = 30.0) -> dict[str, Any]:
    """``run()`` (a subprocess) started once the machine is quiet (or ``patience`` seconds have passed), and up to
    twice more while other processes disturbed it: under ``MIN_QUIET_SHARE`` of its steady steps quiet or, for
    runs without per-step numbers (soup), more than ``quiet`` cores used by others on average (``foreign_cores``)."""
    for _ in range(3):
        wait_quiet(quiet, patience)
        started, busy, own = time.monotonic(), busy_cores(), own_cpu()
        result = run()
        foreign = max(0.0, (busy_cores() - busy - (own_cpu() - own)) / (time.monotonic() - started))
        result["foreign_cores"] = round(foreign, 3)
        if result.get("quiet_share", float(foreign < quiet)) >= MIN_QUIET_SHARE:
            return result
        print(f"  (other processes disturbed the run, {foreign:.2f} cores on average; repeating it)", flush=True)
    return result


def measure(python: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One run of ``spec`` in a fresh ``python`` process (see ``guarded``)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}

    def run() -> dict[str, Any]:
        proc = subprocess.run(
            [str(python), __file__, "--one", json.dumps(spec)], capture_output=True, text=True, env=env, check=False
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{python} {spec} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT))
        return result

    return guarded(run)


def label(run: dict[str, Any]) -> str:
    return f"{run['config']} gc={run['gc']} head={run['head']}"


def summary(runs: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """Medians over the runs of one configuration that were mostly quiet (all, if none was): tokens/s, ms/step and
    each phase's ms/step over their quiet steady steps."""
    used = [r for r in runs if r["quiet_share"] >= MIN_QUIET_SHARE] or runs

    def ms(run: dict[str, Any], phase: str | None = None) -> float:
        steps = [run["phases"][i][phase] if phase else run["seconds"][i] for i in run["steady"]]
        return 1000 * float(statistics.mean(steps))

    return {
        "tokens_per_second": statistics.median(r["tokens_per_second"] for r in used),
        "runs": ", ".join(
            f"{r['tokens_per_second']:,.0f}" if r in used else f"({r['tokens_per_second']:,.0f})" for r in runs
        ),
        "ms_per_step": statistics.median(ms(r) for r in used),
        "phases": {p: statistics.median(ms(r, p) for r in used) for p in PHASES},
        "real_tokens_per_step": statistics.mean(runs[0]["tokens"][warmup:]),
        "padded_tokens_per_step": statistics.mean(runs[0]["padded"][warmup:]),
        "final_loss": statistics.median(r["losses"][-1] for r in used),
        "min_quiet_share": min(r["quiet_share"] for r in used),
    }


def phase_table(summaries: dict[str, dict[str, Any]]) -> str:
    head = " | ".join(PHASES)
    lines = [
        f"| TRL | configuration | tokens/s (median) | runs ((left out)) | ms/step | {head} | quiet steps (min) |",
        "|---|---|---|---|---|" + "---|" * len(PHASES) + "---|",
    ]
    for key, s in summaries.items():
        version, config = key.split(" ", 1)
        cells = " | ".join(f"{s['phases'][p]:.1f}" for p in PHASES)
        lines.append(
            f"| {version} | {config} | {s['tokens_per_second']:,.0f} | {s['runs']} | {s['ms_per_step']:.1f} | {cells} "
            f"| {s['min_quiet_share']:.0%} |"
        )
    return "\n".join(lines)


def print_profile(run: dict[str, Any]) -> None:
    print(f"\n### TRL {run['trl']} {label(run)}: {run['profile']} profile (times include the profiler's overhead)")
    for phase, info in sorted(run.get("torch_ops", {}).items()):
        top = "; ".join(f"{name} {ms:.2f}" for name, ms in info["top"])
        print(f"- {phase}: {info['self_ms_per_step']:.1f} ms/step self-CPU; top ops (ms/step): {top}")
    for phase, info in sorted(run.get("python_functions", {}).items()):
        top = "; ".join(f"{name} {ms:.2f} ms ({calls:g}x)" for name, ms, calls in info["top"])
        print(f"- {phase}: {info['calls_per_step']:,.0f} calls/step, {info['self_ms_per_step']:.1f} ms/step; {top}")


def compare(args: argparse.Namespace, paths: dict[str, str]) -> None:
    """The variant matrix on both venvs (and soup through bench/train.py if asked), interleaved, then profiles."""
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    profiles: list[dict[str, Any]] = []
    base = {**paths, "steps": args.steps, "warmup": args.warmup, "profile": None, "threads": args.threads}
    train = bench_train() if args.soup else None

    def save() -> None:  # after every run, so that an interrupted comparison keeps what it measured
        if args.out:
            args.out.write_text(json.dumps({"runs": runs, "profiles": profiles}), encoding="utf-8")

    for rep in range(args.reps):
        for version, config, gc, head in MATRIX:
            run = measure(PYTHONS[version], {**base, "config": config, "gc": gc, "head": head})
            runs[f"{version} {label(run)}"].append(run)
            save()
            print(f"rep {rep + 1} TRL {run['trl']} {label(run)}: {run['tokens_per_second']:,.0f} tok/s", flush=True)
        if train is not None:
            spec = {"variant": "soup", "config": "lora", "model_name": "tiny", "model": paths["model"]}
            spec = {**spec, "data": paths["data"], "steps": args.steps, "warmup": args.warmup}
            runs["soup"].append(guarded(functools.partial(train.measure, spec)))
            save()
            print(f"rep {rep + 1} soup: {runs['soup'][-1]['tokens_per_second']:,.0f} tok/s", flush=True)
    report(runs, args.warmup)
    if not args.no_profile:
        for version in ("0.29", "1.16"):
            for kind in ("torch", "cprofile"):
                spec = {**base, "config": "lora", "gc": "default", "head": "default", "profile": kind}
                profiles.append(measure(PYTHONS[version], {**spec, "steps": args.warmup + args.profile_steps}))
                save()
                print_profile(profiles[-1])


def report(runs: dict[str, list[dict[str, Any]]], warmup: int) -> None:
    summaries = {key: summary(rs, warmup) for key, rs in runs.items() if key != "soup"}
    print("\n" + phase_table(summaries))
    for key, s in summaries.items():
        tokens = f"{s['real_tokens_per_step']:.0f} real / {s['padded_tokens_per_step']:.0f} padded tokens per step"
        print(f"- {key}: {tokens}, final loss {s['final_loss']:.4f}")
    if runs.get("soup"):
        rates = [r["tokens_per_second"] for r in runs["soup"]]
        print(f"- soup (TRL 0.29.1): median {statistics.median(rates):,.0f} tok/s (runs {[round(r) for r in rates]})")
    first = {key: rs[0] for key, rs in runs.items() if key != "soup"}
    print("\nfacts: " + json.dumps({k: {**r["facts"], "dropped_args": r["dropped_args"]} for k, r in first.items()}))


def single(args: argparse.Namespace, paths: dict[str, str]) -> None:
    """This interpreter's TRL: the default configuration timed ``--reps`` times, then profiled both ways."""
    base = {
        **paths,
        "warmup": args.warmup,
        "config": "lora",
        "gc": "default",
        "head": "default",
        "threads": args.threads,
    }
    runs = [measure(Path(sys.executable), {**base, "steps": args.steps, "profile": None}) for _ in range(args.reps)]
    s = summary(runs, args.warmup)
    print(f"TRL {runs[0]['trl']} ({runs[0]['versions']}), tiny, {label(runs[0])}; facts {json.dumps(runs[0]['facts'])}")
    print(f"steady tokens/s: median {s['tokens_per_second']:,.0f} (runs {s['runs']}), {s['ms_per_step']:.1f} ms/step")
    print("phases, ms/step (median): " + ", ".join(f"{p} {s['phases'][p]:.1f}" for p in PHASES))
    for kind in ("torch", "cprofile"):
        print_profile(
            measure(Path(sys.executable), {**base, "steps": args.warmup + args.profile_steps, "profile": kind})
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help="internal: run one measurement given as JSON and print its result")
    parser.add_argument("--compare", action="store_true", help="both venvs, the whole variant matrix")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of tokens/s and the profiles")
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--threads", type=int, help="torch intra-op threads in each run (default: torch's)")
    parser.add_argument("--soup", action="store_true", help="with --compare: also soup via bench/train.py")
    parser.add_argument("--work", type=Path, help="reuse (or build) the model and data here")
    parser.add_argument("--out", type=Path, help="with --compare: write every run as JSON here")
    args = parser.parse_args()
    if args.one:
        print(RESULT + json.dumps(run_one(json.loads(args.one))))
        return
    with tempfile.TemporaryDirectory(prefix="trl-profile-") as tmp:
        work = args.work or Path(tmp)
        data = work / "data" / "train.jsonl"
        paths = {"model": str(work / "tiny"), "data": str(data)} if data.exists() else prepare(work)
        (compare if args.compare else single)(args, paths)


if __name__ == "__main__":
    main()
