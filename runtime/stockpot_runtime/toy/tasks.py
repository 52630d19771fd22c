"""Synthetic tasks with checkable answers, sized so a tiny model learns them in minutes on CPU.

Tasks (``Task``): ``recall`` (a fixed key->value table: "recall k07" -> "blue"), ``reverse`` (reverse a short
string over a 6-letter alphabet: "reverse abd" -> "dba") and ``add`` (single-digit sums: "add 3 4" -> "7").
Answers are one or two tokens from a small vocabulary; prompts repeat across rows, so an SFT run on a 2-layer
Llama goes from ~0 to >90 % accuracy quickly.

- ``examples(task, n, seed) -> list[(prompt, answer)]``, deterministic for a seed.
- ``rows(task, n, seed, fmt)`` rows in ``chatml``, ``alpaca``, ``dpo`` or ``kto`` format (dpo/kto use a wrong
  answer as rejected / undesirable completion; kto alternates labels).
- ``score(task, prompt, completion) -> bool``: the completion (stripped, up to the first newline) is the answer.
- ``corpus()``: texts covering every task's vocabulary, for training the toy tokenizer.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any

ALPHABET = "abcdef"
COLOURS = ("red", "blue", "green", "black", "white", "pink", "gold", "grey")
RECALL_KEYS = 32


class Task(StrEnum):
    RECALL = "recall"
    REVERSE = "reverse"
    ADD = "add"


def recall_table() -> dict[str, str]:
    """The fixed key->value table of the recall task."""
    rng = random.Random(1234)
    return {f"k{i:02d}": rng.choice(COLOURS) for i in range(RECALL_KEYS)}


def answer(task: Task, prompt: str) -> str | None:
    """The correct answer for a prompt of ``task``, or None when the prompt is not one of the task's."""
    words = prompt.strip().split()
    if not words or words[0] != task.value:
        return None
    if task == Task.RECALL and len(words) == 2:
        return recall_table().get(words[1])
    if task == Task.REVERSE and len(words) == 2:
        return words[1][::-1]
    if task == Task.ADD and len(words) == 3 and all(w.isdigit() for w in words[1:]):
        return str(int(words[1]) + int(words[2]))
    return None


def _prompt(task: Task, rng: random.Random) -> str:
    if task == Task.RECALL:
        return f"recall k{rng.randrange(RECALL_KEYS):02d}"
    if task == Task.REVERSE:
        return "reverse " + "".join(rng.choice(ALPHABET) for _ in range(3))
    return f"add {rng.randrange(10)} {rng.randrange(10)}"


def examples(task: Task, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (prompt, answer) pairs of ``task``, deterministic for ``seed``."""
    rng = random.Random(f"{task.value}:{seed}")
    out = []
    for _ in range(n):
        prompt = _prompt(task, rng)
        expected = answer(task, prompt)
        assert expected is not None
        out.append((prompt, expected))
    return out


def wrong_answer(task: Task, prompt: str, rng: random.Random) -> str:
    """A plausible but wrong answer, for rejected / undesirable completions."""
    right = answer(task, prompt)
    while True:
        if task == Task.RECALL:
            candidate = rng.choice(COLOURS)
        elif task == Task.REVERSE:
            candidate = prompt.split()[1]
            candidate = candidate if candidate != right else candidate[1:] + candidate[0]
            candidate = candidate if candidate != right else "".join(rng.choice(ALPHABET) for _ in range(3))
        else:
            candidate = str(rng.randrange(19))
        if candidate != right:
            return candidate


def rows(task: Task, n: int, seed: int = 0, fmt: str = "chatml") -> list[dict[str, Any]]:
    """``n`` rows of ``task`` in ``fmt`` (chatml, alpaca, dpo or kto)."""
    rng = random.Random(f"wrong:{task.value}:{seed}")
    out: list[dict[str, Any]] = []
    for i, (prompt, right) in enumerate(examples(task, n, seed)):
        if fmt == "chatml":
            out.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": right}]})
        elif fmt == "alpaca":
            out.append({"instruction": prompt, "input": "", "output": right})
        elif fmt == "dpo":
            out.append({"prompt": prompt, "chosen": right, "rejected": wrong_answer(task, prompt, rng)})
        elif fmt == "kto":
            good = i % 2 == 0
            out.append(
                {"prompt": prompt, "completion": right if good else wrong_answer(task, prompt, rng), "label": good}
            )
        else:
            raise ValueError(f"unknown format {fmt!r}; use chatml, alpaca, dpo or kto")
    return out


def score(task: Task | str, prompt: str, completion: str) -> bool:
    """Whether ``completion`` answers ``prompt`` correctly (first line, surrounding whitespace ignored)."""
    expected = answer(Task(task), prompt)
    lines = completion.strip().splitlines()
    return expected is not None and bool(lines) and lines[0].strip() == expected


def corpus() -> list[str]:
    """Texts covering the tasks' vocabulary and chat framing, for training the toy tokenizer."""
    texts = []
    for task in Task:
        for prompt, right in examples(task, 400, seed=99):
            texts.append(f"user\n{prompt}\nassistant\n{right}\n")
    texts.append(" ".join(COLOURS) + " " + " ".join(str(i) for i in range(100)))
    texts.append("system user assistant tool You are a helpful assistant. The quick brown fox jumps over the lazy dog.")
    return texts
