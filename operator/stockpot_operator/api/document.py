"""The boundary: a whole custom resource document in, a validated spec model (or every error) out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from stockpot_runtime.spec import FieldError, RootSpec, field_errors

from .kinds import API_VERSION, KINDS_BY_NAME


class DocumentError(ValueError):
    """A resource that cannot be accepted; ``errors`` names each field (from the document root) and the fix."""

    def __init__(self, kind: str, name: str, errors: list[FieldError]) -> None:
        self.kind = kind
        self.name = name
        self.errors = errors
        lines = "; ".join(str(e) for e in errors)
        super().__init__(f'{kind} "{name}" is invalid: {lines}')


def parse_spec(document: Mapping[str, Any]) -> RootSpec:
    """Validate a FineTune/Export/EvalGate/InferenceService document and return its parsed spec."""
    kind_name = str(document.get("kind", ""))
    name = str((document.get("metadata") or {}).get("name", ""))
    kind = KINDS_BY_NAME.get(kind_name)
    if kind is None:
        known = ", ".join(KINDS_BY_NAME)
        raise DocumentError(
            kind_name, name, [FieldError("kind", f"unknown kind {kind_name!r}; expected one of {known}")]
        )
    if document.get("apiVersion") != API_VERSION:
        got = document.get("apiVersion")
        raise DocumentError(kind_name, name, [FieldError("apiVersion", f"expected {API_VERSION}, got {got!r}")])
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        raise DocumentError(kind_name, name, [FieldError("spec", "required: the resource has no spec")])
    try:
        return kind.spec.model_validate(spec)
    except ValidationError as error:
        raise DocumentError(kind_name, name, field_errors(error, root=("spec",))) from None
