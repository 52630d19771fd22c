"""Watches: the initial events of a watch and a subscriber queue filtered by namespace and selectors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .errors import bad_request
from .lifecycle import served_as
from .resources import ResourceType
from .store import Event, Obj, Store

WatchItem = tuple[str, Obj]


@dataclass(frozen=True)
class WatchFilter:
    namespace: str | None
    predicate: Callable[[Obj], bool]

    def _in_scope(self, obj: Obj) -> bool:
        return self.namespace is None or obj["metadata"].get("namespace") == self.namespace

    def matches(self, obj: Obj | None) -> bool:
        return obj is not None and self._in_scope(obj) and self.predicate(obj)

    def translate(self, event: Event) -> WatchItem | None:
        """The event as this watcher sees it: objects entering or leaving the selection become ADDED/DELETED."""
        now = self.matches(event.obj) if event.type != "DELETED" else False
        before = self.matches(event.old)
        if event.type == "DELETED":
            return ("DELETED", event.obj) if before else None
        if now and before:
            return ("MODIFIED", event.obj)
        if now:
            return ("ADDED", event.obj)
        if before:
            return ("DELETED", event.obj)
        return None


class Watcher:
    """A store subscriber that queues the events one watch request will stream."""

    def __init__(self, store: Store, rt: ResourceType, flt: WatchFilter) -> None:
        self.group_resource = rt.group_resource
        self._store = store
        self._rt = rt
        self._filter = flt
        self._queue: asyncio.Queue[WatchItem | None] = asyncio.Queue()

    def offer(self, event: Event) -> None:
        item = self._filter.translate(event)
        if item is not None:
            self._queue.put_nowait((item[0], served_as(self._rt, item[1])))

    def close(self) -> None:
        self._queue.put_nowait(None)

    def initial(self, resource_version: str | None) -> list[WatchItem]:
        """Subscribe, and return what precedes the live stream: a replay or synthetic ADDED events.

        Must run without awaiting in between so that no event is lost or duplicated.
        """
        self._store.subscribe(self)
        if resource_version in (None, "", "0"):
            objs = self._store.objects(self._rt.group_resource, self._filter.namespace)
            return [("ADDED", served_as(self._rt, o)) for o in objs if self._filter.predicate(o)]
        try:
            since = int(resource_version)
        except ValueError as exc:
            raise bad_request(f"invalid resourceVersion {resource_version!r}") from exc
        items = (self._filter.translate(e) for e in self._store.events_since(self._rt.group_resource, since))
        return [(t, served_as(self._rt, o)) for t, o in (i for i in items if i is not None)]

    async def next(self, timeout: float) -> WatchItem | None:
        """The next event; ``("BOOKMARK", {})`` when ``timeout`` passed; None when closed."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return ("BOOKMARK", {})

    def unsubscribe(self) -> None:
        self._store.unsubscribe(self)
