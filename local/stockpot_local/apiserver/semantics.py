"""Cross-field rules of built-in kinds that their JSON schemas cannot express (pure)."""

from __future__ import annotations

import re
from typing import Any

from .errors import Cause
from .selectors import label_selector_from_dict

Obj = dict[str, Any]

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_KINDS = {("v1", "Namespace"), ("v1", "Service")}
SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)


def _name_causes(obj: Obj) -> list[Cause]:
    name = str(obj["metadata"].get("name", ""))
    if str(obj.get("apiVersion", "")).startswith("rbac.authorization.k8s.io/"):
        bad_segment = name in (".", "..") or "/" in name or "%" in name
        return [Cause("metadata.name", f'Invalid value: "{name}": may not contain "/" or "%"')] if bad_segment else []
    if (obj.get("apiVersion"), obj.get("kind")) in LABEL_KINDS:
        if len(name) > 63 or not DNS_LABEL.match(name):
            return [
                Cause(
                    "metadata.name",
                    f"Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                )
            ]
        return []
    if len(name) > 253 or not SUBDOMAIN.match(name):
        return [Cause("metadata.name", f'Invalid value: "{name}": {SUBDOMAIN_HELP}')]
    return []


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(LABEL_NAME.match(name))


def _label_causes(obj: Obj) -> list[Cause]:
    causes = []
    for key, value in (obj["metadata"].get("labels") or {}).items():
        if not _label_key_ok(str(key)):
            causes.append(
                Cause(
                    "metadata.labels",
                    f"Invalid value: \"{key}\": name part must be no more than 63 characters and consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        text = value if isinstance(value, str) else ""
        if not isinstance(value, str) or len(text) > 63 or (text and not LABEL_NAME.match(text)):
            causes.append(
                Cause(
                    "metadata.labels",
                    f"Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)",
                )
            )
    return causes


def metadata_causes(obj: Obj) -> list[Cause]:
    """Name and label syntax, checked for every kind as the real API does."""
    return _name_causes(obj) + _label_causes(obj)


def _selector_matches_template(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict):
        return []
    if not all(r.matches(labels) for r in label_selector_from_dict(selector)):
        return [Cause("spec.template.metadata.labels", "Invalid value: `selector` does not match template `labels`")]
    return []


def _job_restart_policy(obj: Obj) -> list[Cause]:
    template_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    policy = template_spec.get("restartPolicy")
    if policy not in ("Never", "OnFailure"):
        return [
            Cause(
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        ]
    return []


def semantic_causes(obj: Obj) -> list[Cause]:
    kind = (obj.get("apiVersion"), obj.get("kind"))
    if kind in (("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet")):
        return _selector_matches_template(obj)
    if kind == ("batch/v1", "Job"):
        return _job_restart_policy(obj) + _selector_matches_template(obj)
    return []
