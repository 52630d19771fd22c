"""Assistant-only labels are token-exact for every named template and the tokenizer's own."""

import copy
from typing import Any

import pytest

from stockpot_runtime.data.formats import Conversation
from stockpot_runtime.data.masking import IGNORE_INDEX, assistant_spans, tokenize_conversation
from stockpot_runtime.data.templates import NAMED_TEMPLATES, TEMPLATE_SPECIAL_TOKENS, resolve_template

pytestmark = pytest.mark.runtime

END = {
    "chatml": "<|im_end|>",
    "qwen2.5": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "mistral": "</s>",
    "gemma": "<end_of_turn>",
    "phi": "<|end|>",
    "tokenizer": "<|im_end|>",
}
CONVERSATION = Conversation(
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "add 3 4"},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "reverse abc"},
        {"role": "assistant", "content": "cba"},
    ]
)


@pytest.fixture(scope="module")
def tokenizer(toy_tokenizer: Any) -> Any:
    tok = copy.deepcopy(toy_tokenizer)
    tok.add_special_tokens(
        {"additional_special_tokens": sorted({t for ts in TEMPLATE_SPECIAL_TOKENS.values() for t in ts})}
    )
    return tok


@pytest.mark.parametrize("name", [*NAMED_TEMPLATES, None])
def test_unmasked_tokens_are_exactly_the_assistant_turns(tokenizer: Any, name: Any) -> None:
    template = resolve_template(name, tokenizer)
    example = tokenize_conversation(tokenizer, template, CONVERSATION)
    kept = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX]
    end = END[name or "tokenizer"]
    expected = f"7{end}cba{end}"
    if name == "phi":
        expected += "\n" + tokenizer.eos_token  # phi ends a finished conversation with eos
    assert tokenizer.decode(kept) == expected
    assert tokenizer.decode(example.input_ids) == template.render(CONVERSATION.messages)


def test_train_on_prompt_keeps_every_label(tokenizer: Any) -> None:
    example = tokenize_conversation(
        tokenizer, resolve_template("chatml", tokenizer), CONVERSATION, train_on_prompt=True
    )
    assert example.labels == example.input_ids


def test_tool_calls_are_rendered_and_learned(tokenizer: Any) -> None:
    conversation = Conversation(
        [
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
            {"role": "assistant", "content": "It is sunny."},
        ],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    )
    template = resolve_template("qwen2.5", tokenizer)
    text, spans = assistant_spans(template, conversation)
    assert "# Tools" in text
    assert '"get_weather"' in text
    first = text[spans[0][0] : spans[0][1]]
    assert first == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
    assert text[spans[1][0] : spans[1][1]] == "It is sunny.<|im_end|>"
    assert "<tool_response>\nsunny\n</tool_response>" in text
