"""Object operations (create, read, list, update, patch) on the store, with admission and hooks.

Deletion, finalizers and garbage collection live in ``deletion``.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any

from . import crds, lifecycle, patch
from .errors import APIError, Cause, already_exists, conflict, invalid, not_found
from .resources import Registry, ResourceType
from .selectors import make_predicate
from .store import Obj, Store
from .validation import Admission

NAMESPACE_GR = ("", "namespaces")


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"  # Ignore | Warn | Strict
    field_manager: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ListOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    limit: int = 0
    continue_token: str | None = None


def _encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}/{key[1]}".encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        namespace, _, name = base64.urlsafe_b64decode(token.encode()).decode().partition("/")
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"invalid continue token: {token!r}") from exc
    return (namespace, name)


class ObjectAPI:
    def __init__(self, store: Store, registry: Registry, admission: Admission) -> None:
        self.store = store
        self.registry = registry
        self.admission = admission
        self._next_cluster_ip = 1

    # -- reads ---------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.store.get(rt.group_resource, namespace or "", name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return lifecycle.served_as(rt, obj)

    def list_collection(self, rt: ResourceType, namespace: str | None, options: ListOptions) -> Obj:
        predicate = make_predicate(options.label_selector, options.field_selector)
        items = [o for o in self.store.objects(rt.group_resource, namespace) if predicate(o)]
        meta: Obj = {"resourceVersion": str(self.store.resource_version)}
        if options.continue_token:
            after = _decode_continue(options.continue_token)
            items = [o for o in items if self._key(o) > after]
        if options.limit and len(items) > options.limit:
            meta["continue"] = _encode_continue(self._key(items[options.limit - 1]))
            meta["remainingItemCount"] = len(items) - options.limit
            items = items[: options.limit]
        return {
            "kind": rt.list_kind_name,
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [lifecycle.served_as(rt, o) for o in items],
        }

    @staticmethod
    def _key(obj: Obj) -> tuple[str, str]:
        return (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])

    # -- writes --------------------------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str | None, body: Any, opts: WriteOptions) -> Obj:
        obj = lifecycle.check_identity(rt, body, namespace if rt.namespaced else None, None)
        if rt.namespaced:
            self._require_namespace(obj["metadata"].get("namespace"))
        obj = lifecycle.prepare_create(rt, obj)
        meta = obj["metadata"]
        if self.store.get(rt.group_resource, meta.get("namespace") or "", meta["name"]) is not None:
            raise already_exists(rt.plural, rt.group, meta["name"])
        obj = self._admit(rt, obj, None, opts)
        if opts.dry_run:
            return obj
        stored = self.store.put(rt.group_resource, obj, "ADDED")
        self._after_write(rt, stored)
        return lifecycle.served_as(rt, stored)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None,
        opts: WriteOptions,
    ) -> Obj:
        new = lifecycle.check_identity(rt, body, namespace, name)
        old = self.store.get(rt.group_resource, namespace or "", name)
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        wanted_rv = new["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        return self._commit(rt, old, new, subresource, opts)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        content_type: str,
        subresource: str | None,
        opts: WriteOptions,
    ) -> Obj:
        old = self.store.get(rt.group_resource, namespace or "", name)
        if content_type == patch.APPLY_PATCH:
            if not opts.field_manager:
                raise invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [Cause("fieldManager", "Required value: is required for apply patch", "FieldValueRequired")],
                )
            if old is None and subresource is None:
                applied = lifecycle.check_identity(rt, body, namespace, name)
                return self.create(rt, namespace, applied, opts)
        if old is None:
            raise not_found(rt.plural, rt.group, name)
        current = copy.deepcopy(lifecycle.served_as(rt, old))
        patched = patch.patch_object(content_type, current, body, rt.builtin)
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise APIError(422, "the patched object must remain an object with metadata")
        wanted_rv = patched["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        new = lifecycle.check_identity(rt, patched, namespace, name)
        return self._commit(rt, old, new, subresource, opts)

    def _commit(self, rt: ResourceType, old: Obj, new: Obj, subresource: str | None, opts: WriteOptions) -> Obj:
        merged = lifecycle.prepare_update(rt, old, new, subresource)
        merged = self._admit(rt, merged, old, opts)
        if lifecycle.same_object(old, merged) or opts.dry_run:
            return lifecycle.served_as(rt, old if not opts.dry_run else merged)
        meta = merged["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            from .deletion import finalize_removal

            return lifecycle.served_as(rt, finalize_removal(self, rt.group_resource, merged))
        stored = self.store.put(rt.group_resource, merged, "MODIFIED")
        self._after_write(rt, stored)
        return lifecycle.served_as(rt, stored)

    def put_modified(self, gr: tuple[str, str], obj: Obj) -> Obj:
        """Store a server-side modification (deletion bookkeeping) without admission."""
        return self.store.put(gr, obj, "MODIFIED")

    # -- helpers -------------------------------------------------------------------------------
    def _require_namespace(self, namespace: str | None) -> None:
        if not namespace:
            raise APIError(400, "the server could not find the requested resource: a namespace is required")
        ns = self.store.get(NAMESPACE_GR, "", namespace)
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise APIError(
                403,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _admit(self, rt: ResourceType, obj: Obj, old: Obj | None, opts: WriteOptions) -> Obj:
        if rt.group_resource == crds.CRD_GR:
            crds.check_crd(obj)
            obj["status"] = crds.crd_status(obj)
            if old is None:
                finalizers = obj["metadata"].setdefault("finalizers", [])
                if crds.CLEANUP_FINALIZER not in finalizers:
                    finalizers.append(crds.CLEANUP_FINALIZER)
        if rt.group_resource == ("", "services"):
            self._allocate_cluster_ip(obj, old)
        return self.admission.admit(rt, obj, old, opts.field_validation, opts.warnings)

    def _allocate_cluster_ip(self, service: Obj, old: Obj | None) -> None:
        """Services get a stable virtual IP from 127.32.0.0/11 (headless ones keep ``None``).

        Local-cluster deviation: a real cluster uses a private service range (often 10.96.0.0/12); here every
        address must be on loopback, where the kubelet's service proxy listens (pods live in 127.64.0.0/10).
        """
        spec = service.setdefault("spec", {})
        previous = ((old or {}).get("spec") or {}).get("clusterIP")
        if spec.get("clusterIP") in (None, ""):
            if previous:
                spec["clusterIP"] = previous
            else:
                n = self._next_cluster_ip
                self._next_cluster_ip += 1
                spec["clusterIP"] = f"127.32.{n // 254}.{n % 254 + 1}"
        if spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])

    def _after_write(self, rt: ResourceType, obj: Obj) -> None:
        if rt.group_resource == crds.CRD_GR and not obj["metadata"].get("deletionTimestamp"):
            self.registry.set_crd(obj["metadata"]["name"], crds.crd_types(obj))
