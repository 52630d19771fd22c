"""CustomResourceDefinitions: what a CRD object makes the server serve, and its status (pure)."""

from __future__ import annotations

from typing import Any

from .errors import Cause, invalid
from .lifecycle import now_rfc3339
from .resources import ResourceType, ScalePaths

Obj = dict[str, Any]
CRD_GR = ("apiextensions.k8s.io", "customresourcedefinitions")
CRD_KIND = "CustomResourceDefinition"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def check_crd(crd: Obj) -> None:
    """The parts of CRD validation the server relies on."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = crd["metadata"].get("name", "")
    causes = []
    if name != f"{names.get('plural')}.{spec.get('group')}":
        causes.append(Cause("metadata.name", f'Invalid value: {name!r}: must be spec.names.plural+"."+spec.group'))
    if not names.get("kind"):
        causes.append(Cause("spec.names.kind", "Required value", "FieldValueRequired"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(Cause("spec.scope", f"Unsupported value: {spec.get('scope')!r}", "FieldValueNotSupported"))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(Cause("spec.versions", "Required value", "FieldValueRequired"))
    if versions and sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(Cause("spec.versions", "Invalid value: must have exactly one version marked as storage version"))
    if causes:
        raise invalid(CRD_KIND, CRD_GR[0], name, causes)


def _scale(subresources: Obj) -> ScalePaths | None:
    scale = subresources.get("scale")
    if scale is None:
        return None
    return ScalePaths(
        spec_replicas=scale.get("specReplicasPath", ".spec.replicas"),
        status_replicas=scale.get("statusReplicasPath", ".status.replicas"),
        label_selector=scale.get("labelSelectorPath"),
    )


def crd_types(crd: Obj) -> list[ResourceType]:
    """Served versions of the CRD as resource types (storage version first when preferred)."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in subresources,
                scale=_scale(subresources),
                builtin=False,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                list_kind=names.get("listKind", ""),
            )
        )
    return out


def _condition(cond_type: str, reason: str, message: str, previous: list[Obj]) -> Obj:
    for cond in previous:
        if cond.get("type") == cond_type and cond.get("status") == "True":
            return cond
    return {
        "type": cond_type,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
    }


def crd_status(crd: Obj) -> Obj:
    """Accepted names and the NamesAccepted / Established conditions."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    previous = (crd.get("status") or {}).get("conditions") or []
    return {
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", "no conflicts found", previous),
            _condition("Established", "InitialNamesAccepted", "the initial names have been accepted", previous),
        ],
    }
