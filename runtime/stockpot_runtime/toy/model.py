"""A tiny random-weight Llama and a byte-level BPE tokenizer trained on the fly; no network.

- ``build_tokenizer(texts, vocab_size=2048)``: ChatML special tokens ``<|im_start|>``, ``<|im_end|>``,
  ``<|endoftext|>`` (pad), eos ``<|im_end|>``, and the ChatML chat template (with ``{% generation %}`` blocks
  so ``return_assistant_tokens_mask`` works).
- ``build_model(tokenizer, hidden=64, layers=2, heads=4, ...)``: ``LlamaForCausalLM`` with random weights.
- ``save_toy_model(directory, texts=None, ...)``: both saved with ``save_pretrained``; returns the directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from .tasks import corpus

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def build_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` (default: the toy task corpus) with ChatML special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts) if texts is not None else corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        chat_template=CHATML_TEMPLATE,
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )


def build_model(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    intermediate: int | None = None,
    head_dim: int | None = None,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A random-weight ``LlamaForCausalLM`` sized for CPU tests; ``head_dim`` defaults to hidden // heads."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate or hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=head_dim or hidden // heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def save_toy_model(
    directory: Path,
    *,
    texts: Iterable[str] | None = None,
    vocab_size: int = 2048,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    head_dim: int | None = None,
    seed: int = 0,
) -> Path:
    """Build and ``save_pretrained`` the toy tokenizer and model into ``directory``."""
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    model = build_model(tokenizer, hidden=hidden, layers=layers, heads=heads, head_dim=head_dim, seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory
