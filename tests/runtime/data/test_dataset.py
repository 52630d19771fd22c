import json
from typing import Any

import pytest

from stockpot_runtime.data.dataset import kto_rows, load_splits, pack, preference_rows, tokenize_records
from stockpot_runtime.data.masking import IGNORE_INDEX
from stockpot_runtime.data.packing import PackedSequence
from stockpot_runtime.spec.data import DataFormat, DataSpec, Packing
from stockpot_runtime.toy.tasks import Task, rows

pytestmark = pytest.mark.runtime


def _write(path: Any, data: Any) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in data))


def test_sft_pipeline_tokenizes_masks_and_packs(tmp_path: Any, toy_tokenizer: Any) -> None:
    _write(tmp_path / "train.jsonl", rows(Task.ADD, 50, seed=1))
    spec = DataSpec(train="s3://bucket/train.jsonl", max_length=64, packing=Packing.MULTIPACK, val_split=0.2)
    splits = load_splits(spec, tmp_path / "train.jsonl")
    assert splits.format == DataFormat.CHATML
    assert (len(splits.train), len(splits.validation)) == (40, 10)
    examples = tokenize_records(splits.train, toy_tokenizer, spec)
    assert all(any(label != IGNORE_INDEX for label in e.labels) for e in examples)
    packed = pack(examples, spec)
    assert all(isinstance(s, PackedSequence) and len(s) <= 64 for s in packed.sequences)
    assert 0 < packed.padding_efficiency <= 1


def test_pretokenized_and_plaintext(tmp_path: Any, toy_tokenizer: Any) -> None:
    _write(tmp_path / "t.jsonl", [{"input_ids": [5, 6, 7]}, {"input_ids": [8, 9], "labels": [-100, 9]}])
    spec = DataSpec(train="s3://bucket/t.jsonl", max_length=64)
    splits = load_splits(spec, tmp_path / "t.jsonl", eval_path=tmp_path / "t.jsonl")
    examples = tokenize_records(splits.train, toy_tokenizer, spec)
    assert [(e.input_ids, e.labels) for e in examples] == [([5, 6, 7], [5, 6, 7]), ([8, 9], [-100, 9])]
    (tmp_path / "p.txt").write_text("add 1 2\n\nreverse abc\n")
    splits = load_splits(spec, tmp_path / "p.txt", eval_path=tmp_path / "p.txt")
    examples = tokenize_records(splits.train, toy_tokenizer, spec)
    assert examples[0].input_ids[-1] == toy_tokenizer.eos_token_id


def test_preference_rows_for_trl(tmp_path: Any) -> None:
    _write(tmp_path / "d.jsonl", rows(Task.RECALL, 10, fmt="dpo"))
    _write(tmp_path / "k.jsonl", rows(Task.RECALL, 10, fmt="kto"))
    spec = DataSpec(train="s3://bucket/d.jsonl", val_split=0.0)
    dpo = preference_rows(load_splits(spec, tmp_path / "d.jsonl").train)
    assert dpo[0]["chosen"][0]["role"] == "assistant"
    assert dpo[0]["prompt"][0]["role"] == "user"
    kto = kto_rows(load_splits(spec, tmp_path / "k.jsonl").train)
    assert [r["label"] for r in kto[:2]] == [True, False]
