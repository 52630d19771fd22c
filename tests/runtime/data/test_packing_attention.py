"""Packed documents cannot attend to each other: their logits equal the logits of each document alone."""

from typing import Any

import pytest
import torch

from stockpot_runtime.data.collate import packed_collate, pad_collate
from stockpot_runtime.data.masking import TokenizedExample
from stockpot_runtime.data.packing import pack_multipack
from stockpot_runtime.toy.model import build_model

pytestmark = pytest.mark.runtime


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logits_equal_logits_alone(toy_tokenizer: Any, attn: Any) -> None:
    model: Any = build_model(toy_tokenizer, seed=3)
    model.eval()
    model.set_attn_implementation(attn)
    texts = ["recall k01 blue and more", "add 3 4 is 7", "reverse abc cba and also some longer text"]
    docs = [TokenizedExample(ids, ids) for ids in (toy_tokenizer(t)["input_ids"] for t in texts)]
    packed = pack_multipack(docs, max_length=64)
    assert len(packed) == 1
    batch = packed_collate(packed)
    with torch.no_grad():
        together = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], attention_mask=batch["attention_mask"]
        ).logits[0]
        start = 0
        for length in packed[0].doc_lengths:
            ids = batch["input_ids"][:, start : start + length]
            alone = model(input_ids=ids).logits[0]
            torch.testing.assert_close(together[start : start + length], alone, atol=1e-5, rtol=0)
            start += length


def test_pad_collate_pads_labels_and_mask() -> None:
    batch = pad_collate([TokenizedExample([5, 6, 7], [-100, 6, 7]), TokenizedExample([8], [8])], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
