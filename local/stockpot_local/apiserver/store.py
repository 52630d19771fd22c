"""In-memory object store: one global resourceVersion counter and a bounded event log for watches.

Stored objects are never mutated after they are put: every write stores a fresh dict, so readers and
watch events can share them without copying.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import gone

GroupResource = tuple[str, str]
ObjectKey = tuple[str, str]  # (namespace or "", name)
Obj = dict[str, Any]


@dataclass(frozen=True)
class Event:
    rv: int
    group_resource: GroupResource
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None = None


class Subscriber(Protocol):
    group_resource: GroupResource

    def offer(self, event: Event) -> None: ...


def key_of(obj: Obj) -> ObjectKey:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    def __init__(self, window: int = 10_000) -> None:
        self._objects: dict[GroupResource, dict[ObjectKey, Obj]] = {}
        self._rv = 0
        self._log: deque[Event] = deque(maxlen=window)
        self._compacted = 0
        self._subscribers: set[Subscriber] = set()
        self._dependents: dict[str, set[tuple[GroupResource, ObjectKey]]] = {}
        self._by_uid: dict[str, tuple[GroupResource, ObjectKey]] = {}

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, gr: GroupResource, namespace: str, name: str) -> Obj | None:
        return self._objects.get(gr, {}).get((namespace, name))

    def objects(self, gr: GroupResource, namespace: str | None = None) -> list[Obj]:
        objs = self._objects.get(gr, {})
        if namespace is None:
            return [objs[k] for k in sorted(objs)]
        return [objs[k] for k in sorted(objs) if k[0] == namespace]

    def group_resources(self) -> list[GroupResource]:
        return [gr for gr, objs in self._objects.items() if objs]

    def dependents(self, owner_uid: str) -> list[tuple[GroupResource, Obj]]:
        """Objects with an ownerReference to ``owner_uid``."""
        out = []
        for gr, key in sorted(self._dependents.get(owner_uid, ())):
            obj = self._objects.get(gr, {}).get(key)
            if obj is not None:
                out.append((gr, obj))
        return out

    def by_uid(self, uid: str) -> tuple[GroupResource, Obj] | None:
        where = self._by_uid.get(uid)
        if where is None:
            return None
        obj = self._objects.get(where[0], {}).get(where[1])
        return None if obj is None else (where[0], obj)

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def put(self, gr: GroupResource, obj: Obj, event_type: str) -> Obj:
        """Store ``obj`` (taking ownership) under a fresh resourceVersion and emit the event."""
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        key = key_of(obj)
        old = self._objects.setdefault(gr, {}).get(key)
        if old is not None:
            self._unindex(gr, key, old)
        self._objects[gr][key] = obj
        self._index(gr, key, obj)
        self._emit(Event(rv, gr, event_type, obj, old))
        return obj

    def remove(self, gr: GroupResource, obj: Obj) -> Obj:
        """Remove the object; the DELETED event carries it with the deletion's resourceVersion."""
        key = key_of(obj)
        stored = self._objects.get(gr, {}).pop(key, None)
        if stored is None:
            return obj
        self._unindex(gr, key, stored)
        rv = self.next_rv()
        final = {**stored, "metadata": {**stored["metadata"], "resourceVersion": str(rv)}}
        self._emit(Event(rv, gr, "DELETED", final, stored))
        return final

    def events_since(self, gr: GroupResource, rv: int) -> Iterable[Event]:
        """Retained events of ``gr`` newer than ``rv``; 410 Gone when some were already dropped."""
        if rv < self._compacted:
            raise gone(f"too old resource version: {rv} ({self._compacted + 1})")
        return [e for e in self._log if e.rv > rv and e.group_resource == gr]

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def _emit(self, event: Event) -> None:
        if len(self._log) == self._log.maxlen:
            self._compacted = self._log[0].rv
        self._log.append(event)
        for sub in list(self._subscribers):
            if sub.group_resource == event.group_resource:
                sub.offer(event)

    def _index(self, gr: GroupResource, key: ObjectKey, obj: Obj) -> None:
        self._by_uid[obj["metadata"].get("uid", "")] = (gr, key)
        for ref in obj["metadata"].get("ownerReferences") or ():
            self._dependents.setdefault(ref.get("uid", ""), set()).add((gr, key))

    def _unindex(self, gr: GroupResource, key: ObjectKey, obj: Obj) -> None:
        self._by_uid.pop(obj["metadata"].get("uid", ""), None)
        for ref in obj["metadata"].get("ownerReferences") or ():
            deps = self._dependents.get(ref.get("uid", ""))
            if deps is not None:
                deps.discard((gr, key))
                if not deps:
                    del self._dependents[ref.get("uid", "")]
