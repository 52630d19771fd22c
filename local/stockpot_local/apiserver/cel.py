"""CEL validation rules (``x-kubernetes-validations``) evaluated with cel-python."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from . import structural
from .errors import Cause
from .structural import field_path

Schema = dict[str, Any]
_MISSING = structural.MISSING
_ENV = celpy.Environment()
_OLD_SELF = re.compile(r"\boldSelf\b")


@functools.lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    return _ENV.program(_ENV.compile(expression))


Anchor = tuple[Any, Any, Schema]  # the nearest (value, old value, schema) an old value correlates with


def _nodes(
    value: Any, old: Any, schema: Schema, path: tuple[Any, ...], anchor: Anchor | None, *, old_self: bool = True
) -> Iterator[tuple[Any, Any, Anchor | None, Schema, tuple[Any, ...]]]:
    """Every (value, oldSelf, ratcheting anchor, schema, path) under ``value`` that the schema describes.

    ``old`` is the value correlated with ``value`` for ratcheting; transition rules see it as ``oldSelf``
    only where the real API correlates that too: fields of non-atomic maps and items of map-lists.
    """
    yield value, old if old_self else _MISSING, anchor, schema, path
    if isinstance(value, dict):
        granular = schema.get("x-kubernetes-map-type") != "atomic"
        for key, sub_value in value.items():
            sub = structural.property_schema(schema, key)
            if sub is not None:
                sub_old = structural.old_field(old, key)
                sub_anchor = anchor if sub_old is _MISSING else (sub_value, sub_old, sub)
                yield from _nodes(sub_value, sub_old, sub, (*path, key), sub_anchor, old_self=old_self and granular)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items, by_key = schema["items"], schema.get("x-kubernetes-list-type") == "map"
        for i, (item, old_item) in enumerate(zip(value, structural.old_items(value, old, schema), strict=True)):
            item_anchor = anchor if old_item is _MISSING else (item, old_item, items)
            yield from _nodes(item, old_item, items, (*path, i), item_anchor, old_self=old_self and by_key)


@functools.lru_cache(maxsize=1024)
def _is_transition(expression: str) -> bool:
    return bool(_OLD_SELF.search(expression))


def _evaluate(rule: dict[str, Any], value: Any, old: Any) -> tuple[bool, str]:
    expression = rule["rule"]
    uses_old = _is_transition(expression)
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
    """Causes for every failing rule in the object.

    On updates (``old`` given) transition rules run where an old value correlates, and rules without
    ``oldSelf`` are not evaluated on values left unchanged (ratcheting; the real API evaluates them and
    turns their failures into warnings).  On creates every rule but the transition rules runs.
    """
    causes = []
    body = {k: v for k, v in obj.items() if k != "metadata"}
    old_body: Any = {k: v for k, v in old.items() if k != "metadata"} if old is not None else _MISSING
    root: Anchor | None = (obj, old, schema) if old is not None else None
    for value, old_value, anchor, node_schema, path in _nodes(body, old_body, schema, (), root):
        rules = node_schema.get("x-kubernetes-validations") or ()
        ratchet = bool(rules) and anchor is not None and structural.unchanged(*anchor)
        for rule in rules:
            if ratchet and not _is_transition(rule["rule"]):
                continue
            ok, message = _evaluate(rule, value, old_value)
            if ok:
                continue
            where = field_path(path)
            if rule.get("fieldPath"):
                where = (where + rule["fieldPath"]) if where else rule["fieldPath"].lstrip(".")
            kind = node_schema.get("type", "")  # the real API shows the schema's type as the value
            causes.append(Cause(where, f'Invalid value: "{kind}": {message}'))
    return causes
