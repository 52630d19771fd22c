"""The local cluster: embedded API server, controllers, process kubelet, S3 and Prometheus in one process.

The Kubernetes parts run on one asyncio loop in a background thread; SeaweedFS and Prometheus are child
processes started from the thread that calls ``start()`` (they die with it). ``ExternalCluster`` describes a
real cluster (``KUBECONFIG``) with the same interface, for tests that run against either.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from stockpot_local.prometheus import PrometheusServer
from stockpot_local.s3 import ExternalS3, S3Access, SeaweedS3
from stockpot_local.scrape_targets import PodTargetWatcher

_T = TypeVar("_T")
log = logging.getLogger(__name__)
_STEP_TIMEOUT = 60.0


def prometheus_dir(state_dir: Path) -> Path:
    """Where a local cluster keeps Prometheus' config, targets files and TSDB."""
    return state_dir / "prometheus"


class AsyncComponent(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ClusterAccess(Protocol):
    """What a test or tool needs to use a cluster, local or real."""

    @property
    def kubeconfig(self) -> Path: ...

    @property
    def s3(self) -> S3Access | None: ...

    def env(self) -> dict[str, str]: ...


class ExternalCluster:
    """A cluster someone else runs, reached through ``kubeconfig`` (and S3 from the AWS env vars)."""

    def __init__(self, kubeconfig: Path, s3: S3Access | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._s3 = s3

    @property
    def kubeconfig(self) -> Path:
        return self._kubeconfig

    @property
    def s3(self) -> S3Access | None:
        return self._s3

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ExternalCluster:
        path = environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        if not Path(path).exists():
            raise FileNotFoundError(f"KUBECONFIG {path} does not exist (STOCKPOT_E2E_CLUSTER=1 needs a cluster)")
        return cls(Path(path), ExternalS3.from_env(environ))

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig), **(self.s3.env() if self.s3 is not None else {})}


class _LoopThread:
    """An asyncio loop running forever in a daemon thread; run coroutines on it from any thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float = _STEP_TIMEOUT) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class LocalCluster:
    """Everything the operator and the runtime need, on 127.0.0.1, state kept under ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        s3: bool | S3Access = True,
        prometheus: bool = True,
        scrape_interval: str = "2s",
    ) -> None:
        """``s3``: True starts SeaweedFS under ``state_dir/s3``; an ``S3Access`` is used as is (and left
        running on stop); False means no S3."""
        self.state_dir = Path(state_dir)
        self._own_s3 = SeaweedS3(self.state_dir / "s3") if s3 is True else None
        self.s3: S3Access | None = s3 if isinstance(s3, S3Access) else self._own_s3
        self.prometheus: PrometheusServer | None = (
            PrometheusServer(prometheus_dir(self.state_dir), scrape_interval) if prometheus else None
        )
        self.api_url = ""
        self._loop: _LoopThread | None = None
        self._components: list[AsyncComponent] = []

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def kubernetes_dir(self) -> Path:
        """Shared by the API server, controllers and kubelet (pod logs live in ``logs/`` below it)."""
        return self.state_dir / "kubernetes"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._own_s3 is not None:
                self._own_s3.start()
            if self.prometheus is not None:
                self.prometheus.start()
            self._loop = _LoopThread("stockpot-local-cluster")
            self._loop.run(self._start_kubernetes())
        except BaseException:
            self.stop()
            raise

    async def _start_kubernetes(self) -> None:
        from stockpot_local.apiserver import APIServer

        api = APIServer(host="127.0.0.1", port=0, state_dir=self.kubernetes_dir)
        await self._start_component(api)
        self.api_url = api.url
        api.write_kubeconfig(self.kubeconfig)
        for component in self._cluster_components():
            await self._start_component(component)

    def _cluster_components(self) -> list[AsyncComponent]:
        from stockpot_local.controllers import ControllerManager
        from stockpot_local.kubeclient import KubeClient
        from stockpot_local.kubelet import Kubelet

        components: list[AsyncComponent] = [
            ControllerManager(self.api_url, self.kubernetes_dir),
            Kubelet(self.api_url, self.kubernetes_dir, node_name="local"),
        ]
        if self.prometheus is not None:
            client = KubeClient(self.api_url)
            components.append(_WatcherComponent(PodTargetWatcher(client, self.prometheus.pod_targets_path)))
        return components

    async def _start_component(self, component: AsyncComponent) -> None:
        await component.start()
        self._components.append(component)

    async def _stop_kubernetes(self) -> None:
        """Stop every component even when one fails; the first failure is re-raised at the end."""
        failures: list[Exception] = []
        while self._components:
            component = self._components.pop()
            try:
                await component.stop()
            except Exception as error:
                log.exception("stopping %s failed", type(component).__name__)
                failures.append(error)
        if failures:
            raise failures[0]

    def stop(self) -> None:
        """Stop everything that started, newest first; safe to call twice."""
        try:
            if self._loop is not None:
                try:
                    self._loop.run(self._stop_kubernetes())
                finally:
                    self._loop.close()
                    self._loop = None
        finally:
            if self.prometheus is not None:
                self.prometheus.stop()
            if self._own_s3 is not None:
                self._own_s3.stop()

    def child_pids(self) -> dict[str, int]:
        """Server processes this cluster started (name → pid)."""
        pids = {}
        if self._own_s3 is not None and self._own_s3.pid is not None:
            pids["s3"] = self._own_s3.pid
        if self.prometheus is not None and self.prometheus.pid is not None:
            pids["prometheus"] = self.prometheus.pid
        return pids

    def env(self) -> dict[str, str]:
        """``KUBECONFIG`` plus the S3 variables, for subprocesses (kubectl, helm, the operator)."""
        return {"KUBECONFIG": str(self.kubeconfig), **(self.s3.env() if self.s3 is not None else {})}

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float = _STEP_TIMEOUT) -> _T:
        """Run a coroutine on the cluster's loop (for async clients that must share it)."""
        if self._loop is None:
            raise RuntimeError("LocalCluster is not started")
        return self._loop.run(coroutine, timeout)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _WatcherComponent:
    """Adapts ``PodTargetWatcher`` (sync start) to the async component lifecycle and closes its client."""

    def __init__(self, watcher: PodTargetWatcher) -> None:
        self._watcher = watcher

    async def start(self) -> None:
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()
        await self._watcher.client.close()
