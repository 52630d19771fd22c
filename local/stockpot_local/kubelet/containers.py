"""One container as a local process: started in its own process group, logged to a file, stopped gracefully.

The image is recorded, not pulled: ``command`` + ``args`` run as they are, resolved on the container's PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stockpot_local.kubelet.env import ContainerConfigError

Obj = dict[str, Any]
_PR_SET_PDEATHSIG = 1


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class ContainerRun:
    """The live state of one container of a pod, across restarts."""

    spec: Obj
    log_path: Path
    termination_path: Path
    restart_count: int = 0
    process: asyncio.subprocess.Process | None = None
    started_at: str | None = None
    ready: bool = False
    started: bool = False
    last_state: Obj = field(default_factory=dict)
    terminated: Obj | None = None
    waiting: Obj | None = field(default_factory=lambda: {"reason": "ContainerCreating"})

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        executable = shutil.which(argv[0], path=env.get("PATH")) if not os.path.isabs(argv[0]) else argv[0]
        if executable is None:
            raise ContainerConfigError(f'executable "{argv[0]}" not found in $PATH')
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists() and self.restart_count:
            self.log_path.replace(self.log_path.with_suffix(".previous.log"))
        self.termination_path.write_text("", encoding="utf-8")
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                executable,
                *argv[1:],
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.started_at, self.waiting, self.terminated, self.ready = now(), None, None, False

    def finish(self, exit_code: int, fallback_to_logs: bool) -> None:
        """Record the exit of the process (state.terminated, with the termination message)."""
        message = self.termination_path.read_text(encoding="utf-8", errors="replace")[-4096:].strip()
        if not message and fallback_to_logs and exit_code != 0 and self.log_path.exists():
            message = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-80:])[-2048:]
        signaled = exit_code < 0
        code = 128 - exit_code if signaled else exit_code
        self.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": self.started_at,
            "finishedAt": now(),
        }
        if signaled:
            self.terminated["signal"] = -exit_code
        if message:
            self.terminated["message"] = message
        self.process, self.ready = None, False

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=max(grace_seconds, 0.1))
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            _signal_group(self.process.pid, signal.SIGKILL)

    def status(self, image_id: str = "") -> Obj:
        state: Obj
        if self.running:
            state = {"running": {"startedAt": self.started_at}}
        elif self.terminated is not None:
            state = {"terminated": self.terminated}
        else:
            state = {"waiting": self.waiting or {"reason": "ContainerCreating"}}
        return {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": image_id,
            "ready": self.ready,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": self.last_state,
        }


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
