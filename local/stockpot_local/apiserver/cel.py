"""CEL validation rules (``x-kubernetes-validations``) evaluated with cel-python."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from .errors import Cause
from .structural import field_path

Schema = dict[str, Any]
_MISSING = object()
_ENV = celpy.Environment()
_OLD_SELF = re.compile(r"\boldSelf\b")


@functools.lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    return _ENV.program(_ENV.compile(expression))


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _nodes(
    value: Any, old: Any, schema: Schema, path: tuple[Any, ...]
) -> Iterator[tuple[Any, Any, Schema, tuple[Any, ...]]]:
    """Every (value, old value, schema, path) under ``value`` that the schema describes."""
    yield value, old, schema, path
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        old_map = old if isinstance(old, dict) else {}
        for key, sub_value in value.items():
            sub = props.get(key) if key in props else additional if isinstance(additional, dict) else None
            if sub is not None:
                yield from _nodes(sub_value, old_map.get(key, _MISSING), sub, (*path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _nodes(item, _MISSING, schema["items"], (*path, i))


def _evaluate(rule: dict[str, Any], value: Any, old: Any) -> tuple[bool, str]:
    expression = rule["rule"]
    uses_old = bool(_OLD_SELF.search(expression))
    if uses_old and old is _MISSING:
        return True, ""
    activation = {"self": json_to_cel(value)}
    if uses_old:
        activation["oldSelf"] = json_to_cel(old)
    try:
        result = _program(expression).evaluate(activation)
    except Exception as exc:
        return False, _evaluation_error(exc, rule)
    if isinstance(result, CELEvalError):
        return False, _evaluation_error(result, rule)
    if bool(result):
        return True, ""
    return False, _message(rule, activation)


def _evaluation_error(exc: Exception, rule: dict[str, Any]) -> str:
    """Like the real API: ``no such key: adapters evaluating rule: <message or rule>``."""
    reason = str(exc.args[0]) if exc.args else str(exc)
    missing = re.match(r"no such member in mapping: '(.*)'", reason)
    if missing:
        reason = f"no such key: {missing.group(1)}"
    return f"{reason} evaluating rule: {rule.get('message') or rule['rule']}"


def _message(rule: dict[str, Any], activation: dict[str, Any]) -> str:
    if rule.get("messageExpression"):
        try:
            text = _program(rule["messageExpression"]).evaluate(activation)
            if isinstance(text, str) and text:
                return str(text)
        except Exception:
            pass
    return str(rule.get("message") or f"failed rule: {rule['rule']}")


def cel_causes(obj: dict[str, Any], old: dict[str, Any] | None, schema: Schema) -> list[Cause]:
    """Causes for every failing rule in the object (transition rules only when ``old`` exists)."""
    causes = []
    body = {k: v for k, v in obj.items() if k != "metadata"}
    old_body: Any = {k: v for k, v in old.items() if k != "metadata"} if old is not None else _MISSING
    for value, old_value, node_schema, path in _nodes(body, old_body, schema, ()):
        for rule in node_schema.get("x-kubernetes-validations") or ():
            ok, message = _evaluate(rule, value, old_value)
            if ok:
                continue
            where = field_path(path)
            if rule.get("fieldPath"):
                where = (where + rule["fieldPath"]) if where else rule["fieldPath"].lstrip(".")
            causes.append(Cause(where, f"Invalid value: {_type_name(value)!r}: {message}".replace("'", '"', 2)))
    return causes
