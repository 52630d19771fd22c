"""The record a running local-cluster daemon leaves in its state directory, and what is derived from it.

``up`` waits for the file to appear, ``status``/``env``/``down`` read it. Pure data and functions only.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "cluster.json"
LOG_FILE = "cluster.log"


@dataclass(frozen=True)
class ClusterState:
    """Where the daemon's parts listen and which processes it owns."""

    pid: int
    api_url: str
    kubeconfig: str
    env: dict[str, str]
    s3_endpoint: str | None = None
    prometheus_url: str | None = None
    child_pids: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw = json.loads(text)
        return cls(
            pid=int(raw["pid"]),
            api_url=str(raw["api_url"]),
            kubeconfig=str(raw["kubeconfig"]),
            env={str(k): str(v) for k, v in raw["env"].items()},
            s3_endpoint=raw.get("s3_endpoint"),
            prometheus_url=raw.get("prometheus_url"),
            child_pids={str(k): int(v) for k, v in raw.get("child_pids", {}).items()},
        )

    def endpoints(self) -> dict[str, str]:
        """Component name → the URL ``status`` checks."""
        found = {"apiserver": self.api_url}
        if self.s3_endpoint:
            found["s3"] = self.s3_endpoint
        if self.prometheus_url:
            found["prometheus"] = self.prometheus_url
        return found


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> ClusterState | None:
    try:
        return ClusterState.from_json(state_path(state_dir).read_text())
    except FileNotFoundError:
        return None


def write_state(state_dir: Path, state: ClusterState) -> None:
    path = state_path(state_dir)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(state.to_json())
    os.replace(temporary, path)


def export_lines(env: Mapping[str, str]) -> list[str]:
    """``export NAME=value`` lines, shell-quoted, for ``eval "$(python -m stockpot_local env)"``."""
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]


def status_lines(state: ClusterState, health: Mapping[str, bool]) -> list[str]:
    """A human-readable table: one line per component with its URL and health."""
    lines = [f"daemon       pid {state.pid}"]
    for name, url in state.endpoints().items():
        verdict = "healthy" if health.get(name) else "UNHEALTHY"
        lines.append(f"{name:<12} {url:<32} {verdict}")
    lines.append(f"kubeconfig   {state.kubeconfig}")
    return lines
