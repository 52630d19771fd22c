"""Training tests: the offline toy model, task rows as files, and run specs pointing at them."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from stockpot_runtime.spec import TrainRun
from stockpot_runtime.toy.model import save_toy_model
from stockpot_runtime.toy.tasks import COLOURS, Task, examples, rows, score


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random-weight toy Llama (hidden 64, 2 layers) and its tokenizer, saved once per session."""
    return save_toy_model(tmp_path_factory.mktemp("toy") / "model", hidden=64, layers=2, heads=4)


@pytest.fixture(scope="session")
def learner_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wider toy Llama (hidden 128) with room to learn the add table in a few hundred steps."""
    return save_toy_model(tmp_path_factory.mktemp("learner") / "model", hidden=128, layers=2, heads=4)


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


@pytest.fixture
def task_rows(tmp_path: Path) -> Callable[..., Path]:
    """Write ``rows(task, n, seed, fmt)`` as JSONL under tmp_path and return the file."""

    def make(fmt: str = "chatml", n: int = 256, task: Task = Task.ADD, seed: int = 0) -> Path:
        return write_jsonl(tmp_path / "data" / f"{task}-{fmt}-{n}-{seed}.jsonl", rows(task, n, seed=seed, fmt=fmt))

    return make


def preference_rows(n: int, fmt: str = "dpo", seed: int = 0) -> list[dict[str, Any]]:
    """add prompts whose good answer is the sum and whose bad answer is a colour word: a preference a small
    model can learn from a few hundred pairs and that generalises to held-out prompts."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i, (prompt, right) in enumerate(examples(Task.ADD, n, seed=seed)):
        wrong = rng.choice(COLOURS)
        if fmt == "dpo":
            out.append({"prompt": prompt, "chosen": right, "rejected": wrong})
        else:
            good = i % 2 == 0
            out.append({"prompt": prompt, "completion": right if good else wrong, "label": good})
    return out


def make_run(model_path: Path, train_file: Path, artifact: Path, **spec: Any) -> TrainRun:
    """A TrainRun for the toy model; ``spec`` holds camelCase sections merged over quick defaults."""
    base: dict[str, Any] = {
        "model": {"uri": str(model_path)},
        "data": {"train": str(train_file), "maxLength": 64, "valSplit": 0.1},
        "training": {
            "epochs": 1,
            "lr": 1e-3,
            "batchSize": 8,
            "gradientAccumulationSteps": 1,
            "warmupRatio": 0.0,
            "loggingSteps": 1,
            "scheduler": "constant",
        },
        "peft": {"type": "lora", "r": 8, "alpha": 16},
        "checkpoint": {"everySteps": 1000},
        "artifactUri": str(artifact),
        "metricsPort": 0,
    }
    for section, values in spec.items():
        if isinstance(values, dict) and isinstance(base.get(section), dict):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    return TrainRun.model_validate(base)


def accuracy(
    model_dir: Path, task: Task = Task.ADD, n: int = 100, seed: int = 7, adapter_of: Path | None = None
) -> float:
    """Greedy-decoding accuracy of a saved model (or an adapter on ``adapter_of``) on held-out prompts."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if adapter_of is not None:
        from peft import PeftModel

        model: Any = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(adapter_of), model_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    tokenizer.padding_side = "left"
    pairs = examples(task, n, seed=seed)
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
        for p, _ in pairs
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    completions = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return sum(score(task, p, c) for (p, _), c in zip(pairs, completions, strict=True)) / n
