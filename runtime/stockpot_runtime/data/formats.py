"""Row formats and the one internal representation each normalises to.

Formats (the names are the API, see ``stockpot_runtime.spec.data.DataFormat``):

- ``alpaca``: ``instruction``, optional ``input``, ``output``, optional ``system`` -> ``Conversation``
- ``sharegpt``: ``conversations: [{from: human|gpt|system|tool, value}]`` -> ``Conversation``
- ``chatml``: ``messages: [{role, content}]`` -> ``Conversation``
- ``tool-calling``: ``messages`` with OpenAI ``tool_calls`` (arguments a JSON string or object, parsed with
  ``json.loads``) and optional ``tools`` definitions -> ``Conversation`` (arguments become dicts)
- ``dpo``: ``prompt``, ``chosen``, ``rejected``, each a string or a message list -> ``Preference``
- ``kto``: ``prompt``, ``completion``, ``label`` (bool) -> ``Desirability``
- ``plaintext``: ``text`` -> ``Text``
- ``pre-tokenized``: ``input_ids``, optional ``labels`` and ``attention_mask`` -> ``TokenIds``

``parse_row(fmt, row)`` returns the record or raises ``RowErrors`` listing every bad field of the row.
``detect_format(rows)`` picks the format from the first rows' keys and raises ``FormatDetectionError``
when none or several fit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockpot_runtime.spec.data import DataFormat

Message = dict[str, Any]
ROLES = frozenset({"system", "user", "assistant", "tool"})
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function_call": "assistant",
    "observation": "tool",
}


@dataclass(frozen=True)
class Conversation:
    """A chat: messages with role/content (+ tool_calls, tool_call_id), and tool definitions for the template."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Preference:
    """A DPO triple; ``prompt`` ends before the answer, ``chosen``/``rejected`` are the assistant answers."""

    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]


@dataclass(frozen=True)
class Desirability:
    """A KTO pair: a prompt, one completion and whether it is desirable."""

    prompt: list[Message]
    completion: list[Message]
    label: bool


@dataclass(frozen=True)
class Text:
    """A plain document for pretraining."""

    text: str


@dataclass(frozen=True)
class TokenIds:
    """An already tokenized example."""

    input_ids: list[int]
    labels: list[int] | None = None
    attention_mask: list[int] | None = None


Record = Conversation | Preference | Desirability | Text | TokenIds


@dataclass
class RowErrors(Exception):
    """Every (field, problem) found in one row."""

    errors: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, problem: str) -> None:
        self.errors.append((name, problem))

    def raise_if_any(self) -> None:
        if self.errors:
            raise self


class FormatDetectionError(ValueError):
    """The rows fit no format, or several."""


def _string(row: Mapping[str, Any], key: str, errs: RowErrors, required: bool = True) -> str:
    value = row.get(key)
    if value is None:
        if required:
            errs.add(key, "missing")
        return ""
    if not isinstance(value, str):
        errs.add(key, f"must be a string, got {type(value).__name__}")
        return ""
    if required and not value.strip():
        errs.add(key, "empty")
    return value


def _parse_alpaca(row: Mapping[str, Any]) -> Conversation:
    errs = RowErrors()
    instruction = _string(row, "instruction", errs)
    extra = _string(row, "input", errs, required=False)
    output = _string(row, "output", errs)
    system = _string(row, "system", errs, required=False)
    errs.raise_if_any()
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages: list[Message] = [{"role": "system", "content": system}] if system.strip() else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    return Conversation(messages)


def _parse_sharegpt(row: Mapping[str, Any]) -> Conversation:
    errs = RowErrors()
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns:
        errs.add("conversations", "must be a non-empty list")
        raise errs
    messages: list[Message] = []
    for i, turn in enumerate(turns):
        name = f"conversations[{i}]"
        if not isinstance(turn, Mapping):
            errs.add(name, "must be an object with from/value")
            continue
        role = SHAREGPT_ROLES.get(str(turn.get("from")))
        if role is None:
            errs.add(f"{name}.from", f"unknown speaker {turn.get('from')!r}; use human, gpt, system or tool")
        value = turn.get("value")
        if not isinstance(value, str):
            errs.add(f"{name}.value", "must be a string")
        if role and isinstance(value, str):
            messages.append({"role": role, "content": value})
    errs.raise_if_any()
    _check_roles(messages, "conversations", errs)
    errs.raise_if_any()
    return Conversation(messages)


def _parse_arguments(raw: Any, name: str, errs: RowErrors) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        errs.add(name, "must be a JSON object or a JSON string")
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as e:
        errs.add(name, f"invalid JSON: {e.msg} at position {e.pos}")
        return {}
    if not isinstance(parsed, dict):
        errs.add(name, "must decode to a JSON object")
        return {}
    return parsed


def _parse_tool_calls(calls: Any, name: str, errs: RowErrors) -> list[dict[str, Any]]:
    if not isinstance(calls, list):
        errs.add(name, "must be a list")
        return []
    out = []
    for j, call in enumerate(calls):
        cname = f"{name}[{j}]"
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            errs.add(f"{cname}.function.name", "missing")
            continue
        args = _parse_arguments(fn.get("arguments", {}), f"{cname}.function.arguments", errs)
        out.append(
            {
                "id": str(call.get("id", f"call_{j}")),
                "type": "function",
                "function": {"name": fn["name"], "arguments": args},
            }
        )
    return out


def _parse_messages(row: Mapping[str, Any], key: str, errs: RowErrors) -> list[Message]:
    raw = row.get(key)
    if not isinstance(raw, list) or not raw:
        errs.add(key, "must be a non-empty list of messages")
        return []
    messages: list[Message] = []
    for i, msg in enumerate(raw):
        name = f"{key}[{i}]"
        if not isinstance(msg, Mapping):
            errs.add(name, "must be an object with role/content")
            continue
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            errs.add(f"{name}.role", f"unknown role {role!r}; use system, user, assistant or tool")
        if content is None and not msg.get("tool_calls"):
            errs.add(f"{name}.content", "missing")
        elif content is not None and not isinstance(content, str):
            errs.add(f"{name}.content", "must be a string")
        out: Message = {"role": role, "content": content or ""}
        if msg.get("tool_calls"):
            out["tool_calls"] = _parse_tool_calls(msg["tool_calls"], f"{name}.tool_calls", errs)
        for extra in ("tool_call_id", "name"):
            if extra in msg:
                out[extra] = msg[extra]
        messages.append(out)
    return messages


def _check_roles(messages: list[Message], key: str, errs: RowErrors) -> None:
    if messages and not any(m["role"] == "assistant" for m in messages):
        errs.add(key, "has no assistant turn to learn from")


def _parse_chat(row: Mapping[str, Any]) -> Conversation:
    errs = RowErrors()
    messages = _parse_messages(row, "messages", errs)
    _check_roles(messages, "messages", errs)
    tools = row.get("tools")
    if tools is not None and not isinstance(tools, list):
        errs.add("tools", "must be a list of tool definitions")
    errs.raise_if_any()
    return Conversation(messages, tools if isinstance(tools, list) and tools else None)


def _turns(row: Mapping[str, Any], key: str, role: str, errs: RowErrors) -> list[Message]:
    value = row.get(key)
    if isinstance(value, str):
        if not value:
            errs.add(key, "empty")
        return [{"role": role, "content": value}]
    if isinstance(value, list):
        return _parse_messages(row, key, errs)
    errs.add(key, "must be a string or a list of messages")
    return []


def _parse_dpo(row: Mapping[str, Any]) -> Preference:
    errs = RowErrors()
    prompt = _turns(row, "prompt", "user", errs)
    chosen = _turns(row, "chosen", "assistant", errs)
    rejected = _turns(row, "rejected", "assistant", errs)
    errs.raise_if_any()
    return Preference(prompt, chosen, rejected)


def _parse_kto(row: Mapping[str, Any]) -> Desirability:
    errs = RowErrors()
    prompt = _turns(row, "prompt", "user", errs)
    completion = _turns(row, "completion", "assistant", errs)
    label = row.get("label")
    if not isinstance(label, bool):
        errs.add("label", f"must be true or false, got {label!r}")
    errs.raise_if_any()
    return Desirability(prompt, completion, bool(label))


def _parse_text(row: Mapping[str, Any]) -> Text:
    errs = RowErrors()
    text = _string(row, "text", errs)
    errs.raise_if_any()
    return Text(text)


def _int_list(row: Mapping[str, Any], key: str, errs: RowErrors, required: bool) -> list[int] | None:
    value = row.get(key)
    if value is None:
        if required:
            errs.add(key, "missing")
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        errs.add(key, "must be a list of integers")
        return None
    return list(value)


def _parse_tokens(row: Mapping[str, Any]) -> TokenIds:
    errs = RowErrors()
    ids = _int_list(row, "input_ids", errs, required=True)
    labels = _int_list(row, "labels", errs, required=False)
    mask = _int_list(row, "attention_mask", errs, required=False)
    if ids is not None and not ids:
        errs.add("input_ids", "empty")
    for key, other in (("labels", labels), ("attention_mask", mask)):
        if ids is not None and other is not None and len(other) != len(ids):
            errs.add(key, f"length {len(other)} differs from input_ids length {len(ids)}")
    errs.raise_if_any()
    return TokenIds(ids or [], labels, mask)


PARSERS: dict[DataFormat, Callable[[Mapping[str, Any]], Record]] = {
    DataFormat.ALPACA: _parse_alpaca,
    DataFormat.SHAREGPT: _parse_sharegpt,
    DataFormat.CHATML: _parse_chat,
    DataFormat.TOOL_CALLING: _parse_chat,
    DataFormat.DPO: _parse_dpo,
    DataFormat.KTO: _parse_kto,
    DataFormat.PLAINTEXT: _parse_text,
    DataFormat.PRE_TOKENIZED: _parse_tokens,
}


def parse_row(fmt: DataFormat, row: Any) -> Record:
    """Normalise one row of format ``fmt``; raises ``RowErrors`` naming every bad field."""
    if fmt == DataFormat.AUTO:
        raise ValueError("detect the format first (detect_format)")
    if not isinstance(row, Mapping):
        raise RowErrors([("row", f"must be an object, got {type(row).__name__}")])
    return PARSERS[fmt](row)


def _signature(row: Mapping[str, Any]) -> set[DataFormat]:
    keys = set(row)
    found: set[DataFormat] = set()
    if {"prompt", "chosen", "rejected"} <= keys:
        found.add(DataFormat.DPO)
    if {"prompt", "completion", "label"} <= keys:
        found.add(DataFormat.KTO)
    if {"instruction", "output"} <= keys:
        found.add(DataFormat.ALPACA)
    if "conversations" in keys:
        found.add(DataFormat.SHAREGPT)
    if "messages" in keys:
        has_tools = "tools" in keys or any(
            isinstance(m, Mapping) and "tool_calls" in m for m in row.get("messages") or []
        )
        found.add(DataFormat.TOOL_CALLING if has_tools else DataFormat.CHATML)
    if "input_ids" in keys:
        found.add(DataFormat.PRE_TOKENIZED)
    if "text" in keys and not found:
        found.add(DataFormat.PLAINTEXT)
    return found


def detect_format(rows: Sequence[Any], sample: int = 20) -> DataFormat:
    """The format of the first ``sample`` rows; tool-calling wins over chatml when any row uses tools."""
    seen: set[DataFormat] = set()
    for row in rows[:sample]:
        if isinstance(row, Mapping):
            seen |= _signature(row)
    if seen == {DataFormat.CHATML, DataFormat.TOOL_CALLING}:
        return DataFormat.TOOL_CALLING
    if len(seen) == 1:
        return next(iter(seen))
    keys = sorted({k for row in rows[:sample] if isinstance(row, Mapping) for k in row})
    if not seen:
        raise FormatDetectionError(f"cannot detect the data format from keys {keys}; set format explicitly")
    names = ", ".join(sorted(seen))
    raise FormatDetectionError(f"ambiguous data format: rows with keys {keys} fit {names}; set format explicitly")
