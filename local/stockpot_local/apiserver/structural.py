"""Structural schemas of custom resources: pruning, defaulting and schema validation (pure)."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import jsonschema

from .errors import Cause

Schema = dict[str, Any]
PRESERVE = "x-kubernetes-preserve-unknown-fields"
ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def field_path(parts: list[Any] | tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def prune(value: Any, schema: Schema, path: tuple[Any, ...] = (), root: bool = False) -> list[str]:
    """Drop fields the schema does not declare (in place); return their paths."""
    removed: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        embedded = root or schema.get("x-kubernetes-embedded-resource")
        for key in list(value):
            if embedded and key in ROOT_FIELDS:
                continue
            if props is not None and key in props:
                removed += prune(value[key], props[key], (*path, key))
            elif isinstance(additional, dict):
                removed += prune(value[key], additional, (*path, key))
            elif not schema.get(PRESERVE) and additional is not True:
                del value[key]
                removed.append(field_path((*path, key)))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            removed += prune(item, schema["items"], (*path, i))
    return removed


def apply_defaults(value: Any, schema: Schema) -> None:
    """Set ``default`` values of missing properties (in place), recursively."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in props:
                    apply_defaults(value[key], additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


def _to_json_schema(schema: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) → JSON Schema draft 4: nullable and int-or-string."""
    if isinstance(schema, list):
        return [_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _to_json_schema(v) for k, v in schema.items() if k not in ("default", "example")}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: _to_json_schema(v) for k, v in schema["properties"].items()}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.Draft4Validator:
    schema = _to_json_schema(json.loads(schema_json))
    props = schema.get("properties") or {}
    schema["properties"] = {k: v for k, v in props.items() if k != "metadata"}
    schema["required"] = [r for r in schema.get("required") or [] if r != "metadata"]
    if not schema["required"]:
        del schema["required"]
    return jsonschema.Draft4Validator(schema)


def _cause(error: jsonschema.ValidationError) -> Cause:
    path = list(error.absolute_path)
    where = field_path(path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return Cause(field_path([*path, missing]), "Required value", "FieldValueRequired")
    value = json.dumps(error.instance) if not isinstance(error.instance, dict | list) else type(error.instance).__name__
    if error.validator == "enum":
        options = error.validator_value if isinstance(error.validator_value, list) else []
        allowed = ", ".join(json.dumps(v) for v in options)
        return Cause(where, f"Unsupported value: {value}: supported values: {allowed}", "FieldValueNotSupported")
    exclusive = (
        bool(error.schema.get(f"exclusive{str(error.validator).capitalize()}"))
        if isinstance(error.schema, dict)
        else False
    )
    bound = "than" if exclusive else "than or equal to"
    detail = {
        "type": f"{where} in body must be of type {error.validator_value}",
        "maximum": f"{where} in body should be less {bound} {error.validator_value}",
        "minimum": f"{where} in body should be greater {bound} {error.validator_value}",
        "maxLength": f"{where} in body should be at most {error.validator_value} chars long",
        "minLength": f"{where} in body should be at least {error.validator_value} chars long",
        "pattern": f"{where} in body should match '{error.validator_value}'",
        "maxItems": f"{where} in body should have at most {error.validator_value} items",
        "minItems": f"{where} in body should have at least {error.validator_value} items",
    }.get(str(error.validator), error.message)
    return Cause(where, f"Invalid value: {value}: {detail}")


def schema_causes(obj: dict[str, Any], schema: Schema) -> list[Cause]:
    validator = _validator(json.dumps(schema, sort_keys=True))
    body = {k: v for k, v in obj.items() if k != "metadata"}
    return [_cause(e) for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]
