"""The operator's API I/O, kept apart from the pure builders: create-or-adopt children, read, patch status, events.

Every call goes through the official ``kubernetes`` client with plain dicts. ``ensure`` reads a child and creates
it only when absent; a 409 (another pass created it first) adopts the existing object, so a restarted operator
never duplicates children.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from stockpot_operator.api.kinds import GROUP, VERSION

Obj = dict[str, Any]
POOL_SIZE = 16
log = logging.getLogger(__name__)


class Kube:
    """A thin client over the resources the operator touches."""

    def __init__(self, api_client: Any | None = None) -> None:
        if api_client is None:
            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            # One connection per worker thread: the default pool of 4 makes 8 workers queue and reconnect.
            configuration.connection_pool_maxsize = POOL_SIZE
            api_client = client.ApiClient(configuration)
        self.api = api_client

    def _raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> Any:
        """One REST call with a JSON body; the decoded response, or ApiException for 4xx/5xx."""
        api: Any = self.api
        serialized = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*serialized)
        data = response.read()
        if response.status >= 400:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = data.decode(errors="replace") if data else ""
            raise error
        return json.loads(data) if data else None

    @staticmethod
    def path(obj: Mapping[str, Any], name: str | None = None) -> str:
        """The REST path of a namespaced object (or its collection when ``name`` is empty)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        namespace = obj["metadata"]["namespace"]
        plural = {"ConfigMap": "configmaps", "Job": "jobs", "Service": "services", "ServiceAccount": "serviceaccounts"}[
            kind
        ]
        prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        base = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{base}/{name}" if name else base

    def ensure(self, obj: Obj, *, probably_new: bool = False) -> tuple[Obj, bool]:
        """The existing object, else ``obj`` created (a 409 adopts the existing one). Returns (object, created).

        Reading first makes a later pass over existing children one request each; for a resource seen for the
        first time (``probably_new``) creating first saves the read.
        """
        path = self.path(obj, obj["metadata"]["name"])
        if not probably_new:
            try:
                return self._raw("GET", path), False
            except ApiException as error:
                if error.status != 404:
                    raise
        try:
            return self._raw("POST", self.path(obj), obj), True
        except ApiException as error:
            if error.status != 409:
                raise
        return self._raw("GET", path), False

    @staticmethod
    def message(error: ApiException) -> str:
        """The API server's own message from an error response (its Status object), else the reason."""
        try:
            return str(json.loads(error.body or "{}").get("message") or error.reason)
        except ValueError:
            return str(error.reason)

    def _get(self, path: str) -> Obj | None:
        """The object at ``path``, or None when it does not exist."""
        try:
            return self._raw("GET", path)  # type: ignore[no-any-return]
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
        self._raw("PATCH", path, {"spec": {"suspend": suspend}}, "application/merge-patch+json")

    def get_job(self, namespace: str, name: str) -> Obj | None:
        return self._get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[Obj]:
        query = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        found = self._raw("GET", f"/api/v1/namespaces/{namespace}/pods", query=[("labelSelector", query)])
        return list(found.get("items") or [])

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj | None:
        return self._get(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}")

    def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> str:
        """Merge ``status`` into the resource's status; returns the resourceVersion the write produced."""
        patched = self._raw(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}/status",
            {"status": status},
            "application/merge-patch+json",
        )
        return str(patched["metadata"]["resourceVersion"])

    def secret_values(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's decoded values (used only to build storage clients; never logged or copied)."""
        secret = self._raw("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def secret_exists(self, namespace: str, name: str) -> bool:
        return self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}") is not None

    def event(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """An events.k8s.io/v1 Event about ``involved``; failures are logged, never raised."""
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "eventTime": now,
            "type": type_,
            "reason": reason,
            "note": message[:1024],
            "action": "Reconcile",
            "reportingController": "stockpot.dev/operator",
            "reportingInstance": "stockpot-operator",
            "regarding": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
        }
        try:
            self._raw("POST", f"/apis/events.k8s.io/v1/namespaces/{meta['namespace']}/events", body)
        except ApiException as error:
            log.warning("event %s on %s not recorded: %s", reason, meta["name"], error.status)
