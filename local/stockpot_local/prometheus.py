"""Prometheus for the local cluster: Debian's ``prometheus`` binary on a random 127.0.0.1 port.

Targets come from ``file_sd_configs`` files in ``<data_dir>/targets/``: ``static.json`` (set with
``set_static_targets``) and ``pods.json`` (kept in sync by ``scrape_targets.PodTargetWatcher``).
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from stockpot_local.managed_process import ManagedProcess, free_port
from stockpot_local.scrape_targets import ScrapeTarget, read_targets, write_targets

INSTALL_COMMAND = "apt-get install -y --no-install-recommends prometheus"
JOB_NAME = "stockpot-local"
STATIC_TARGETS_FILE = "static.json"
POD_TARGETS_FILE = "pods.json"
_HOST = "127.0.0.1"


class PrometheusNotInstalled(FileNotFoundError):
    """The ``prometheus`` binary is not on PATH."""


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


def prometheus_binary(name: str = "prometheus") -> Path:
    found = shutil.which(name)
    if found is None:
        raise PrometheusNotInstalled(f"`{name}` not found on PATH; install it with: {INSTALL_COMMAND}")
    return Path(found)


def prometheus_config(targets_dir: Path, scrape_interval: str) -> dict[str, Any]:
    """One job reading every ``*.json`` targets file in ``targets_dir`` (re-read on change)."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": JOB_NAME,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "file_sd_configs": [{"files": [str(targets_dir / "*.json")], "refresh_interval": "5s"}],
            }
        ],
    }


def prometheus_argv(binary: Path, config_path: Path, data_dir: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={_HOST}:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]


class PrometheusServer:
    """A Prometheus scraping the local cluster's targets, with a small query helper."""

    def __init__(self, data_dir: Path, scrape_interval: str = "2s", startup_timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir)
        self.scrape_interval = scrape_interval
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("PrometheusServer is not started")
        return f"http://{_HOST}:{self.port}"

    @property
    def targets_dir(self) -> Path:
        return self.data_dir / "targets"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "prometheus.yml"

    @property
    def pod_targets_path(self) -> Path:
        return self.targets_dir / POD_TARGETS_FILE

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def write_config(self) -> Path:
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        for name in (STATIC_TARGETS_FILE, POD_TARGETS_FILE):
            if not (self.targets_dir / name).exists():
                write_targets(self.targets_dir / name, [])
        config = prometheus_config(self.targets_dir, self.scrape_interval)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return self.config_path

    def start(self) -> None:
        if self._process is not None and self._process.running():
            return
        binary = prometheus_binary()
        self.write_config()
        self.port = free_port(_HOST)
        argv = prometheus_argv(binary, self.config_path, self.data_dir / "tsdb", self.port)
        self._process = ManagedProcess(argv, self.data_dir / "prometheus.log", cwd=self.data_dir)
        self._process.start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self._process.running():
                raise PrometheusError(
                    f"prometheus exited with {self._process.returncode()}:\n{self._process.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready after {self.startup_timeout}s:\n{self._process.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    @property
    def static_targets_path(self) -> Path:
        return self.targets_dir / STATIC_TARGETS_FILE

    def set_static_targets(self, targets: Iterable[ScrapeTarget]) -> None:
        """Replace the static targets (works whether or not this server, or another process, runs)."""
        write_targets(self.static_targets_path, targets)

    def static_targets(self) -> list[ScrapeTarget]:
        return read_targets(self.static_targets_path)

    def add_static_target(self, target: ScrapeTarget) -> None:
        """Scrape ``target`` too, replacing any target with the same address."""
        kept = [known for known in self.static_targets() if known.address != target.address]
        self.set_static_targets([*kept, target])

    def remove_static_target(self, address: str) -> None:
        self.set_static_targets([known for known in self.static_targets() if known.address != address])

    def query(self, promql: str) -> list[dict[str, Any]]:
        return query(self.url, promql)

    def wait_for_series(self, metric: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        return wait_for_series(self.url, metric, timeout)

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The ``result`` of an instant query (a list of ``{"metric": {...}, "value": [ts, "v"]}``)."""
    request = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as error:
        payload = json.load(error)
    if payload.get("status") != "success":
        raise PrometheusError(f"query {promql!r} failed: {payload.get('error', payload)}")
    return list(payload["data"]["result"])


def wait_for_series(url: str, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Poll ``promql`` until it returns a series; raises TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(url, promql)
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no series for {promql!r} within {timeout}s")
        time.sleep(0.5)
