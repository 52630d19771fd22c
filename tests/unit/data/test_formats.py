from typing import Any

import pytest

from stockpot_runtime.data.formats import (
    Conversation,
    Desirability,
    FormatDetectionError,
    Preference,
    RowErrors,
    Text,
    TokenIds,
    detect_format,
    parse_row,
)
from stockpot_runtime.spec.data import DataFormat as F

pytestmark = pytest.mark.unit

CASES = [
    (
        F.ALPACA,
        {"instruction": "add", "input": "3 4", "output": "7", "system": "be brief"},
        Conversation(
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "add\n\n3 4"},
                {"role": "assistant", "content": "7"},
            ]
        ),
    ),
    (
        F.SHAREGPT,
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
        Conversation([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]),
    ),
    (
        F.CHATML,
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        Conversation([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]),
    ),
    (
        F.DPO,
        {"prompt": "q", "chosen": "a", "rejected": "b"},
        Preference(
            [{"role": "user", "content": "q"}],
            [{"role": "assistant", "content": "a"}],
            [{"role": "assistant", "content": "b"}],
        ),
    ),
    (
        F.KTO,
        {"prompt": "q", "completion": "a", "label": False},
        Desirability([{"role": "user", "content": "q"}], [{"role": "assistant", "content": "a"}], False),
    ),
    (F.PLAINTEXT, {"text": "doc"}, Text("doc")),
    (F.PRE_TOKENIZED, {"input_ids": [1, 2], "labels": [-100, 2]}, TokenIds([1, 2], [-100, 2])),
]


@pytest.mark.parametrize(("fmt", "row", "expected"), CASES)
def test_every_format_normalises(fmt: Any, row: Any, expected: Any) -> None:
    assert parse_row(fmt, row) == expected


@pytest.mark.parametrize(("fmt", "row", "expected"), CASES)
def test_auto_detects_every_format(fmt: Any, row: Any, expected: Any) -> None:
    assert detect_format([row]) == fmt


def test_tool_calling_parses_string_arguments_and_is_detected() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Paris"}'}}
                ],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
            {"role": "assistant", "content": "Sunny."},
        ],
        "tools": [{"type": "function", "function": {"name": "w"}}],
    }
    assert detect_format([row]) == F.TOOL_CALLING
    conv = parse_row(F.TOOL_CALLING, row)
    assert isinstance(conv, Conversation)
    assert conv.messages[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert conv.tools == row["tools"]


def test_bad_tool_arguments_name_the_field() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"function": {"name": "w", "arguments": "{city: __import__('os')}"}}]},
        ]
    }
    with pytest.raises(RowErrors) as e:
        parse_row(F.TOOL_CALLING, row)
    assert e.value.errors[0][0] == "messages[1].tool_calls[0].function.arguments"
    assert "invalid JSON" in e.value.errors[0][1]


def test_ambiguous_and_unknown_rows_are_reported() -> None:
    with pytest.raises(FormatDetectionError, match=r"ambiguous.*alpaca.*chatml"):
        detect_format([{"instruction": "a", "output": "b", "messages": []}])
    with pytest.raises(FormatDetectionError, match="cannot detect"):
        detect_format([{"question": "a"}])


def test_all_field_problems_of_a_row_are_collected() -> None:
    with pytest.raises(RowErrors) as e:
        parse_row(F.KTO, {"prompt": 3, "completion": "a", "label": "yes"})
    assert [name for name, _ in e.value.errors] == ["prompt", "label"]
