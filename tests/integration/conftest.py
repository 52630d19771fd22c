"""Fixtures for the integration suites: an embedded API server, or a real cluster.

With ``STOCKPOT_E2E_CLUSTER=1`` the suite runs against the cluster ``KUBECONFIG`` points at; tests that
need the embedded server's state directory (pod logs) are skipped there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.dynamic import DynamicClient

from stockpot_local.apiserver import ThreadedAPIServer

# The typed client's models are stricter than the wire format; the suite sends plain dicts, so it uses
# the client through ``Any``.
config: Any = kube_config
Dynamic: Any = DynamicClient

REAL_CLUSTER = os.environ.get("STOCKPOT_E2E_CLUSTER") == "1"


@dataclass
class Kube:
    kubeconfig: Path
    api_client: Any
    state_dir: Path | None  # None on a real cluster
    server: ThreadedAPIServer | None

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        return client.AppsV1Api(self.api_client)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api_client)

    @property
    def extensions(self) -> Any:
        return client.ApiextensionsV1Api(self.api_client)

    def dynamic(self) -> Any:
        return Dynamic(self.api_client)

    def raw(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """An untyped request (bodies the typed client would refuse to send); returns (status, JSON)."""
        import json

        rest: Any = self.api_client.rest_client
        response = rest.request(
            method,
            self.api_client.configuration.host + path,
            headers={"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
            body=body,
        )
        data = response.read()
        return response.status, json.loads(data) if data else None


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    if REAL_CLUSTER:
        kubeconfig = Path(os.environ["KUBECONFIG"])
        yield Kube(kubeconfig, config.new_client_from_config(str(kubeconfig)), None, None)
        return
    state_dir = tmp_path_factory.mktemp("apiserver")
    with ThreadedAPIServer(state_dir=state_dir, bookmark_interval=0.5) as server:
        assert server.kubeconfig is not None
        api_client = config.new_client_from_config(str(server.kubeconfig))
        try:
            yield Kube(server.kubeconfig, api_client, state_dir, server)
        finally:
            api_client.close()


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        kube.core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def local_only(kube: Kube) -> Kube:
    if kube.server is None:
        pytest.skip("needs the embedded API server's state directory")
    return kube
