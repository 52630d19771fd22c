"""What every child object of a Stockpot resource shares: its name, labels, owner reference and pod hardening.

Names are deterministic (``<parent>-<suffix>``), so a restarted operator finds the children it already made; a
name that would exceed the 63 characters Kubernetes allows in labels is shortened with a stable hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stockpot_operator.api.kinds import API_VERSION

Obj = dict[str, Any]
MAX_NAME = 63
MANAGED_BY = "stockpot"
PART_OF = "app.kubernetes.io/part-of"


@dataclass(frozen=True)
class Parent:
    """The custom resource that owns the children."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int = 1

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Parent:
        meta = body["metadata"]
        return cls(body["kind"], meta["name"], meta["namespace"], meta["uid"], int(meta.get("generation") or 1))

    def owner_reference(self) -> Obj:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def labels(self, component: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "app.kubernetes.io/component": component,
            PART_OF: "stockpot",
            f"stockpot.dev/{self.kind.lower()}": self.name,
        }

    def metadata(self, name: str, component: str, **extra_labels: str) -> Obj:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {**self.labels(component), **extra_labels},
            "ownerReferences": [self.owner_reference()],
        }


def child_name(parent: str, suffix: str, limit: int = MAX_NAME) -> str:
    """``<parent>-<suffix>``, shortened with a hash of the full name when longer than ``limit``."""
    full = f"{parent}-{suffix}"
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{parent[:keep].rstrip('-')}-{digest}-{suffix}"


def restricted_pod_security(run_as_user: int = 1000) -> Obj:
    """A pod security context meeting the 'restricted' Pod Security Standard (the runtime image runs as 1000)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "fsGroup": run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> Obj:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def service_account(parent: Parent, name: str) -> Obj:
    """An identity with no API rights (no RoleBinding names it) and no token mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": parent.metadata(name, "runtime"),
        "automountServiceAccountToken": False,
    }


def secret_env(name: str, secret: str, key: str, optional: bool = False) -> Obj:
    """An env var fed by a Secret reference: the value never passes through the operator."""
    ref: Obj = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}
