"""Structural schemas of custom resources: pruning, defaulting, schema validation and ratcheting (pure)."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable
from typing import Any

import jsonschema

from .errors import Cause

Schema = dict[str, Any]
PRESERVE = "x-kubernetes-preserve-unknown-fields"
ROOT_FIELDS = ("apiVersion", "kind", "metadata")
MISSING: Any = object()  # no old value correlates with a new one


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


_by_identity: dict[int, tuple[Schema, jsonschema.Draft4Validator]] = {}


def _validator_of(schema: Schema) -> jsonschema.Draft4Validator:
    """The compiled validator of a stored schema, found by identity first (serialising it costs ~0.4 ms a write)."""
    entry = _by_identity.get(id(schema))
    if entry is None or entry[0] is not schema:
        if len(_by_identity) >= 256:
            _by_identity.clear()
        entry = _by_identity[id(schema)] = (schema, _validator(json.dumps(schema, sort_keys=True)))
    return entry[1]


def schema_causes(obj: dict[str, Any], schema: Schema, old: dict[str, Any] | None = None) -> list[Cause]:
    """Causes for every schema violation; on updates (``old`` given) not those in unchanged subtrees."""
    validator = _validator_of(schema)
    body = {k: v for k, v in obj.items() if k != "metadata"}
    errors = validator.iter_errors(body)
    if old is not None:
        errors = (e for e in errors if not ratcheted(obj, old, schema, e.absolute_path))
    return [_cause(e) for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))]


# -- ratcheting (KEP-4008, GA in Kubernetes 1.33) -----------------------------------------------
# On updates, a failure is ignored when the node it belongs to (or the nearest ancestor an old value
# correlates with) is unchanged.  Map fields correlate by key; list items by their list-map keys in
# ``x-kubernetes-list-type: map`` lists, by index in lists without a list type, not at all in sets
# and atomic lists (Kubernetes: apiextensions-apiserver validation/ratcheting.go, apiserver cel/common/equality.go).


def property_schema(schema: Schema, key: str) -> Schema | None:
    """The schema of field ``key`` of an object node: its property, else ``additionalProperties``."""
    props = schema.get("properties") or {}
    if key in props:
        sub: Schema = props[key]
        return sub
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def old_field(old: Any, key: str) -> Any:
    return old.get(key, MISSING) if isinstance(old, dict) else MISSING


def old_items(value: list[Any], old: Any, schema: Schema) -> list[Any]:
    """The old item correlated with each item of ``value`` (``MISSING`` where none)."""
    list_type = schema.get("x-kubernetes-list-type")
    if not isinstance(old, list) or list_type not in (None, "map"):
        return [MISSING] * len(value)
    if list_type is None:
        return [old[i] if i < len(old) else MISSING for i in range(len(value))]
    keys = schema.get("x-kubernetes-list-map-keys") or []

    def key(item: Any) -> Any:
        return tuple(item.get(k) for k in keys) if isinstance(item, dict) else None

    by_key = {key(item): item for item in old}
    return [by_key.get(key(item), MISSING) for item in value]


def deep_equal(a: Any, b: Any) -> bool:
    """Equality of decoded JSON as Go's ``reflect.DeepEqual`` sees it: ``true`` is not ``1``, ``1`` not ``1.0``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(deep_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(map(deep_equal, a, b))
    return bool(a == b)


def unchanged(value: Any, old: Any, schema: Schema) -> bool:
    """Whether ``value`` equals its correlated ``old`` value as ratcheting compares them.

    Map-list items compare by key, whatever their order. As in the real API, an object with a field the
    schema does not describe (``apiVersion``/``kind``/``metadata`` at the root, preserved unknown fields)
    never counts as unchanged.
    """
    if type(value) is not type(old):
        return False
    if isinstance(value, dict):
        return len(value) == len(old) and all(
            k in old and (sub := property_schema(schema, k)) is not None and unchanged(v, old[k], sub)
            for k, v in value.items()
        )
    if isinstance(value, list):
        items = schema.get("items")
        if len(value) != len(old):
            return False
        if not isinstance(items, dict) or schema.get("x-kubernetes-list-type") in ("set", "atomic"):
            return deep_equal(value, old)
        pairs = zip(value, old_items(value, old, schema), strict=True)
        return all(o is not MISSING and unchanged(v, o, items) for v, o in pairs)
    return bool(value == old)


def ratcheted(obj: Any, old: Any, schema: Schema, path: Iterable[Any]) -> bool:
    """Whether a failure at ``path`` lies in a subtree left unchanged since ``old``."""
    for part in path:
        if isinstance(part, int):
            sub = schema.get("items") if isinstance(obj, list) else None
            old_sub = old_items(obj, old, schema)[part] if sub is not None else MISSING
        else:
            sub = property_schema(schema, part) if isinstance(obj, dict) else None
            old_sub = old_field(old, part)
        if not isinstance(sub, dict) or old_sub is MISSING:
            break
        obj, old, schema = obj[part], old_sub, sub
    return unchanged(obj, old, schema)
