"""Informers (a watched, cached view of one resource type) and a de-duplicating work queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp

from stockpot_local.kubeclient import ApiError, KubeClient, Obj, Resource

log = logging.getLogger(__name__)

Key = tuple[str, str]
Handler = Callable[[str, Obj], None]


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata", {})
    return (str(meta.get("namespace", "")), str(meta["name"]))


def owner_uid(obj: Obj, kind: str) -> str | None:
    """The uid of the controlling owner of the given kind, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owned_pod_handler(kind: str, queue: WorkQueue, expectations: Expectations) -> Callable[[str, Obj], None]:
    """A pod event handler for a controller of ``kind``: record the event, requeue the controlling owner."""

    def handle(event_type: str, pod: Obj) -> None:
        uid = owner_uid(pod, kind)
        if uid is None:
            return
        expectations.observe(uid, event_type, pod)
        for ref in pod["metadata"].get("ownerReferences", []):
            if ref.get("uid") == uid:
                queue.add((pod["metadata"]["namespace"], ref["name"]))

    return handle


class Informer:
    """Keeps a cache of every object of one resource type, fed by list+watch, and calls handlers on change."""

    def __init__(self, client: KubeClient, resource: Resource) -> None:
        self.client = client
        self.resource = resource
        self.cache: dict[Key, Obj] = {}
        self.synced = asyncio.Event()
        self._handlers: list[Handler] = []
        self._task: asyncio.Task[None] | None = None

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def objects(self, namespace: str | None = None) -> Iterable[Obj]:
        return [o for (ns, _), o in list(self.cache.items()) if namespace is None or ns == namespace]

    def _notify(self, event_type: str, obj: Obj) -> None:
        for handler in self._handlers:
            try:
                handler(event_type, obj)
            except Exception:
                log.exception("informer handler failed for %s", key_of(obj))

    def _relist(self, listed: Obj) -> None:
        fresh = {key_of(o): o for o in listed.get("items", [])}
        gone = [self.cache[k] for k in self.cache if k not in fresh]
        self.cache = fresh
        for obj in gone:
            self._notify("DELETED", obj)
        for obj in fresh.values():
            self._notify("ADDED", obj)
        self.synced.set()

    async def _run(self) -> None:
        while True:
            try:
                async for event in self.client.watch(self.resource):
                    if event.type == "RELISTED":
                        self._relist(event.object)
                        continue
                    key = key_of(event.object)
                    if event.type == "DELETED":
                        self.cache.pop(key, None)
                    else:
                        self.cache[key] = event.object
                    self._notify(event.type, event.object)
            except asyncio.CancelledError:
                raise
            except (ApiError, aiohttp.ClientError, OSError, ValueError) as err:
                log.warning("watch of %s failed (%s); retrying", self.resource.plural, err)
                await asyncio.sleep(1.0)


class WorkQueue:
    """Keys to reconcile, each at most once in the queue, with delayed re-enqueueing; one worker drains it."""

    def __init__(self, name: str, reconcile: Callable[[Key], Awaitable[float | None]]) -> None:
        self.name = name
        self._reconcile = reconcile
        self._pending: dict[Key, None] = {}
        self._wake = asyncio.Event()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._task: asyncio.Task[None] | None = None
        self._failures: dict[Key, int] = {}

    def add(self, key: Key, after: float | None = None) -> None:
        if after is not None and after > 0:
            loop = asyncio.get_running_loop()
            old = self._timers.get(key)
            if old is not None and old.when() <= loop.time() + after:
                return
            if old is not None:
                old.cancel()
            self._timers[key] = loop.call_later(after, self._fire, key)
            return
        self._pending[key] = None
        self._wake.set()

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"workqueue-{self.name}")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key = next(iter(self._pending))
                del self._pending[key]
                await self._process(key)

    async def _process(self, key: Key) -> None:
        try:
            again = await self._reconcile(key)
            self._failures.pop(key, None)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            count = self._failures[key] = self._failures.get(key, 0) + 1
            again = min(0.2 * 2**count, 30.0)
            level = logging.INFO if isinstance(err, ApiError) and err.code == 409 else logging.WARNING
            log.log(level, "%s: reconcile of %s failed (%s); retry in %.1fs", self.name, key, err, again)
        if again is not None:
            self.add(key, after=again)


class Expectations:
    """Creations and deletions a controller made but its informer has not seen yet (as in kube's
    ControllerExpectations): until they are observed, the owner is not re-planned from a stale cache."""

    def __init__(self, timeout: float = 30.0) -> None:
        self._adds: dict[str, set[str]] = {}
        self._dels: dict[str, set[str]] = {}
        self._since: dict[str, float] = {}
        self.timeout = timeout

    def expect(self, owner: str, adds: Iterable[str] = (), dels: Iterable[str] = ()) -> None:
        self._adds.setdefault(owner, set()).update(adds)
        self._dels.setdefault(owner, set()).update(dels)
        self._since[owner] = time.monotonic()

    def observe(self, owner: str | None, event_type: str, obj: Any) -> None:
        if owner is None:
            return
        name = str(obj.get("metadata", {}).get("name"))
        if event_type == "DELETED" or obj.get("metadata", {}).get("deletionTimestamp"):
            self._dels.get(owner, set()).discard(name)
        if event_type != "DELETED":
            self._adds.get(owner, set()).discard(name)

    def forget(self, owner: str, adds: Iterable[str] = (), dels: Iterable[str] = ()) -> None:
        for name in adds:
            self._adds.get(owner, set()).discard(name)
        for name in dels:
            self._dels.get(owner, set()).discard(name)

    def satisfied(self, owner: str) -> bool:
        if not self._adds.get(owner) and not self._dels.get(owner):
            return True
        if time.monotonic() - self._since.get(owner, 0.0) > self.timeout:
            self._adds.pop(owner, None)
            self._dels.pop(owner, None)
            return True
        return False
