"""Validation of built-in objects against the real Kubernetes JSON schemas (kubernetes-validate).

``kubernetes_validate.validate`` re-reads and re-parses a 1.4 MB definitions file on every call, so the
compiled validators are built once per (apiVersion, kind) from the same schema files and cached.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import referencing
from kubernetes_validate import utils as kv

KUBERNETES_VERSION = "1.33"


@functools.cache
def _definitions(strict: bool) -> referencing.Resource[Any]:
    return referencing.Resource.from_contents(
        kv.schema_contents(_schema_path("_definitions.json", strict), KUBERNETES_VERSION)
    )


def _schema_path(filename: str, strict: bool) -> str:
    version = next(v for v in reversed(kv.all_versions()) if kv.major_minor(v) <= KUBERNETES_VERSION)
    return f"kubernetes-json-schema/v{version}-local{'-strict' if strict else ''}/{filename}"


@functools.cache
def validator_for(api_version: str, kind: str, strict: bool = True) -> jsonschema.protocols.Validator | None:
    """The compiled validator of a built-in kind, or None when no schema exists for it."""
    gv = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(_schema_path(f"{kind.lower()}-{gv}.json", strict), KUBERNETES_VERSION)
    except FileNotFoundError:
        return None
    resource = referencing.Resource.from_contents(schema)
    registry: referencing.Registry[Any] = resource @ referencing.Registry()
    registry = _definitions(strict) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def schema_errors(obj: dict[str, Any], strict: bool = True) -> list[jsonschema.ValidationError]:
    validator = validator_for(obj.get("apiVersion", ""), obj.get("kind", ""), strict)
    if validator is None:
        return []
    return sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))


def definitions_document(strict: bool = False) -> dict[str, Any]:
    """The raw definitions document (``{"definitions": {...}}``), for the OpenAPI endpoint."""
    contents: dict[str, Any] = _definitions(strict).contents
    return contents
