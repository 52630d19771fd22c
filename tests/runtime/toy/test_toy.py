from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from stockpot_runtime.data.formats import detect_format, parse_row
from stockpot_runtime.toy.model import build_model, build_tokenizer, save_toy_model
from stockpot_runtime.toy.tasks import Task, examples, rows, score

pytestmark = pytest.mark.runtime


def test_toy_model_saves_and_loads_offline(tmp_path: Any) -> None:
    directory = save_toy_model(tmp_path / "toy", hidden=32, layers=1, heads=2)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    messages = [{"role": "user", "content": "add 3 4"}]
    ids: Any = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert tokenizer.decode(ids["input_ids"][0]) == "<|im_start|>user\nadd 3 4<|im_end|>\n<|im_start|>assistant\n"
    with torch.no_grad():
        out = model(**ids).logits
    assert out.shape[-1] == len(tokenizer)


def test_build_model_is_seeded() -> None:
    tokenizer = build_tokenizer(["a b c"] * 10, vocab_size=300)
    a, b = build_model(tokenizer, hidden=32, seed=1), build_model(tokenizer, hidden=32, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("task", list(Task))
@pytest.mark.parametrize("fmt", ["chatml", "alpaca", "dpo", "kto"])
def test_task_rows_parse_and_score(task: Any, fmt: Any) -> None:
    generated = rows(task, 20, seed=3, fmt=fmt)
    assert generated == rows(task, 20, seed=3, fmt=fmt)
    detected = detect_format(generated)
    assert [parse_row(detected, r) for r in generated]
    for prompt, answer in examples(task, 20, seed=3):
        assert score(task, prompt, f" {answer}\nmore")
        assert not score(task, prompt, answer + "x")
    if fmt == "dpo":
        assert not any(score(task, r["prompt"], r["rejected"]) for r in generated)
