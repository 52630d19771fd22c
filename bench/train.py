"""Benchmark of Stockpot's training runtime against plain TRL ``SFTTrainer`` (a script, not a test).

Method: two random-weight toy Llamas are built offline (``tiny``: hidden 64, 2 layers; ``compute``: hidden 512,
8 layers, 8 heads) and one data set of multi-turn ChatML conversations (``add`` task turns, 4-20 turns, so the
lengths spread over roughly 50-256 tokens and padding matters). For each model and for LoRA (r 8, alpha 16,
dropout 0.05, all linear layers) and full fine-tuning, three trainers run the same rows with the same
hyperparameters (batch 8, grad accum 1, lr 1e-4 constant, no warmup, weight decay 0, AdamW, clip 1.0, fp32,
seed 0, max length 256, loss on assistant tokens only, a fixed number of optimizer steps):

- ``stockpot``: ``stockpot_runtime.train.run.train`` with ``packing: none``,
- ``stockpot+multipack``: the same with ``packing: multipack`` (bins of 256 tokens: best-fit-decreasing, its emptiest bins repacked by minimum bin slack),
- ``stockpot+multipack+recompute``: multipack with activation checkpointing (``gradientCheckpointing``),
- ``stockpot+multipack+system-malloc``: multipack under glibc's malloc; every other stockpot variant runs under
  tcmalloc as ``stockpot-runtime`` does when the machine has it (``stockpot_runtime.allocator``),
- ``trl``: ``trl.SFTTrainer`` (``SFTConfig`` defaults otherwise: no packing, pad to the longest row of a batch).

Every measurement is its own subprocess (``python bench/train.py --one SPEC_JSON``), so peak RSS
(``ru_maxrss`` of that process) is per run; runs are interleaved (stockpot, trl, stockpot+multipack, ...) and
repeated, and the table shows medians. Throughput counts real (non-pad) tokens, i.e. the attention mask's sum
over the batches trained, and only steps after the first ``--warmup`` steps: stockpot's per-step log records
(tokens and tokens/s per step), TRL's tokens from an overridden ``training_step`` and time between
``on_step_end`` callbacks. The machine's fp32 peak is the median GFLOP/s of 2048x2048 ``torch.matmul``; full
fine-tuning MFU = 6 x parameters x tokens/s / peak. Padding efficiency = real tokens / (sequences x 256) of the
tokenized training rows with no packing and with multipack (``stockpot_runtime.data.packing``).

Usage: ``python bench/train.py [--reps 3] [--write docs/benchmarks.md]`` (``make bench-train``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_LENGTH = 256
BATCH = 8
LR = 1e-4
SEED = 0
ROWS = 512
MODELS: dict[str, dict[str, int]] = {
    "tiny": {"hidden": 64, "layers": 2, "heads": 4},
    "compute": {"hidden": 512, "layers": 8, "heads": 8},
}
CONFIGS = ("lora", "full")
VARIANTS = (
    "stockpot",
    "trl",
    "stockpot+multipack",
    "soup",
    "stockpot+multipack+recompute",
    "stockpot+multipack+system-malloc",
)
PEERS = ("trl", "soup")
SOUP_PYTHON = Path(os.environ.get("SOUP_PYTHON", REPO_ROOT / ".bench" / "soup" / "bin" / "python"))
"""soup-cli[train]==0.77.0 in its own venv (``make bench-train`` creates it); soup runs LoRA only here."""
SOUP_PROBE = """
import json, resource, sys, time
import transformers
tokens, starts = [], []
original = transformers.Trainer.training_step
def training_step(self, model, inputs, *args, **kwargs):
    starts.append(time.monotonic())
    tokens.append(int(inputs["attention_mask"].sum()))
    return original(self, model, inputs, *args, **kwargs)
transformers.Trainer.training_step = training_step
from soup_cli.cli import app
try:
    app(["--no-telemetry", "--no-audit-log", "train", "--config", sys.argv[1], "--yes"], standalone_mode=False)
finally:
    done = time.monotonic()
    seconds = [b - a for a, b in zip(starts, [*starts[1:], done])]
    print(json.dumps({"tokens": tokens, "seconds": seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
SECTION = "## Training (make bench-train)"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# -- data and models -------------------------------------------------------------------------------------------


def conversation_rows(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``n`` ChatML rows of 4-20 user/assistant ``add`` turns each (about 50-256 tokens with the toy tokenizer)."""
    from stockpot_runtime.toy.tasks import Task, examples

    rng = random.Random(seed)
    pairs = examples(Task.ADD, n * 20, seed=seed)
    out = []
    for i in range(n):
        turns = pairs[i * 20 : i * 20 + rng.randint(4, 20)]
        messages = []
        for prompt, answer in turns:
            messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        out.append({"messages": messages})
    return out


def prepare(work: Path) -> dict[str, Path]:
    """Build both toy models and the JSONL data under ``work``."""
    from stockpot_runtime.toy.model import save_toy_model

    paths = {name: save_toy_model(work / name, **shape) for name, shape in MODELS.items()}
    data = work / "data" / "train.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text("".join(json.dumps(row) + "\n" for row in conversation_rows(ROWS)), encoding="utf-8")
    paths["data"] = data
    return paths


def parameter_count(model_dir: Path) -> int:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return sum(p.numel() for p in model.parameters())


def padding_efficiencies(model_dir: Path, data: Path) -> dict[str, float]:
    """Real tokens / (sequences x max length) of the tokenized rows, unpacked and multipacked."""
    from transformers import AutoTokenizer

    from stockpot_runtime.data.dataset import load_splits, pack, tokenize_records
    from stockpot_runtime.spec.data import DataSpec

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    out = {}
    for packing in ("none", "multipack"):
        spec = DataSpec.model_validate(
            {"train": str(data), "maxLength": MAX_LENGTH, "valSplit": 0.0, "packing": packing}
        )
        examples = tokenize_records(load_splits(spec, data).train, tokenizer, spec)
        packed = pack(examples, spec)
        out[packing] = packed.padding_efficiency
        out[f"{packing}_sequences"] = len(packed.sequences)
    out["mean_tokens"] = statistics.mean(len(e) for e in examples)
    lengths = [min(len(e), MAX_LENGTH) for e in examples]
    out["best_possible"] = sum(lengths) / (bins_lower_bound(lengths, MAX_LENGTH) * MAX_LENGTH)
    return out


def bins_lower_bound(lengths: list[int], capacity: int) -> int:
    """Martello and Toth's L2 lower bound on the bins any packing of ``lengths`` needs."""
    best = math.ceil(sum(lengths) / capacity)
    for k in range(capacity // 2 + 1):
        large = [n for n in lengths if n > capacity - k]
        middle = [n for n in lengths if capacity - k >= n > capacity / 2]
        small = sum(n for n in lengths if capacity / 2 >= n >= k)
        spare = len(middle) * capacity - sum(middle)
        best = max(best, len(large) + len(middle) + max(0, math.ceil((small - spare) / capacity)))
    return best


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """Median fp32 GFLOP/s of an n x n matmul."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    rates = []
    for _ in range(reps):
        started = time.perf_counter()
        torch.matmul(a, b)
        rates.append(2 * n**3 / (time.perf_counter() - started) / 1e9)
    return statistics.median(rates)


# -- one measurement (child process) ---------------------------------------------------------------------------


def steady_rate(tokens: list[int], seconds: list[float], warmup: int) -> float:
    """Tokens per second over the steps after ``warmup``."""
    return sum(tokens[warmup:]) / sum(seconds[warmup:])


def run_stockpot(spec: dict[str, Any]) -> dict[str, Any]:
    """Our ``train`` on ``spec``; per-step tokens and seconds come from the per-step log records."""
    from stockpot_runtime.spec import TrainRun
    from stockpot_runtime.train.run import train

    packing = "multipack" if "+multipack" in spec["variant"] else "none"
    peft: dict[str, Any] = {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "targetModules": ["all-linear"]}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as artifact:
        run = TrainRun.model_validate(
            {
                "model": {"uri": spec["model"]},
                "data": {
                    "train": spec["data"],
                    "maxLength": MAX_LENGTH,
                    "valSplit": 0.0,
                    "packing": packing,
                    "seed": SEED,
                },
                "training": {
                    "maxSteps": spec["steps"],
                    "lr": LR,
                    "batchSize": BATCH,
                    "gradientAccumulationSteps": 1,
                    "warmupRatio": 0.0,
                    "weightDecay": 0.0,
                    "loggingSteps": 1,
                    "scheduler": "constant",
                    "precision": "fp32",
                    "optimizer": "adamw_torch",
                    "seed": SEED,
                    "gradientCheckpointing": "+recompute" in spec["variant"],
                },
                "peft": peft if spec["config"] == "lora" else {"type": "full"},
                "checkpoint": {"everySteps": 100_000},
                "artifactUri": str(Path(artifact) / "out"),
                "metricsPort": 0,
            }
        )
        summary = train(run, serve_metrics=False)
    steps = [r for r in summary.history if "tokens_per_second" in r]
    tokens = [int(r["tokens"]) for r in steps]
    seconds = [r["tokens"] / r["tokens_per_second"] for r in steps]
    return {"tokens": tokens, "seconds": seconds, "loss": steps[-1]["loss"]}


def trl_config(steps: int, out: str) -> dict[str, Any]:
    """The TRL peer's ``SFTConfig`` fields (bench/trl_profile.py profiles the same trainer)."""
    return {
        "output_dir": out,
        "use_cpu": True,
        "bf16": False,
        "per_device_train_batch_size": BATCH,
        "gradient_accumulation_steps": 1,
        "max_steps": steps,
        "learning_rate": LR,
        "lr_scheduler_type": "constant",
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "optim": "adamw_torch",
        "logging_steps": 1,
        "report_to": [],
        "save_strategy": "no",
        "max_length": MAX_LENGTH,
        "assistant_only_loss": True,
        "seed": SEED,
        "disable_tqdm": True,
    }


def trl_inputs(spec: dict[str, Any]) -> tuple[list[dict[str, Any]], Any, Any, Any]:
    """The TRL peer's rows, tokenizer, fp32 model and LoRA config (used when ``spec["config"]`` is lora)."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [json.loads(line) for line in Path(spec["data"]).read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    return rows, tokenizer, model, lora


def run_trl(spec: dict[str, Any]) -> dict[str, Any]:
    """``trl.SFTTrainer`` on ``spec``; tokens from each ``training_step``'s attention mask, time per step end."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    tokens: list[int] = []
    padded: list[int] = []
    ends: list[float] = []

    class Counting(SFTTrainer):
        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            tokens.append(int(inputs["attention_mask"].sum()))
            padded.append(int(inputs["input_ids"].numel()))
            return super().training_step(model, inputs, *args, **kwargs)

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            ends.append(time.monotonic())

    rows, tokenizer, model, lora = trl_inputs(spec)
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as out:
        config = SFTConfig(**trl_config(spec["steps"], out))
        trainer = Counting(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=lora if spec["config"] == "lora" else None,
            callbacks=[Clock()],
        )
        started = time.monotonic()
        trainer.train()
    seconds = [b - a for a, b in zip([started, *ends[:-1]], ends, strict=True)]
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {"tokens": tokens, "seconds": seconds, "loss": losses[-1], "padded": padded}


def run_soup(spec: dict[str, Any]) -> dict[str, Any]:
    """``soup train`` (its own venv) on the first steps × batch rows for one epoch: the same steps as the others.

    Step times come from the probe above (the time between successive ``Trainer.training_step`` calls, the last
    step ending when training returns), tokens from each step's attention mask; peak RSS is soup's process.
    """
    import yaml

    rows = Path(spec["data"]).read_text(encoding="utf-8").splitlines()[: spec["steps"] * BATCH]
    with tempfile.TemporaryDirectory(prefix="bench-soup-") as work:
        data = Path(work) / "train.jsonl"
        data.write_text("\n".join(rows) + "\n", encoding="utf-8")
        config = {
            "base": spec["model"],
            "task": "sft",
            "data": {
                "train": str(data),
                "format": "chatml",
                "val_split": 0.0,
                "max_length": MAX_LENGTH,
                "train_on_responses_only": True,
            },
            "training": {
                "epochs": 1,
                "lr": LR,
                "batch_size": BATCH,
                "gradient_accumulation_steps": 1,
                "warmup_ratio": 0.0,
                "weight_decay": 0.0,
                "max_grad_norm": 1.0,
                "scheduler": "constant",
                "optimizer": "adamw_torch",
                "quantization": "none",
                "logging_steps": 1,
                "save_steps": 10**6,
                "seed": SEED,
                "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": LORA_TARGETS},
            },
            "output": str(Path(work) / "out"),
        }
        config_file = Path(work) / "soup.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {**os.environ, "SOUP_NO_AUDIT_LOG": "1", "HOME": work, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(
            [str(SOUP_PYTHON), "-c", SOUP_PROBE, str(config_file)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=work,
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"tokens"')]
    if proc.returncode != 0 or not lines or not json.loads(lines[-1])["tokens"]:
        raise RuntimeError(f"soup failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result["loss"] = float("nan")
    return result


def one(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in this process and return its numbers (printed as JSON by ``--one``)."""
    logging.basicConfig(level=logging.WARNING)
    runner = {"trl": run_trl, "soup": run_soup}.get(spec["variant"], run_stockpot)
    result = runner(spec)
    result["tokens_per_second"] = steady_rate(result["tokens"], result["seconds"], spec["warmup"])
    if spec["variant"] != "soup":  # soup's own process reports its peak
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# -- orchestration ---------------------------------------------------------------------------------------------


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh subprocess."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    if spec["variant"].startswith("stockpot") and not spec["variant"].endswith("+system-malloc"):
        # as `stockpot-runtime` runs itself: under tcmalloc when the machine has it (stockpot_runtime.allocator)
        from stockpot_runtime.allocator import find_tcmalloc, preload_env

        env = preload_env(env, find_tcmalloc()) or env
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['variant']} {spec['model_name']} {spec['config']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_all(paths: dict[str, Path], steps: dict[str, int], reps: int, warmup: int) -> dict[tuple[str, ...], list]:
    """Every (model, config, variant) ``reps`` times, interleaved; results keyed by (model, config, variant)."""
    results: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for rep in range(reps):
        for name in MODELS:
            for config in CONFIGS:
                for variant in VARIANTS:
                    if variant == "soup" and (config != "lora" or not SOUP_PYTHON.exists()):
                        continue
                    spec = {
                        "variant": variant,
                        "config": config,
                        "model_name": name,
                        "model": str(paths[name]),
                        "data": str(paths["data"]),
                        "steps": steps[name],
                        "warmup": warmup,
                    }
                    started = time.monotonic()
                    result = measure(spec)
                    results.setdefault((name, config, variant), []).append(result)
                    took = time.monotonic() - started
                    rate = result["tokens_per_second"]
                    print(
                        f"rep {rep + 1}/{reps} {name} {config} {variant}: {rate:,.0f} tok/s, {took:.0f} s", flush=True
                    )
    return results


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "tokens_per_second": statistics.median(r["tokens_per_second"] for r in runs),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "loss": statistics.median(r["loss"] for r in runs),
    }


def faster_peer(results: dict[tuple[str, ...], list[dict[str, Any]]], name: str, config: str) -> str:
    """The peer (TRL or soup) with the higher median tokens/s for this model and tuning."""
    ran = [p for p in PEERS if (name, config, p) in results]
    return max(ran, key=lambda p: medians(results[(name, config, p)])["tokens_per_second"])


def table(results: dict[tuple[str, ...], list[dict[str, Any]]], params: dict[str, int], peak: float) -> str:
    """The markdown table: medians per (model, config, variant) and ratios against the faster peer."""
    lines = [
        "| model | tuning | trainer | real tokens/s (median) | × faster peer | peak RSS MB (median) "
        "| × faster peer's RSS | MFU | final loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in MODELS:
        for config in CONFIGS:
            peer = faster_peer(results, name, config)
            base = medians(results[(name, config, peer)])
            for variant in VARIANTS:
                if (name, config, variant) not in results:
                    continue
                m = medians(results[(name, config, variant)])
                mfu = "—"
                if config == "full":
                    mfu = f"{6 * params[name] * m['tokens_per_second'] / (peak * 1e9):.1%}"
                speed = m["tokens_per_second"] / base["tokens_per_second"]
                rss = m["peak_rss_mb"] / base["peak_rss_mb"]
                loss = "—" if math.isnan(m["loss"]) else f"{m['loss']:.3f}"
                label = f"{variant} (faster peer)" if variant == peer else variant
                lines.append(
                    f"| {name} ({params[name] / 1e6:.2f}M) | {config} | {label} | {m['tokens_per_second']:,.0f} "
                    f"| {speed:.2f} | {m['peak_rss_mb']:,.0f} | {rss:.2f} | {mfu} | {loss} |"
                )
    return "\n".join(lines)


def trl_batch_padding(results: dict[tuple[str, ...], list[dict[str, Any]]]) -> float:
    """Real / padded tokens of the batches TRL trained (pad to the longest row of each batch)."""
    runs = [r for key, rs in results.items() if key[2] == "trl" for r in rs]
    return sum(sum(r["tokens"]) for r in runs) / sum(sum(r["padded"]) for r in runs)


# -- report ----------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").exists() else ""
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else platform.processor() or "unknown"


def versions() -> str:
    import peft
    import torch
    import transformers
    import trl

    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"trl {trl.__version__}, peft {peft.__version__}"
    )


def report(
    results: dict[tuple[str, ...], list[dict[str, Any]]],
    *,
    params: dict[str, int],
    peak: float,
    padding: dict[str, float],
    args: argparse.Namespace,
    steps: dict[str, int],
    elapsed: float,
    load: tuple[float, float],
) -> str:
    """The markdown section for docs/benchmarks.md."""
    today = datetime.date.today().isoformat()
    step_text = ", ".join(f"{steps[n]} steps for {n}" for n in MODELS)
    return f"""{SECTION}

`python bench/train.py --reps {args.reps} --warmup {args.warmup}` builds two random-weight toy Llamas offline
(tiny: hidden 64, 2 layers, {params["tiny"]:,} parameters; compute: hidden 512, 8 layers, 8 heads,
{params["compute"]:,} parameters, both counting the tied embeddings once) and {ROWS} ChatML rows of 4–20 `add`
turns (mean {padding["mean_tokens"]:.0f} tokens, at most {MAX_LENGTH}). Each model is trained with LoRA (r 8,
alpha 16, dropout 0.05, all linear layers) and with full fine-tuning by each trainer on the same rows and
hyperparameters — batch 8, grad accum 1, lr 1e-4 constant, no warmup, weight decay 0, AdamW, clip 1.0, fp32,
seed 0, loss on assistant tokens only, {step_text}: `stockpot` (`train()` with `packing: none`),
`stockpot+multipack` (`packing: multipack`), `stockpot+multipack+recompute` (multipack with activation
checkpointing, `gradientCheckpointing: true`), `stockpot+multipack+system-malloc` (multipack under glibc's malloc —
every other `stockpot` row runs under tcmalloc, as `stockpot-runtime` runs itself when the machine has it) and `trl` (`SFTTrainer`, `SFTConfig(use_cpu=True, bf16=False,
assistant_only_loss=True, max_length={MAX_LENGTH})`, otherwise defaults: no packing, each batch padded to its
longest row), and — for LoRA — `soup` (`soup-cli[train]==0.77.0` in its own venv, which resolves TRL 0.29.1:
`soup --no-telemetry train --config soup.yaml --yes` on the first steps × 8 rows for one epoch, with the same
hyperparameters, `quantization: none` and the seven projection matrices as LoRA targets; its steps are timed by a
probe that wraps `transformers.Trainer.training_step` inside soup's process, and its loss is not recorded).
Every measurement is a separate process (peak RSS is that process's `ru_maxrss`); the runs are
interleaved (stockpot, trl, stockpot+multipack, soup, …) and repeated {args.reps} times, and the table shows medians.
Tokens/s counts real (non-pad) tokens — the attention mask's sum over the trained batches — over the steps after
the first {args.warmup} (stockpot: its per-step log records; TRL: an overridden `training_step` and the time
between `on_step_end` callbacks). Stockpot's `packing: none` still groups rows of similar length into a batch
(shuffle, sort inside groups of 50 batches, shuffle the batches), so its batches carry little padding; TRL's
default sampler is random, and its padded positions cost compute (last bullet). TRL 1.16's `SFTConfig`
defaults to activation checkpointing (`gradient_checkpointing=True`), so its memory compares with our `+recompute` row.
Ratios are against the faster peer of each model and tuning (marked in the table). Multipack bins hold more real tokens per step, so compare tokens/s, not steps/s.
The final loss is the last step's training loss (not comparable across packing: different batches).

Run on {today}, {os.cpu_count()} cores ({cpu_model()}), no GPU; {versions()}. The whole benchmark took
{elapsed / 60:.1f} minutes; 1-minute load average {load[0]:.2f} at the start and {load[1]:.2f} at the end
(the benchmark itself keeps about 2 cores busy; more means other work shared the machine).

{table(results, params, peak)}

- fp32 matmul peak (2048×2048 `torch.matmul`, median of 10): {peak:,.1f} GFLOP/s; MFU = 6 × parameters ×
  tokens/s ÷ peak, full fine-tuning only.
- Padding efficiency of the training rows (real tokens ÷ sequences × {MAX_LENGTH}): no packing
  {padding["none"]:.1%} ({padding["none_sequences"]:.0f} sequences), multipack {padding["multipack"]:.1%}
  ({padding["multipack_sequences"]:.0f} sequences); no packing of these lengths can exceed
  {padding["best_possible"]:.1%} (Martello–Toth L2 lower bound on the bins). TRL's batches, padded to their longest row, were
  {trl_batch_padding(results):.1%} real tokens.
"""


def write_section(path: Path, section: str) -> None:
    """Replace the ``SECTION`` heading's section in ``path`` (up to the next ``## ``), or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n", encoding="utf-8")
        return
    end = text.find("\n## ", start + len(SECTION))
    rest = text[end + 1 :] if end >= 0 else ""
    path.write_text(text[:start] + section.rstrip("\n") + "\n" + ("\n" + rest if rest else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help="internal: run one measurement given as JSON and print its result")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of tokens/s")
    parser.add_argument("--tiny-steps", type=int, default=20)
    parser.add_argument("--compute-steps", type=int, default=5)
    parser.add_argument("--write", type=Path, help="replace or append the section in this markdown file")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    started, load_start = time.monotonic(), os.getloadavg()[0]
    steps = {"tiny": args.tiny_steps, "compute": args.compute_steps}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as work:
        paths = prepare(Path(work))
        params = {name: parameter_count(paths[name]) for name in MODELS}
        padding = padding_efficiencies(paths["tiny"], paths["data"])
        peak = matmul_peak()
        print(f"fp32 matmul peak {peak:,.1f} GFLOP/s; parameters {params}; padding {padding}", flush=True)
        results = run_all(paths, steps, args.reps, args.warmup)
    section = report(
        results,
        params=params,
        peak=peak,
        padding=padding,
        args=args,
        steps=steps,
        elapsed=time.monotonic() - started,
        load=(load_start, os.getloadavg()[0]),
    )
    print(section)
    if args.write:
        write_section(args.write, section)


if __name__ == "__main__":
    main()
