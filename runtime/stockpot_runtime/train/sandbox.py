"""A subprocess sandbox for user reward code: ``reward(prompt: str, completion: str, row: dict) -> float``.

- ``RewardSandbox(code, timeout_s, memory_mb)``: starts one worker process that loads the code (a
  ``SandboxError`` names the Python error and its line if the code does not compile, raises while loading or
  defines no ``reward``); ``score(items)`` scores ``(prompt, completion, row)`` triples in it, one
  ``float | None`` each (None: the call raised, returned no number, timed out or killed the worker);
  ``close()`` ends it. A context manager. The worker is reused across batches and restarted after a timeout
  or crash, so module-level state of the code lives as long as one worker.

The worker is ``python -I -S`` (no site, no user paths, ``PYTHON*`` variables ignored) with an empty
environment, a fresh read-only temporary directory as its cwd, its own process group (killed whole by the
parent on a wall-clock timeout per call) and resource limits set before the code is read: address space
``memory_mb``, CPU seconds ``ceil(timeout_s)`` per call, no file writes (``RLIMIT_FSIZE`` 0), few open
files, no new processes (``RLIMIT_NPROC`` 0, effective for non-root users). Run as root, the worker drops to
``nobody`` when the interpreter is reachable by that user. The parent talks JSON lines over private
duplicates of stdin/stdout; fds 0-2 of the code point at ``/dev/null``, so its ``print`` output is discarded.

Before the first worker starts, the trainer marks itself non-dumpable (``PR_SET_DUMPABLE`` 0): its
``/proc/<pid>/environ`` (which holds the storage credentials) and memory become unreadable to other
processes of the same non-root user, such as the worker. Root can read them anyway, which is why the
runtime image runs as a non-root user.

Limits, not a jail: the code can still read world-readable files and open network connections.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

log = logging.getLogger(__name__)

CODE_FILENAME = "<reward>"
"""The file name reported in errors of the user code (line numbers refer to the ``code`` string)."""

STARTUP_GRACE_S = 10.0
"""Time for the interpreter to start, on top of ``timeout_s`` for the code's module-level statements."""

MAX_REPLY_BYTES = 1 << 20
MAX_ERROR_CHARS = 300
OPEN_FILES = 32
NOBODY = 65534

Item = tuple[str, str, Mapping[str, Any]]


class SandboxError(RuntimeError):
    """The reward code cannot be used: it does not compile, fails while loading or defines no ``reward``."""


class RewardSandbox:
    """User reward code running in a resource-limited worker process, scored a batch at a time."""

    def __init__(self, code: str, timeout_s: float, memory_mb: int) -> None:
        if timeout_s <= 0 or memory_mb <= 0:
            raise ValueError("timeout_s and memory_mb must be positive")
        self.code, self.timeout_s, self.memory_mb = code, timeout_s, memory_mb
        hide_process_memory()
        self._calls = itertools.count()
        self._worker: _Worker | None = self._start()

    def score(self, items: Sequence[Item]) -> list[float | None]:
        """One result per ``(prompt, completion, row)``: the returned number, or None if the call failed."""
        return [self._call(next(self._calls), item) for item in items]

    def close(self) -> None:
        """Stop the worker; ``score`` starts a new one if called again."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> _Worker:
        worker = _Worker(self.timeout_s, self.memory_mb)
        reply = worker.exchange({"code": self.code}, self.timeout_s + STARTUP_GRACE_S)
        if reply is None or "error" in reply:
            worker.stop()
            raise SandboxError(_load_failure(reply, self.timeout_s))
        return worker

    def _call(self, call: int, item: Item) -> float | None:
        """One call; a reply that is late, missing or not the answer to this call stops the worker."""
        if self._worker is None:
            self._worker = self._start()
        prompt, completion, row = item
        request = {"id": call, "prompt": prompt, "completion": completion, "row": row}
        reply = self._worker.exchange(request, self.timeout_s)
        if reply is None or reply.get("id") != call:
            log.debug("reward call timed out or broke the sandbox worker; it restarts on the next call")
            self.close()
            return None
        value = reply.get("value")
        if "error" in reply or not isinstance(value, int | float) or isinstance(value, bool):
            log.debug("reward call failed: %s", str(reply.get("error", "no number"))[:MAX_ERROR_CHARS])
            return None
        return float(value)


def _load_failure(reply: Mapping[str, Any] | None, timeout_s: float) -> str:
    if reply is None:
        return f"the reward code did not load within {timeout_s + STARTUP_GRACE_S:g} s (or exceeded its limits)"
    return f"the reward code cannot be used: {reply['error']}"


class _Worker:
    """One sandbox process and the parent's end of its JSON-lines channel."""

    def __init__(self, timeout_s: float, memory_mb: int) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="stockpot-reward-"))
        self.directory.chmod(0o555)
        try:
            self.process = _spawn(self.directory, timeout_s, memory_mb)
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self._finalizer = weakref.finalize(self, _stop, self.process, self.directory, self.selector)

    def exchange(self, message: Mapping[str, Any], timeout_s: float) -> dict[str, Any] | None:
        """Send one message and read one reply within ``timeout_s``; None (and the worker stopped) if none came."""
        try:
            line = json.dumps(message, default=str).encode() + b"\n"
            assert self.process.stdin is not None
            self.process.stdin.write(line)
            self.process.stdin.flush()
            reply = self._read_line(time.monotonic() + timeout_s)
            parsed = json.loads(reply) if reply is not None else None
        except (OSError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            self.stop()
            return None
        return parsed

    def _read_line(self, deadline: float) -> bytes | None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self.buffer) > MAX_REPLY_BYTES:
                return None
            if not self.selector.select(remaining):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def stop(self) -> None:
        self._finalizer()


def _stop(process: subprocess.Popen[bytes], directory: Path, selector: selectors.BaseSelector) -> None:
    """Kill the worker's whole process group and remove its directory."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    selector.close()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    directory.chmod(0o700)
    shutil.rmtree(directory, ignore_errors=True)


PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _prctl(option: int, value: int = 0) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0))


def hide_process_memory() -> None:
    """Make this process non-dumpable: same-user processes can no longer read its /proc environ or memory."""
    if sys.platform == "linux" and _prctl(PR_SET_DUMPABLE, 0) != 0:
        log.warning("could not mark the trainer non-dumpable; user reward code could read its environment")


def is_dumpable() -> bool:
    return sys.platform != "linux" or _prctl(PR_GET_DUMPABLE) == 1


class _Privileges:
    """Whether workers start as ``nobody``: tried while running as root, given up after the first failure."""

    drop = os.geteuid() == 0


def _spawn(directory: Path, timeout_s: float, memory_mb: int) -> subprocess.Popen[bytes]:
    """Start ``python -I -S -c <this module>`` with an empty environment, in its own session and ``directory``."""
    command = [sys.executable, "-I", "-S", "-c", _child_source(), str(timeout_s), str(memory_mb)]
    options: dict[str, Any] = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.DEVNULL,
        "env": {},
        "cwd": directory,
        "start_new_session": True,
        "close_fds": True,
    }
    if _Privileges.drop:
        try:
            return subprocess.Popen(command, user=NOBODY, group=NOBODY, extra_groups=[], **options)
        except PermissionError as error:
            _Privileges.drop = False
            log.warning("reward sandbox runs as root: could not start it as nobody (%s)", type(error).__name__)
    return subprocess.Popen(command, **options)


def _child_source() -> str:
    return Path(__file__).read_text(encoding="utf-8")


# --- The worker side: runs in the child, standard library only. ---


def _child_main() -> None:
    """Serve one code: set the limits, load it, then answer one JSON line per request until stdin closes."""
    timeout_s, memory_mb = float(sys.argv[1]), int(sys.argv[2])
    requests, replies = _private_channel()
    os.register_at_fork(after_in_child=lambda: os._exit(70))  # a forked copy must not answer on the channel
    _limit(memory_mb)
    _limit_cpu(timeout_s)
    loaded = _load(json.loads(requests.readline())["code"])
    _reply(replies, loaded if isinstance(loaded, dict) else {"ok": True})
    if isinstance(loaded, dict):
        return
    for line in requests:
        request = json.loads(line)
        _limit_cpu(timeout_s)
        _reply(replies, {"id": request["id"], **_run(loaded, request)})


def _private_channel() -> tuple[IO[bytes], IO[bytes]]:
    """Duplicates of stdin/stdout for the protocol; fds 0-2 then point at /dev/null for the user code."""
    requests, replies = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return requests, replies


def _limit(memory_mb: int) -> None:
    limits = {
        resource.RLIMIT_AS: memory_mb * 1024 * 1024,
        resource.RLIMIT_FSIZE: 0,
        resource.RLIMIT_NOFILE: OPEN_FILES,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NPROC: 0,
    }
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))


def _limit_cpu(timeout_s: float) -> None:
    """Allow ``ceil(timeout_s)`` more CPU seconds (SIGXCPU kills the worker beyond them)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    resource.setrlimit(resource.RLIMIT_CPU, (used + math.ceil(timeout_s), resource.RLIM_INFINITY))


def _load(code: str) -> Any:
    """The code's ``reward`` function, or ``{"error": ...}`` naming what went wrong and where."""
    namespace: dict[str, Any] = {"__name__": "reward_code"}
    try:
        exec(compile(code, CODE_FILENAME, "exec"), namespace)
    except SyntaxError as error:
        return {"error": f"{type(error).__name__}: {error.msg} (line {error.lineno})"}
    except BaseException as error:
        return {"error": _describe(error)}
    reward = namespace.get("reward")
    if not callable(reward):
        return {"error": "the code defines no function reward(prompt, completion, row)"}
    import inspect

    try:
        inspect.signature(reward).bind("", "", {})
    except (TypeError, ValueError):
        return {"error": "reward must accept three arguments: reward(prompt, completion, row)"}
    return reward


def _run(reward: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    try:
        value = reward(request["prompt"], request["completion"], request["row"])
        if not isinstance(value, int | float):
            return {"error": f"reward returned {type(value).__name__}, not a number"}
        return {"value": float(value)}
    except BaseException as error:
        return {"error": _describe(error)}


def _describe(error: BaseException) -> str:
    """``Type: message (line N)`` with the last line of the user code in the traceback."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == CODE_FILENAME:
            line = trace.tb_lineno
        trace = trace.tb_next
    where = f" (line {line})" if line is not None else ""
    return f"{type(error).__name__}: {str(error)[:MAX_ERROR_CHARS]}{where}"


def _reply(replies: IO[bytes], message: Mapping[str, Any]) -> None:
    replies.write(json.dumps(message).encode() + b"\n")
    replies.flush()


if __name__ == "__main__":
    _child_main()
