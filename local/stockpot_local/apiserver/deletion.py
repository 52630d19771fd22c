"""Deletion: finalizers, deletionTimestamp, graceful pod deletion, propagation and garbage collection."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import crds
from .errors import conflict, not_found
from .store import GroupResource, Obj

if TYPE_CHECKING:
    from .operations import ObjectAPI

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
PODS_GR = ("", "pods")
NAMESPACES_GR = ("", "namespaces")


@dataclass(frozen=True)
class DeleteOptions:
    propagation: str | None = None  # Background | Foreground | Orphan
    grace_period: int | None = None
    preconditions: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    @staticmethod
    def from_body(body: Any, params: dict[str, str]) -> DeleteOptions:
        body = body if isinstance(body, dict) else {}
        grace = params.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
        orphan = params.get("orphanDependents", body.get("orphanDependents"))
        propagation = params.get("propagationPolicy") or body.get("propagationPolicy")
        if propagation is None and orphan in (True, "true"):
            propagation = "Orphan"
        dry_run = params.get("dryRun") == "All" or body.get("dryRun") == ["All"]
        return DeleteOptions(
            propagation, None if grace is None else int(grace), body.get("preconditions") or {}, dry_run
        )


def _stamp(obj: Obj, grace: int = 0) -> None:
    when = datetime.now(UTC) + timedelta(seconds=grace)
    obj["metadata"].setdefault("deletionTimestamp", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    obj["metadata"].setdefault("deletionGracePeriodSeconds", grace)


def _pod_grace(pod: Obj, requested: int | None) -> int:
    """Seconds the kubelet gets to stop the pod; 0 deletes at once (unscheduled or finished pods)."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return 0
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return max(requested, 0)
    return int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))


def _check_preconditions(gr: GroupResource, obj: Obj, pre: dict[str, Any]) -> None:
    meta = obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise conflict(
            gr[1],
            gr[0],
            meta["name"],
            f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}",
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise conflict(
            gr[1],
            gr[0],
            meta["name"],
            "the object has been modified; please apply your changes to the latest version and try again",
        )


def delete(api: ObjectAPI, gr: GroupResource, namespace: str, name: str, opts: DeleteOptions) -> tuple[Obj, bool]:
    """Delete one object. Returns the object and whether it is gone (False: deletion in progress)."""
    obj = api.store.get(gr, namespace, name)
    if obj is None:
        raise not_found(gr[1], gr[0], name)
    _check_preconditions(gr, obj, opts.preconditions)
    if opts.dry_run:
        return obj, True
    if gr == NAMESPACES_GR:
        return _terminate_namespace(api, obj), False
    if gr == crds.CRD_GR:
        return _terminate_crd(api, obj)
    return _delete_object(api, gr, obj, opts)


def _delete_object(api: ObjectAPI, gr: GroupResource, obj: Obj, opts: DeleteOptions) -> tuple[Obj, bool]:
    meta = obj["metadata"]
    if opts.propagation == "Orphan":
        _orphan_dependents(api, meta["uid"])
    if gr == PODS_GR and not meta.get("deletionTimestamp"):
        grace = _pod_grace(obj, opts.grace_period)
        if grace > 0:
            pod = copy.deepcopy(obj)
            _stamp(pod, grace)
            return api.put_modified(gr, pod), False
    if meta.get("deletionTimestamp"):
        if meta.get("finalizers"):
            return obj, False
        return finalize_removal(api, gr, obj), True
    if opts.propagation == "Foreground" and api.store.dependents(meta["uid"]):
        return _delete_foreground(api, gr, obj), False
    if meta.get("finalizers"):
        marked = copy.deepcopy(obj)
        _stamp(marked)
        return api.put_modified(gr, marked), False
    return finalize_removal(api, gr, obj), True


def _delete_foreground(api: ObjectAPI, gr: GroupResource, obj: Obj) -> Obj:
    owner = copy.deepcopy(obj)
    _stamp(owner)
    owner["metadata"]["finalizers"] = [*(owner["metadata"].get("finalizers") or []), FOREGROUND]
    stored = api.put_modified(gr, owner)
    for dep_gr, dep in api.store.dependents(owner["metadata"]["uid"]):
        if not dep["metadata"].get("deletionTimestamp"):
            _delete_object(api, dep_gr, dep, DeleteOptions(propagation="Foreground"))
    _release_foreground_owner(api, stored["metadata"]["uid"])
    current = api.store.by_uid(stored["metadata"]["uid"])
    return current[1] if current else stored


def _orphan_dependents(api: ObjectAPI, owner_uid: str) -> None:
    for dep_gr, dep in api.store.dependents(owner_uid):
        freed = copy.deepcopy(dep)
        refs = [r for r in freed["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
        if refs:
            freed["metadata"]["ownerReferences"] = refs
        else:
            freed["metadata"].pop("ownerReferences", None)
        api.put_modified(dep_gr, freed)


def finalize_removal(api: ObjectAPI, gr: GroupResource, obj: Obj) -> Obj:
    """Remove the object for good, then let the garbage collector and namespace lifecycle react."""
    removed = api.store.remove(gr, obj)
    meta = removed["metadata"]
    if gr == crds.CRD_GR:
        _remove_crd(api, removed)
    _collect_dependents(api, meta["uid"])
    for ref in meta.get("ownerReferences") or ():
        _release_foreground_owner(api, ref.get("uid", ""))
    namespace = meta.get("namespace")
    if namespace:
        _maybe_finish_namespace(api, namespace)
    if gr[0] and api.registry.versions_of(*gr) and not api.registry.versions_of(*gr)[0].builtin:
        _maybe_finish_crd(api, gr)
    return removed


def _custom_gr(crd: Obj) -> GroupResource:
    return (crd["spec"]["group"], crd["spec"]["names"]["plural"])


def _terminate_crd(api: ObjectAPI, crd: Obj) -> tuple[Obj, bool]:
    """Like the real API: custom resources are deleted first (their finalizers run), then the CRD."""
    if not crd["metadata"].get("finalizers"):
        return finalize_removal(api, crds.CRD_GR, crd), True
    if not crd["metadata"].get("deletionTimestamp"):
        marked = copy.deepcopy(crd)
        _stamp(marked)
        api.put_modified(crds.CRD_GR, marked)
        gr = _custom_gr(crd)
        for obj in api.store.objects(gr):
            if not obj["metadata"].get("deletionTimestamp"):
                _delete_object(api, gr, obj, DeleteOptions())
    _maybe_finish_crd(api, _custom_gr(crd))
    current = api.store.get(crds.CRD_GR, "", crd["metadata"]["name"])
    return (current, False) if current is not None else (crd, True)


def _maybe_finish_crd(api: ObjectAPI, gr: GroupResource) -> None:
    crd = api.store.get(crds.CRD_GR, "", f"{gr[1]}.{gr[0]}")
    if crd is None or not crd["metadata"].get("deletionTimestamp") or api.store.objects(gr):
        return
    finalizers = [f for f in crd["metadata"].get("finalizers") or [] if f != crds.CLEANUP_FINALIZER]
    released = copy.deepcopy(crd)
    released["metadata"]["finalizers"] = finalizers
    if finalizers:
        api.put_modified(crds.CRD_GR, released)
    else:
        finalize_removal(api, crds.CRD_GR, released)


def _remove_crd(api: ObjectAPI, crd: Obj) -> None:
    api.registry.remove_crd(crd["metadata"]["name"])
    gr = _custom_gr(crd)
    for obj in api.store.objects(gr):
        finalize_removal(api, gr, obj)


def _collect_dependents(api: ObjectAPI, owner_uid: str) -> None:
    """Delete dependents whose owners are all gone; drop the dangling reference from the others."""
    for dep_gr, dep in api.store.dependents(owner_uid):
        refs = dep["metadata"].get("ownerReferences") or []
        alive = [r for r in refs if r.get("uid") != owner_uid and api.store.by_uid(r.get("uid", "")) is not None]
        if alive:
            kept = copy.deepcopy(dep)
            kept["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
            api.put_modified(dep_gr, kept)
        elif not dep["metadata"].get("deletionTimestamp"):
            _delete_object(api, dep_gr, dep, DeleteOptions(propagation="Background"))


def _release_foreground_owner(api: ObjectAPI, owner_uid: str) -> None:
    found = api.store.by_uid(owner_uid)
    if found is None:
        return
    gr, owner = found
    if FOREGROUND not in (owner["metadata"].get("finalizers") or []):
        return
    blocking = [d for _, d in api.store.dependents(owner_uid) if _blocks(d, owner_uid)]
    if blocking:
        return
    released = copy.deepcopy(owner)
    released["metadata"]["finalizers"] = [f for f in owner["metadata"]["finalizers"] if f != FOREGROUND]
    if released["metadata"]["finalizers"]:
        api.put_modified(gr, released)
    else:
        released["metadata"].pop("finalizers")
        finalize_removal(api, gr, released)


def _blocks(dependent: Obj, owner_uid: str) -> bool:
    return any(
        r.get("uid") == owner_uid and r.get("blockOwnerDeletion")
        for r in dependent["metadata"].get("ownerReferences") or ()
    )


def _terminate_namespace(api: ObjectAPI, ns: Obj) -> Obj:
    name = ns["metadata"]["name"]
    if not ns["metadata"].get("deletionTimestamp"):
        terminating = copy.deepcopy(ns)
        _stamp(terminating)
        terminating["status"] = {"phase": "Terminating"}
        api.put_modified(NAMESPACES_GR, terminating)
        for gr in api.store.group_resources():
            for obj in api.store.objects(gr, name):
                current = api.store.get(gr, name, obj["metadata"]["name"])
                if current is not None and not current["metadata"].get("deletionTimestamp"):
                    _delete_object(api, gr, current, DeleteOptions())
    _maybe_finish_namespace(api, name)
    return api.store.get(NAMESPACES_GR, "", name) or ns


def _maybe_finish_namespace(api: ObjectAPI, namespace: str) -> None:
    ns = api.store.get(NAMESPACES_GR, "", namespace)
    if ns is None or not ns["metadata"].get("deletionTimestamp") or ns["metadata"].get("finalizers"):
        return
    if any(api.store.objects(gr, namespace) for gr in api.store.group_resources()):
        return
    api.store.remove(NAMESPACES_GR, ns)


def delete_collection(api: ObjectAPI, gr: GroupResource, objs: list[Obj], opts: DeleteOptions) -> list[Obj]:
    out = []
    for obj in objs:
        current = api.store.get(gr, obj["metadata"].get("namespace") or "", obj["metadata"]["name"])
        if current is not None:
            out.append(
                delete(api, gr, current["metadata"].get("namespace") or "", current["metadata"]["name"], opts)[0]
            )
    return out
