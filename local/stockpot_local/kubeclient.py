"""A small typed async REST client for the Kubernetes API (any group/version/plural).

The local controllers and the process kubelet talk to the API only through this client, over HTTP, like
real controllers do, so they work against the embedded API server and against a real cluster alike.
Authentication is limited to what the embedded server needs (none) plus an optional bearer token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic"]

_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


@dataclass(frozen=True)
class Resource:
    """A resource type addressed by group, version and plural name."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if sub:
                base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods")
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")
SECRETS = Resource("", "v1", "secrets")
CONFIGMAPS = Resource("", "v1", "configmaps")
EVENTS = Resource("", "v1", "events")
JOBS = Resource("batch", "v1", "jobs")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
REPLICASETS = Resource("apps", "v1", "replicasets")


class ApiError(Exception):
    """A non-2xx answer from the API server, with the HTTP code and the Status reason."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch stream; type is ADDED, MODIFIED, DELETED or RELISTED (a full re-list)."""

    type: str
    object: Obj


def _label_selector(selector: dict[str, str] | str | None) -> str | None:
    if selector is None or isinstance(selector, str):
        return selector
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


class KubeClient:
    """Async Kubernetes REST client over one aiohttp session; use as an async context manager."""

    def __init__(self, api_url: str, token: str | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, read_bufsize=2**22)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        timeout = aiohttp.ClientTimeout(total=30)
        async with self._http().request(
            method, self.api_url + path, data=data, params=params, headers=headers, timeout=timeout
        ) as resp:
            text = await resp.text()
            payload: Obj = json.loads(text) if text.strip().startswith("{") else {}
            if resp.status >= 400:
                raise ApiError(resp.status, str(payload.get("reason", "")), str(payload.get("message", text)))
            return payload

    async def get(self, res: Resource, name: str, namespace: str | None = None, sub: str | None = None) -> Obj:
        return await self._request("GET", res.path(namespace, name, sub))

    async def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(res, name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        label_selector: dict[str, str] | str | None = None,
        field_selector: str | None = None,
    ) -> Obj:
        params: dict[str, str] = {}
        if (selector := _label_selector(label_selector)) is not None:
            params["labelSelector"] = selector
        if field_selector:
            params["fieldSelector"] = field_selector
        return await self._request("GET", res.path(namespace), params=params)

    async def create(self, res: Resource, body: Obj, namespace: str | None = None, sub: str | None = None) -> Obj:
        ns = namespace or body.get("metadata", {}).get("namespace")
        if sub:
            name = body.get("metadata", {}).get("name")
            return await self._request("POST", res.path(ns, name, sub), body=body)
        return await self._request("POST", res.path(ns), body=body)

    async def replace(self, res: Resource, body: Obj, sub: str | None = None) -> Obj:
        meta = body["metadata"]
        return await self._request("PUT", res.path(meta.get("namespace"), meta["name"], sub), body=body)

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        sub: str | None = None,
    ) -> Obj:
        ctype = _PATCH_CONTENT_TYPES[patch_type]
        return await self._request("PATCH", res.path(namespace, name, sub), body=patch, content_type=ctype)

    async def patch_status(
        self, res: Resource, name: str, status: Obj, namespace: str | None = None, patch_type: PatchType = "merge"
    ) -> Obj:
        body: Any = {"status": status} if patch_type != "json" else status
        return await self.patch(res, name, body, namespace, patch_type=patch_type, sub="status")

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        uid: str | None = None,
    ) -> Obj | None:
        """Delete an object; a 404 answers None. With uid, delete only that incarnation."""
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            return await self._request("DELETE", res.path(namespace, name), body=body)
        except ApiError as err:
            if err.code in (404, 409):
                return None
            raise

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        label_selector: dict[str, str] | str | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Watch forever: list first (one RELISTED event) unless resource_version is given, then stream
        events, resuming from the last seen resourceVersion and re-listing on 410 Gone."""
        rv = resource_version
        while True:
            if rv is None:
                listed = await self.list(res, namespace, label_selector)
                rv = str(listed.get("metadata", {}).get("resourceVersion", ""))
                yield WatchEvent("RELISTED", listed)
            try:
                async for event in self._watch_once(res, namespace, label_selector, rv):
                    if event.type == "ERROR":
                        code = int(event.object.get("code", 0))
                        if code == 410:
                            rv = None
                            break
                        raise ApiError(code, str(event.object.get("reason")), str(event.object.get("message")))
                    rv = str(event.object.get("metadata", {}).get("resourceVersion", rv))
                    if event.type != "BOOKMARK":
                        yield event
            except ApiError as err:
                if err.code != 410:
                    raise
                rv = None
            except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                await asyncio.sleep(0.2)

    async def _watch_once(
        self, res: Resource, namespace: str | None, label_selector: dict[str, str] | str | None, rv: str
    ) -> AsyncIterator[WatchEvent]:
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "290"}
        if (selector := _label_selector(label_selector)) is not None:
            params["labelSelector"] = selector
        timeout = aiohttp.ClientTimeout(total=None, sock_read=330)
        async with self._http().get(self.api_url + res.path(namespace), params=params, timeout=timeout) as resp:
            if resp.status >= 400:
                payload = json.loads(await resp.text() or "{}")
                raise ApiError(resp.status, str(payload.get("reason", "")), str(payload.get("message", "")))
            async for line in resp.content:
                if line.strip():
                    raw = json.loads(line)
                    yield WatchEvent(str(raw["type"]), raw["object"])
