"""The embedded Kubernetes API server: aiohttp application, lifecycle and kubeconfig."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from . import discovery, metrics, openapi
from .errors import APIError
from .handlers import ResourceHandlers, json_response
from .operations import ObjectAPI, WriteOptions
from .resources import Registry
from .routing import resolve
from .store import Store
from .validation import Admission

log = logging.getLogger(__name__)
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@web.middleware
async def status_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure becomes a Kubernetes ``Status``; nothing crashes the server."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except APIError as exc:
        return json_response(exc.status(), exc.code)
    except web.HTTPNotFound:
        return json_response(APIError(404, "the server could not find the requested resource").status(), 404)
    except web.HTTPMethodNotAllowed as exc:
        return json_response(APIError(405, f"method {exc.method} is not allowed here").status(), 405)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("internal error serving %s %s", request.method, request.path_qs)
        return json_response(APIError(500, f"internal error: {type(exc).__name__}: {exc}").status(), 500)


class APIServer:
    """An in-process Kubernetes API server bound to ``host`` (127.0.0.1) on ``port`` (0: a free port)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | None = None,
        bookmark_interval: float = 10.0,
        event_window: int = 10_000,
    ) -> None:
        self.host = host
        self.port = port
        self.state_dir = state_dir
        self.store = Store(window=event_window)
        self.registry = Registry()
        self.api = ObjectAPI(self.store, self.registry, Admission())
        self.resources = ResourceHandlers(self.api, state_dir, bookmark_interval)
        self.metrics = metrics.RequestMetrics()
        self._runner: web.AppRunner | None = None
        namespaces = self.registry.get("", "v1", "namespaces")
        assert namespaces is not None
        for name in INITIAL_NAMESPACES:
            self.api.create(namespaces, None, {"metadata": {"name": name}}, WriteOptions())

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_requests, status_errors], client_max_size=64 * 1024**2)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        app.router.add_get("/healthz", self._ok)
        app.router.add_get("/livez", self._ok)
        app.router.add_get("/readyz", self._ok)
        discovery_routes = {
            "/api": self._core,
            "/apis": self._groups,
            "/api/{version}": self._group_version,
            "/apis/{group}": self._group,
            "/apis/{group}/{version}": self._group_version,
        }
        for path, handler in discovery_routes.items():
            app.router.add_get(path, handler)
            app.router.add_get(path + "/", handler)
        app.router.add_get("/openapi/v3", self._openapi_index)
        app.router.add_get("/openapi/v3/{path:.*}", self._openapi)
        app.router.add_route("*", "/api/{path:.+/.*}", self.resources.handle)
        app.router.add_route("*", "/apis/{path:.+/.+/.+}", self.resources.handle)
        return app

    @web.middleware
    async def _count_requests(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Count each resource request by verb, resource and response code, with its duration."""
        key = self._metrics_key(request)
        started = time.perf_counter()
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            if key is not None:
                self.metrics.observe(key, exc.status, time.perf_counter() - started)
            raise
        if key is not None:
            self.metrics.observe(key, response.status, time.perf_counter() - started)
        return response

    def _metrics_key(self, request: web.Request) -> metrics.Key | None:
        """The metric labels of a resource request (None for other requests)."""
        try:
            target = resolve(self.registry, request.path)
        except APIError:
            return None
        watch = request.query.get("watch", "").lower() in ("true", "1")
        verb = metrics.verb(request.method, target.name is not None, watch, request.content_type)
        return (target.rt.group, target.rt.plural, target.subresource or "", verb, target.rt.version)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": metrics.TEXT_FORMAT})

    @staticmethod
    async def _ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    @staticmethod
    async def _doc(doc: Any) -> web.Response:
        if doc is None:
            raise APIError(404, "the server could not find the requested resource")
        return json_response(doc)

    async def _version(self, _: web.Request) -> web.Response:
        return await self._doc(discovery.version_info())

    def _aggregated(self, request: web.Request, core: bool) -> web.Response | None:
        if not discovery.wants_aggregated(request.headers.get("Accept", "")):
            return None
        body = json.dumps(discovery.aggregated(self.registry, core)).encode()
        return web.Response(body=body, headers={"Content-Type": discovery.AGGREGATED_MEDIA})

    async def _core(self, request: web.Request) -> web.Response:
        aggregated = self._aggregated(request, core=True)
        return aggregated or await self._doc(discovery.core_versions(f"{self.host}:{self.port}"))

    async def _groups(self, request: web.Request) -> web.Response:
        aggregated = self._aggregated(request, core=False)
        return aggregated or await self._doc(discovery.group_list(self.registry))

    async def _openapi_index(self, _: web.Request) -> web.Response:
        return await self._doc(openapi.index(self.registry))

    async def _group(self, request: web.Request) -> web.Response:
        return await self._doc(discovery.group(self.registry, request.match_info["group"]))

    async def _group_version(self, request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        return await self._doc(discovery.resource_list(self.registry, group, request.match_info["version"]))

    async def _openapi(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            return await self._doc(openapi.group_version_document(self.registry, "", parts[1]))
        if parts[0] == "apis" and len(parts) == 3:
            return await self._doc(openapi.group_version_document(self.registry, parts[1], parts[2]))
        raise APIError(404, "the server could not find the requested resource")

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("API server listening on %s", self.url)

    async def stop(self) -> None:
        self.resources.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig (cluster, user and context ``stockpot-local``) pointing at this server."""
        name = "stockpot-local"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
            "current-context": name,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path


class ThreadedAPIServer:
    """An :class:`APIServer` on its own event loop in a daemon thread, for synchronous code.

    ``with ThreadedAPIServer(state_dir=d, kubeconfig=d / "kubeconfig") as server: ...``
    """

    def __init__(self, state_dir: Path | None = None, kubeconfig: Path | None = None, **server_args: Any) -> None:
        self.server = APIServer(state_dir=state_dir, **server_args)
        self._kubeconfig_target = kubeconfig or (state_dir / "kubeconfig" if state_dir else None)
        self.kubeconfig: Path | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stockpot-apiserver", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> ThreadedAPIServer:
        self._thread.start()
        self.call(self.server.start())
        if self._kubeconfig_target is not None:
            self.kubeconfig = self.server.write_kubeconfig(self._kubeconfig_target)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.call(self.server.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> ThreadedAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
