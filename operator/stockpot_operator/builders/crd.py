"""CustomResourceDefinitions, generated from the pydantic models (never hand-edited).

pydantic emits JSON Schema 2020-12; a CRD wants a structural OpenAPI v3.0 schema: no $ref, no anyOf for
optionals, boolean exclusive bounds, and Kubernetes extensions (list types, CEL rules, preserved fields).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema, to_jsonable_python

from stockpot_operator.api.kinds import CATEGORY, GROUP, VERSION, Kind

Schema = dict[str, Any]

_DROP_KEYS = frozenset({"title", "examples", "$defs"})


class _WithFactoryDefaults(GenerateJsonSchema):
    """Also emit defaults made by ``default_factory`` (pydantic leaves them out).

    The API server defaults an absent object only if its schema says so; without this a CEL rule such as
    ``self.resources.gpus > 0`` would fail on a resource that omits ``resources``. Nested models become their
    non-default fields only (usually ``{}``), and the server fills in the rest from the nested defaults.
    """

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().default_schema(schema)
        json_schema = self.generate_inner(schema["schema"])
        json_schema["default"] = _factory_default(factory())  # type: ignore[call-arg]
        return json_schema


def _factory_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if isinstance(value, list):
        return [_factory_default(item) for item in value]
    return to_jsonable_python(value)


def model_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of a model."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults)
    schema: Schema = _structural(raw, raw.get("$defs", {}))
    return schema


def _structural(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = _resolve(node, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = _structural(value, defs)
    _bounds_to_openapi30(out)
    if out.get("additionalProperties") is False:
        # Structural schemas forbid it; the API server prunes unknown fields and kubectl's strict field
        # validation reports them, and the admission webhook rejects them by name.
        del out["additionalProperties"]
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
    return out


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline $ref and collapse ``anyOf: [X, null]`` (an optional field) into X, keeping the outer keys."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    variants = node.get("anyOf")
    if variants is not None:
        concrete = [v for v in variants if v.get("type") != "null"]
        if len(concrete) != 1:
            raise ValueError(f"a CRD schema cannot express the union {variants}; give the field one type")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", 0) is None:
            del rest["default"]
        return _resolve({**concrete[0], **rest}, defs)
    return node


def _bounds_to_openapi30(node: Schema) -> None:
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[plain] = value
            node[bound] = True


def _conditions_as_map(status: Schema) -> None:
    conditions = status.get("properties", {}).get("conditions")
    if conditions:
        conditions["x-kubernetes-list-type"] = "map"
        conditions["x-kubernetes-list-map-keys"] = ["type"]


def crd(kind: Kind) -> Schema:
    """The CustomResourceDefinition of one kind."""
    spec = model_schema(kind.spec)
    status = model_schema(kind.status)
    _conditions_as_map(status)
    subresources: Schema = {"status": {}}
    if kind.scale is not None:
        subresources["scale"] = {
            "specReplicasPath": kind.scale.spec_replicas_path,
            "statusReplicasPath": kind.scale.status_replicas_path,
            "labelSelectorPath": kind.scale.label_selector_path,
        }
    root = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "stockpot.dev/v1alpha1"},
            "kind": {"type": "string", "description": kind.kind},
            "metadata": {"type": "object", "description": "Standard object metadata."},
            "spec": spec,
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "stockpot"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": subresources,
                    "additionalPrinterColumns": [column.to_crd() for column in kind.columns],
                }
            ],
        },
    }
