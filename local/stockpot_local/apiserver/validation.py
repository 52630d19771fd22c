"""Admission of written objects: schema validation, pruning, defaults and CEL rules."""

from __future__ import annotations

from typing import Any

import jsonschema

from . import builtin_schemas, cel, defaults, semantics, structural
from .errors import APIError, Cause, invalid
from .resources import ResourceType

Obj = dict[str, Any]


def _unknown_fields(error: jsonschema.ValidationError) -> list[tuple[list[Any], str]]:
    known = set((error.schema.get("properties") or {}) if isinstance(error.schema, dict) else ())
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [(list(error.absolute_path), key) for key in instance if key not in known]


def _builtin_cause(error: jsonschema.ValidationError) -> Cause:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return Cause(structural.field_path([*path, missing]), "Required value", "FieldValueRequired")
    return Cause(structural.field_path(path), f"Invalid value: {error.message}")


def _drop(obj: Obj, path: list[Any], key: str) -> None:
    node: Any = obj
    for part in path:
        node = node[part]
    node.pop(key, None)


class Admission:
    """Validates (and prunes/defaults) objects before they are stored."""

    def admit(self, rt: ResourceType, obj: Obj, old: Obj | None, field_validation: str, warnings: list[str]) -> Obj:
        meta_causes = semantics.metadata_causes(obj)
        if meta_causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), meta_causes)
        if rt.builtin:
            defaults.apply_builtin_defaults(obj)
            self._admit_builtin(rt, obj, field_validation, warnings)
        elif rt.schema is not None:
            self._admit_custom(rt, obj, old, field_validation, warnings)
        return obj

    def _admit_builtin(self, rt: ResourceType, obj: Obj, field_validation: str, warnings: list[str]) -> None:
        errors = builtin_schemas.schema_errors(obj, strict=True)
        unknown = [u for e in errors if e.validator == "additionalProperties" for u in _unknown_fields(e)]
        causes = [_builtin_cause(e) for e in errors if e.validator != "additionalProperties"]
        causes = causes or semantics.semantic_causes(obj)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)
        self._handle_unknown(obj, [structural.field_path([*p, k]) for p, k in unknown], field_validation, warnings)
        for path, key in unknown:
            _drop(obj, path, key)

    def _admit_custom(
        self, rt: ResourceType, obj: Obj, old: Obj | None, field_validation: str, warnings: list[str]
    ) -> None:
        schema = rt.schema or {}
        removed = structural.prune(obj, schema, root=True)
        self._handle_unknown(obj, removed, field_validation, warnings)
        structural.apply_defaults(obj, schema)
        causes = structural.schema_causes(obj, schema, old)
        if not causes:
            causes = cel.cel_causes(obj, old, schema)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)

    @staticmethod
    def _handle_unknown(obj: Obj, paths: list[str], field_validation: str, warnings: list[str]) -> None:
        if not paths:
            return
        if field_validation == "Strict":
            listed = ", ".join(f'unknown field "{p}"' for p in paths)
            raise APIError(
                400,
                f'{obj.get("kind", "")} in version "{obj.get("apiVersion", "")}" cannot be handled: strict decoding error: {listed}',
            )
        if field_validation == "Warn":
            warnings.extend(f'unknown field "{p}"' for p in paths)
