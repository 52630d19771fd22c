"""Tokenize conversations with token-exact assistant-only labels.

``assistant_spans(template, conversation)`` renders the conversation turn by turn: an assistant turn starts
where the prefix rendered with the generation prompt ends, and ends where the rendering up to and including
that turn stops agreeing with the full text (trailing whitespace trimmed; when the partial rendering
appends a suffix the full text lacks, such as phi's final eos, the accidental partial match is dropped back
to the last whitespace). The span thus covers the
assistant's content, tool calls and end-of-turn token as the template emits them.
``tokenize_conversation(...)`` maps spans to tokens through the fast tokenizer's offsets; labels are -100
outside the spans, or the input ids everywhere when ``train_on_prompt`` is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .formats import Conversation, Message
from .templates import ChatTemplate

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenizedExample:
    """Token ids and labels of one example (labels -100 where no loss is computed)."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


class TemplateMaskingError(ValueError):
    """The template renders a prefix of a conversation that is not a prefix of the whole conversation."""


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def assistant_spans(template: ChatTemplate, conversation: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the [start, end) character spans of its assistant turns."""
    messages, tools = conversation.messages, conversation.tools
    full = template.render(messages, tools)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = template.render(messages[:i], tools, add_generation_prompt=True) if i else ""
        if not full.startswith(prompt):
            raise TemplateMaskingError(
                f"template {template.name}: the rendering before message {i} is not a prefix of the conversation"
            )
        upto = template.render(messages[: i + 1], tools)
        end = _common_prefix(upto, full)
        if end < len(upto):  # the partial rendering added a suffix (e.g. a final eos): drop a partial match
            while end > len(prompt) and not full[end - 1].isspace():
                end -= 1
        while end > len(prompt) and full[end - 1].isspace():
            end -= 1
        spans.append((len(prompt), end))
    return full, spans


def _in_spans(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return end > start and any(s <= start and end <= e for s, e in spans)


def tokenize_conversation(
    tokenizer: Any,
    template: ChatTemplate,
    conversation: Conversation,
    max_length: int | None = None,
    train_on_prompt: bool = False,
) -> TokenizedExample:
    """Token ids and labels for one conversation, truncated to ``max_length``."""
    text, spans = assistant_spans(template, conversation)
    return _encode(tokenizer, text, None if train_on_prompt else spans, max_length)


def _encode(tokenizer: Any, text: str, spans: list[tuple[int, int]] | None, max_length: int | None) -> TokenizedExample:
    """Token ids of ``text``; labels inside ``spans`` (every token when None)."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(encoded["input_ids"])
    if spans is None:
        labels = list(ids)
    else:
        offsets = encoded["offset_mapping"]
        labels = [t if _in_spans(s, e, spans) else IGNORE_INDEX for t, (s, e) in zip(ids, offsets, strict=True)]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return TokenizedExample(ids, labels)


def tokenize_completion(
    tokenizer: Any,
    template: ChatTemplate,
    prompt: list[Message],
    completion: list[Message],
    *,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
) -> TokenizedExample:
    """``prompt + completion`` with labels on the completion's assistant turns only (preference methods).

    Assistant turns inside the prompt stay unlabelled. A prompt longer than ``max_prompt_length`` tokens loses
    its oldest tokens; the whole example is then cut to ``max_length``.
    """
    text, spans = assistant_spans(template, Conversation(prompt + completion))
    prompt_chars = len(template.render(prompt, add_generation_prompt=True)) if prompt else 0
    example = _encode(tokenizer, text, [s for s in spans if s[0] >= prompt_chars], None)
    start = prompt_tokens(example)
    if max_prompt_length is not None and start > max_prompt_length:
        cut = start - max_prompt_length
        example = TokenizedExample(example.input_ids[cut:], example.labels[cut:])
    if max_length is not None:
        example = TokenizedExample(example.input_ids[:max_length], example.labels[:max_length])
    return example


def prompt_tokens(example: TokenizedExample) -> int:
    """How many leading tokens carry no label (the prompt of a completion example)."""
    for index, label in enumerate(example.labels):
        if label != IGNORE_INDEX:
            return index
    return len(example.labels)


def tokenize_text(tokenizer: Any, text: str, max_length: int | None = None) -> TokenizedExample:
    """A plain document followed by eos (when the tokenizer has one), loss on every token."""
    ids: list[int] = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if max_length is not None:
        ids = ids[:max_length]
    return TokenizedExample(ids, list(ids))
