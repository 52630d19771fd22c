"""The local cluster as a background daemon: ``serve`` runs it, ``up``/``down``/``health`` manage it.

``up`` starts ``python -m stockpot_local up --foreground`` in a new session (it outlives the shell that ran
``up``); the daemon writes ``cluster.json`` once every part answers, and removes it when it stops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from stockpot_local.cluster import LocalCluster
from stockpot_local.cluster_state import (
    LOG_FILE,
    ClusterState,
    read_state,
    state_path,
    write_state,
)
from stockpot_local.managed_process import kill_group, wait_until

_HEALTH_PATHS = {"apiserver": "/readyz", "prometheus": "/-/ready", "s3": "/"}


class DaemonError(RuntimeError):
    """The daemon did not come up (its log tail is in the message)."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def state_of(cluster: LocalCluster) -> ClusterState:
    return ClusterState(
        pid=os.getpid(),
        api_url=cluster.api_url,
        kubeconfig=str(cluster.kubeconfig),
        env=cluster.env(),
        s3_endpoint=cluster.s3.endpoint_url if cluster.s3 is not None else None,
        prometheus_url=cluster.prometheus.url if cluster.prometheus is not None else None,
        child_pids=cluster.child_pids(),
    )


def serve(state_dir: Path, prometheus: bool) -> None:
    """Run the cluster in this process until SIGTERM or SIGINT; the state file exists while it is up."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with LocalCluster(state_dir, prometheus=prometheus) as cluster:
        write_state(state_dir, state_of(cluster))
        try:
            while not stop.wait(0.5):
                pass
        finally:
            state_path(state_dir).unlink(missing_ok=True)


def health(state: ClusterState) -> dict[str, bool]:
    """Component name → whether it answers HTTP (any status from S3, 200 from the others)."""
    return {name: _answers(name, url + _HEALTH_PATHS[name]) for name, url in state.endpoints().items()}


def _answers(name: str, url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return name == "s3"  # anonymous requests are refused, but the server answered
    except (urllib.error.URLError, OSError):
        return False


def running_state(state_dir: Path) -> ClusterState | None:
    """The recorded state if its daemon is alive."""
    state = read_state(state_dir)
    return state if state is not None and pid_alive(state.pid) else None


def up(state_dir: Path, prometheus: bool, timeout: float = 120.0) -> ClusterState:
    """Start the daemon (or find it running) and wait until every part is healthy."""
    state_dir.mkdir(parents=True, exist_ok=True)
    existing = running_state(state_dir)
    if existing is not None:
        return existing
    state_path(state_dir).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "stockpot_local", "up", "--foreground", "--state-dir", str(state_dir)]
    if not prometheus:
        argv.append("--no-prometheus")
    with (state_dir / LOG_FILE).open("ab") as log:
        daemon = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise DaemonError(f"the cluster daemon exited with {daemon.returncode}:\n{log_tail(state_dir)}")
        state = read_state(state_dir)
        if state is not None and state.pid == daemon.pid and all(health(state).values()):
            return state
        time.sleep(0.3)
    _terminate(daemon.pid, grace_seconds=10)
    raise DaemonError(f"the cluster was not healthy after {timeout}s:\n{log_tail(state_dir)}")


def down(state_dir: Path, grace_seconds: float = 30.0) -> bool:
    """Stop the daemon recorded in ``state_dir`` and anything it left; False when nothing was running."""
    state = read_state(state_dir)
    if state is None:
        return False
    was_running = pid_alive(state.pid)
    if was_running:
        _terminate(state.pid, grace_seconds)
    for pid in state.child_pids.values():
        if pid_alive(pid):
            kill_group(pid, signal.SIGKILL)
    state_path(state_dir).unlink(missing_ok=True)
    return was_running


def _terminate(pid: int, grace_seconds: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not pid_alive(pid), timeout=grace_seconds, interval=0.2):
        kill_group(pid, signal.SIGKILL)  # the daemon leads its own session: its group is its own
        wait_until(lambda: not pid_alive(pid), timeout=5, interval=0.1)


def log_tail(state_dir: Path, max_bytes: int = 4000) -> str:
    try:
        data = (state_dir / LOG_FILE).read_bytes()
    except FileNotFoundError:
        return ""
    return data[-max_bytes:].decode("utf-8", errors="replace")
