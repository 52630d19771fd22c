"""The base every spec model stands on: camelCase on the wire, unknown fields rejected, all problems at once.

Models are written in Python's snake_case and read/written in Kubernetes' camelCase. A model that has rules
spanning several fields implements ``problems()``; the ``after`` validator gathers the problems of the whole
tree and raises them together, each naming its field path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

CROSS_FIELD_ERROR = "cross_field"

PATTERN_HINTS: dict[str, str] = {}
"""Plain-words explanations of regex patterns, shown instead of the regex when a value does not match."""


@dataclass(frozen=True)
class Problem:
    """One cross-field problem: where (camelCase path, relative to the model) and what to do about it."""

    path: tuple[str | int, ...]
    message: str

    def under(self, *prefix: str | int) -> Problem:
        return Problem((*prefix, *self.path), self.message)


class SpecModel(BaseModel):
    """Base of every spec model: camelCase aliases, ``extra="forbid"``, assignment checked."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=False,
        use_enum_values=True,
    )

    def problems(self) -> Iterator[Problem]:
        """Cross-field problems of this model alone; override where rules span fields."""
        return iter(())

    def all_problems(self) -> list[Problem]:
        """Problems of this model and of every nested model, with paths from here."""
        found = list(self.problems())
        for name, field in type(self).model_fields.items():
            key = field.alias or name
            found.extend(_nested_problems(getattr(self, name), key))
        return found

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON form, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _nested_problems(value: object, key: str | int) -> Iterator[Problem]:
    if isinstance(value, SpecModel):
        for problem in value.all_problems():
            yield problem.under(key)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            for problem in _nested_problems(item, index):
                yield problem.under(key)
    elif isinstance(value, dict):
        for name, item in value.items():
            for problem in _nested_problems(item, str(name)):
                yield problem.under(key)


class RootSpec(SpecModel):
    """A document's top-level spec: after its fields parse, every cross-field rule of the tree is checked."""

    @model_validator(mode="after")
    def _no_cross_field_problems(self) -> Self:
        found = self.all_problems()
        if found:
            raise PydanticCustomError(
                CROSS_FIELD_ERROR,
                "{summary}",
                {"summary": "; ".join(_format(p) for p in found), "problems": [_as_dict(p) for p in found]},
            )
        return self


def _format(problem: Problem) -> str:
    return f"{format_path(problem.path)}: {problem.message}"


def _as_dict(problem: Problem) -> dict[str, Any]:
    return {"path": list(problem.path), "message": problem.message}


def format_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    """``("training", "lr")`` → ``training.lr``; list indices as ``[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True)
class FieldError:
    """One reason a document was rejected: the field path (from the document root) and the message."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def field_errors(error: ValidationError, root: tuple[str, ...] = ()) -> list[FieldError]:
    """Flatten a pydantic ValidationError into field errors, expanding cross-field problems one by one."""
    out: list[FieldError] = []
    for item in error.errors(include_url=False):
        loc = (*root, *item["loc"])
        if item["type"] == CROSS_FIELD_ERROR:
            for problem in item.get("ctx", {}).get("problems", []):
                out.append(FieldError(format_path((*loc, *problem["path"])), problem["message"]))
            continue
        message = item["msg"]
        if item["type"] == "string_pattern_mismatch":
            pattern = str(item.get("ctx", {}).get("pattern", ""))
            message = PATTERN_HINTS.get(pattern, message)
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; fields are camelCase, see `kubectl explain`)"
        if "input" in item and item["type"] not in ("missing",) and _is_scalar(item["input"]):
            message = f"{message} (got {item['input']!r})"
        out.append(FieldError(format_path(loc), message))
    return out


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> JsonDict:
    """One CRD ``x-kubernetes-validations`` entry; the same rule is implemented in the model's ``problems()``."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def cel_rules(*rules: JsonDict) -> JsonDict:
    """``json_schema_extra`` carrying CEL rules into the generated CRD."""
    return {"x-kubernetes-validations": list(rules)}
