"""``python -m stockpot_local up/status/env/down`` from a shell's point of view, leaving nothing behind."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from stockpot_local.cluster_state import read_state
from stockpot_local.managed_process import free_port
from stockpot_local.prometheus import wait_for_series

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(state_dir: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockpot_local", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _processes_mentioning(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(path) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cluster"
    yield directory
    _cli(directory, "down", timeout=60)
    for process in _processes_mentioning(directory):
        process.kill()


def _parse_exports(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        words = shlex.split(line)
        assert words[0] == "export"
        name, value = words[1].split("=", 1)
        env[name] = value
    return env


def test_up_status_env_down_round_trip(state_dir: Path) -> None:
    started = _cli(state_dir, "up")
    assert started.returncode == 0, started.stdout + started.stderr
    state = read_state(state_dir)
    assert state is not None
    assert set(state.endpoints()) == {"apiserver", "s3", "prometheus"}

    again = _cli(state_dir, "up")
    assert again.returncode == 0, again.stderr
    assert read_state(state_dir) == state

    status = _cli(state_dir, "status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy") == 3

    exported = _cli(state_dir, "env")
    assert exported.returncode == 0, exported.stderr
    env = _parse_exports(exported.stdout)
    api: Any = k8s_config.new_client_from_config(config_file=env["KUBECONFIG"])  # type: ignore[no-untyped-call]
    namespaces = {ns.metadata.name for ns in k8s.CoreV1Api(api).list_namespace().items if ns.metadata}
    api.close()
    assert "default" in namespaces
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    assert "Buckets" in s3.list_buckets()

    assert state.prometheus_url is not None
    _assert_scrape_command_reaches_prometheus(state_dir, state.prometheus_url)

    owned = [state.pid, *state.child_pids.values()]
    stopped = _cli(state_dir, "down", timeout=60)
    assert stopped.returncode == 0
    assert stopped.stdout.strip() == "local cluster stopped"
    assert not [pid for pid in owned if psutil.pid_exists(pid) and _not_zombie(pid)]
    assert _processes_mentioning(state_dir) == []

    assert _cli(state_dir, "status").returncode == 3
    assert _cli(state_dir, "env").returncode == 3
    repeated = _cli(state_dir, "down")
    assert (repeated.returncode, repeated.stdout.strip()) == (0, "local cluster was not running")


def _not_zombie(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_up_reports_why_the_daemon_failed(tmp_path: Path) -> None:
    (tmp_path / "s3").write_text("a file where the S3 data directory should be")
    started = _cli(tmp_path, "up", "--no-prometheus", timeout=60)
    assert started.returncode == 1
    assert "local cluster failed to start" in started.stderr
    assert "NotADirectoryError" in started.stderr
    assert read_state(tmp_path) is None
    assert _processes_mentioning(tmp_path) == []


def _assert_scrape_command_reaches_prometheus(state_dir: Path, prometheus_url: str) -> None:
    registry = CollectorRegistry()
    Gauge("stockpot_cli_probe", "A value for the CLI scrape test.", registry=registry).set(3)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        added = _cli(state_dir, "scrape", f"127.0.0.1:{port}", "--job", "cli-probe")
        assert added.returncode == 0, added.stderr
        series = wait_for_series(prometheus_url, 'stockpot_cli_probe{job="cli-probe"}', timeout=40)
        assert series[0]["value"][1] == "3"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
