"""HTTP handlers for resource URLs: CRUD, patch, subresources, watch and logs."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from . import deletion, patch, podlogs, scale, table
from .errors import APIError, bad_request
from .operations import ListOptions, ObjectAPI, WriteOptions
from .routing import Target, resolve
from .selectors import make_predicate
from .watch import Watcher, WatchFilter

log = logging.getLogger(__name__)
JSON = "application/json"


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)} if warnings else None
    return web.Response(body=json.dumps(body).encode(), status=status, content_type=JSON, headers=headers)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"invalid {name}: {raw!r}") from exc


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    if "protobuf" in request.content_type or "cbor" in request.content_type:
        raise APIError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: {JSON}, "
            "application/yaml, " + ", ".join(patch.PATCH_TYPES),
        )
    try:
        if request.content_type == patch.APPLY_PATCH or request.content_type.endswith("yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the request body is not valid: {exc}") from exc


def _write_options(request: web.Request) -> WriteOptions:
    validation = request.query.get("fieldValidation") or "Warn"
    if validation not in ("Ignore", "Warn", "Strict"):
        raise bad_request(f"invalid fieldValidation {validation!r}")
    return WriteOptions(
        dry_run=request.query.get("dryRun") == "All",
        field_validation=validation,
        field_manager=request.query.get("fieldManager", ""),
        force=_flag(request, "force"),
    )


def _name(target: Target) -> str:
    return target.name or ""


class ResourceHandlers:
    def __init__(self, api: ObjectAPI, state_dir: Path | None, bookmark_interval: float) -> None:
        self.api = api
        self.state_dir = state_dir
        self.bookmark_interval = bookmark_interval
        self._watchers: set[Watcher] = set()

    def close_watches(self) -> None:
        for watcher in list(self._watchers):
            watcher.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = resolve(self.api.registry, request.path)
        method = request.method
        if target.name is None:
            if method == "GET":
                return await (self._watch(request, target) if _flag(request, "watch") else self._list(request, target))
            if method == "POST" and (target.namespace is not None or not target.rt.namespaced):
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target)
        elif target.subresource in ("scale",):
            return await self._scale(request, target)
        elif target.subresource == "log" and method == "GET":
            return await self._log(request, target)
        elif method == "GET":
            if _flag(request, "watch"):
                return await self._watch(request, target)
            return self._respond_objects(request, target, [self.api.get(target.rt, target.namespace, _name(target))])
        elif method == "PUT":
            return await self._update(request, target)
        elif method == "PATCH":
            return await self._patch(request, target)
        elif method == "DELETE" and target.subresource is None:
            return await self._delete(request, target)
        raise APIError(405, f"the server does not allow this method on the requested resource: {method}")

    def _respond_objects(self, request: web.Request, target: Target, objs: list[Any]) -> web.Response:
        if table.wants_table(request.headers.get("Accept", "")):
            meta = {"resourceVersion": str(self.api.store.resource_version)}
            return json_response(table.table(target.rt, objs, meta, request.query.get("includeObject", "Metadata")))
        return json_response(objs[0])

    async def _list(self, request: web.Request, target: Target) -> web.Response:
        options = ListOptions(
            label_selector=request.query.get("labelSelector"),
            field_selector=request.query.get("fieldSelector"),
            limit=_int_param(request, "limit") or 0,
            continue_token=request.query.get("continue") or None,
        )
        result = self.api.list_collection(target.rt, target.namespace, options)
        if table.wants_table(request.headers.get("Accept", "")):
            include = request.query.get("includeObject", "Metadata")
            return json_response(table.table(target.rt, result["items"], result["metadata"], include))
        return json_response(result)

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        opts = _write_options(request)
        created = self.api.create(target.rt, target.namespace, await read_body(request), opts)
        return json_response(created, 201, opts.warnings)

    async def _update(self, request: web.Request, target: Target) -> web.Response:
        opts = _write_options(request)
        body = await read_body(request)
        updated = self.api.update(
            target.rt, target.namespace, _name(target), body, subresource=target.subresource, opts=opts
        )
        return json_response(updated, 200, opts.warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        opts = _write_options(request)
        content_type = request.content_type
        if content_type not in patch.PATCH_TYPES:
            raise APIError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: {', '.join(patch.PATCH_TYPES)}",
            )
        body = await read_body(request)
        existed = self.api.store.get(target.rt.group_resource, target.namespace or "", _name(target)) is not None
        result = self.api.patch(
            target.rt,
            target.namespace,
            _name(target),
            body,
            content_type=content_type,
            subresource=target.subresource,
            opts=opts,
        )
        return json_response(result, 200 if existed else 201, opts.warnings)

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        body = await read_body(request)
        opts = deletion.DeleteOptions.from_body(body, dict(request.query))
        obj, gone = deletion.delete(self.api, target.rt.group_resource, target.namespace or "", _name(target), opts)
        return json_response(obj, 200 if gone else 202)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        body = await read_body(request)
        opts = deletion.DeleteOptions.from_body(body, dict(request.query))
        listed = self.api.list_collection(
            target.rt,
            target.namespace,
            ListOptions(request.query.get("labelSelector"), request.query.get("fieldSelector")),
        )
        deleted = deletion.delete_collection(self.api, target.rt.group_resource, listed["items"], opts)
        listed["items"] = deleted
        return json_response(listed)

    async def _scale(self, request: web.Request, target: Target) -> web.Response:
        obj = self.api.get(target.rt, target.namespace, _name(target))
        if request.method == "GET":
            return json_response(scale.to_scale(target.rt, obj))
        body = await read_body(request)
        if request.method == "PATCH":
            body = patch.patch_object(request.content_type, scale.to_scale(target.rt, obj), body, True)
        elif request.method != "PUT":
            raise APIError(405, f"the server does not allow this method on the requested resource: {request.method}")
        updated = self.api.update(
            target.rt,
            target.namespace,
            _name(target),
            scale.with_replicas(target.rt, obj, body),
            subresource=None,
            opts=_write_options(request),
        )
        return json_response(scale.to_scale(target.rt, updated))

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        field_selector = request.query.get("fieldSelector")
        if target.name is not None:
            by_name = f"metadata.name={target.name}"
            field_selector = f"{field_selector},{by_name}" if field_selector else by_name
        flt = WatchFilter(target.namespace, make_predicate(request.query.get("labelSelector"), field_selector))
        watcher = Watcher(self.api.store, target.rt, flt)
        self._watchers.add(watcher)
        try:
            try:
                initial = watcher.initial(request.query.get("resourceVersion"))
            except APIError as exc:
                if exc.code != 410:
                    raise
                initial = [("ERROR", exc.status())]
            return await self._stream(request, target, watcher, initial)
        finally:
            watcher.unsubscribe()
            self._watchers.discard(watcher)

    async def _stream(
        self, request: web.Request, target: Target, watcher: Watcher, initial: list[tuple[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": JSON, "Transfer-Encoding": "chunked"})
        try:
            await response.prepare(request)
            await self._pump(request, target, watcher, initial, response)
            await response.write_eof()
        except ConnectionResetError:
            log.debug("watch client of %s went away", request.path)
        return response

    async def _pump(
        self,
        request: web.Request,
        target: Target,
        watcher: Watcher,
        initial: list[tuple[str, Any]],
        response: web.StreamResponse,
    ) -> None:
        as_table = table.wants_table(request.headers.get("Accept", ""))
        include = request.query.get("includeObject", "Metadata")
        columns_sent = False

        async def send(event_type: str, obj: Any) -> None:
            nonlocal columns_sent
            if as_table and event_type in ("ADDED", "MODIFIED", "DELETED"):
                obj = table.table(target.rt, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}, include)
                if columns_sent:
                    obj["columnDefinitions"] = []
                columns_sent = True
            await response.write(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

        for event_type, obj in initial:
            await send(event_type, obj)
            if event_type == "ERROR":
                return
        if _flag(request, "sendInitialEvents"):
            await send("BOOKMARK", self._bookmark(target, {"k8s.io/initial-events-end": "true"}))
        bookmarks = _flag(request, "allowWatchBookmarks")
        timeout = _int_param(request, "timeoutSeconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        while deadline is None or loop.time() < deadline:
            wait = self.bookmark_interval if deadline is None else min(self.bookmark_interval, deadline - loop.time())
            item = await watcher.next(max(wait, 0.0))
            if item is None or request.transport is None or request.transport.is_closing():
                return
            event_type, obj = item
            if event_type == "BOOKMARK":
                if not bookmarks or (deadline is not None and loop.time() >= deadline):
                    continue
                obj = self._bookmark(target)
            await send(event_type, obj)

    def _bookmark(self, target: Target, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(self.api.store.resource_version)}
        if annotations:
            meta["annotations"] = annotations
        return {"kind": target.rt.kind, "apiVersion": target.rt.api_version, "metadata": meta}

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        pod = self.api.get(target.rt, target.namespace, _name(target))
        namespace = target.namespace or ""
        if self.state_dir is None:
            raise APIError(404, "pod logs are not available: the server has no state directory")
        container = podlogs.container_name(pod, request.query.get("container"))
        previous = _flag(request, "previous")
        path = podlogs.log_path(self.state_dir, namespace, _name(target), container, previous)
        data, offset = podlogs.read_log(path, _int_param(request, "tailLines"), previous)
        if not _flag(request, "follow") or previous:
            return web.Response(body=data, content_type="text/plain")
        return await self._follow(request, target, path, data, offset)

    async def _follow(
        self, request: web.Request, target: Target, path: Path, data: bytes, offset: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        try:
            await response.write(data)
            await self._tail_file(request, target, path, offset, response)
            await response.write_eof()
        except ConnectionResetError:
            log.debug("log client of %s went away", request.path)
        return response

    async def _tail_file(
        self, request: web.Request, target: Target, path: Path, offset: int, response: web.StreamResponse
    ) -> None:
        """Stream what the kubelet appends to ``path`` after ``offset`` until the pod is terminal or gone."""
        while True:
            pod = self.api.store.get(target.rt.group_resource, target.namespace or "", target.name or "")
            done = podlogs.is_terminal(pod)
            if path.exists() and path.stat().st_size > offset:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                offset += len(chunk)
                await response.write(chunk)
            if done or request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(0.2)
