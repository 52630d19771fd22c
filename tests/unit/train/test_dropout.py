"""Sparse, fused LoRA dropout: the same distribution and gradients as peft's dropout, fewer draws and tensors."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from torch.nn import functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from stockpot_runtime.train.dropout import DroppedLinear, drop_positions, install_sparse_dropout

pytestmark = pytest.mark.unit


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=64,
    )
    return LlamaForCausalLM(config)


def lora(model: nn.Module, dropout: float = 0.1, **options: object) -> nn.Module:
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear", **options)  # type: ignore[arg-type]
    return get_peft_model(model, config)


def test_positions_are_sorted_distinct_in_range_and_reproducible() -> None:
    torch.manual_seed(1)
    first = drop_positions(100_000, 0.05)
    torch.manual_seed(1)
    assert torch.equal(first, drop_positions(100_000, 0.05))
    assert bool((first[1:] > first[:-1]).all())
    assert int(first[0]) >= 0
    assert int(first[-1]) < 100_000
    # Binomial(100000, 0.05): mean 5000, sd 69
    assert abs(len(first) - 5000) < 6 * 69


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_every_position_is_dropped_with_probability_p(p: float) -> None:
    """Position-wise frequencies over many draws of a short row: no position (first, last) is favoured."""
    torch.manual_seed(2)
    draws, n = 4000, 8
    counts = torch.zeros(n)
    for _ in range(draws):
        counts[drop_positions(n, p)] += 1
    sd = (draws * p * (1 - p)) ** 0.5
    assert ((counts - draws * p).abs() < 5 * sd).all(), counts / draws


def test_probability_must_be_strictly_between_0_and_1() -> None:
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        drop_positions(10, 1.0)


def test_fused_forward_and_gradients_equal_dropout_then_linear_with_the_same_draw() -> None:
    x = torch.randn(4, 16, 32, requires_grad=True)
    down = nn.Linear(32, 8, bias=False)
    fused = DroppedLinear(down, 0.2).train()
    torch.manual_seed(3)
    out = fused(x)
    grad = torch.randn_like(out)
    out.backward(grad)
    fused_grads = (x.grad.clone(), down.weight.grad.clone())  # type: ignore[union-attr]
    x.grad, down.weight.grad = None, None

    torch.manual_seed(3)
    mask = torch.ones(x.numel())
    mask[drop_positions(x.numel(), 0.2)] = 0.0
    reference = F.linear(x * mask.view_as(x) / 0.8, down.weight)
    reference.backward(grad)
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused_grads[0], x.grad)
    torch.testing.assert_close(fused_grads[1], down.weight.grad, rtol=1e-5, atol=1e-5)


def test_eval_mode_is_the_plain_projection() -> None:
    down = nn.Linear(32, 8, bias=False)
    x = torch.randn(3, 32)
    torch.testing.assert_close(DroppedLinear(down, 0.5).eval()(x), down(x))


def test_installed_in_every_plain_lora_layer_keeping_names_and_outputs() -> None:
    model = lora(tiny_llama())
    keys = set(model.state_dict())
    ids = torch.randint(0, 64, (2, 12))
    model.eval()
    before = model(input_ids=ids).logits
    assert install_sparse_dropout(model) == 2 * 7  # q k v o gate up down in both layers
    assert set(model.state_dict()) == keys
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    torch.testing.assert_close(model(input_ids=ids).logits, before)


@pytest.mark.parametrize("options", [{"use_dora": True}, {"lora_dropout": 0.0}])
def test_dora_and_zero_dropout_keep_peft_s_path(options: dict[str, object]) -> None:
    dropout = float(options.pop("lora_dropout", 0.1))  # type: ignore[arg-type]
    model = lora(tiny_llama(), dropout=dropout, **options)
    assert install_sparse_dropout(model) == 0


def test_recomputed_activations_draw_the_same_positions() -> None:
    """Gradient checkpointing replays the RNG state, so checkpointed gradients equal plain ones."""
    ids = torch.randint(0, 64, (2, 12))
    grads = []
    for checkpointing in (False, True):
        model = lora(tiny_llama())
        install_sparse_dropout(model)
        model.train()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        torch.manual_seed(4)
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)
