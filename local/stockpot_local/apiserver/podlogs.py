"""Pod logs: ``<state_dir>/logs/<namespace>/<pod>/<container>.log`` as written by the process kubelet.

The previous run of a restarted container is ``<container>.previous.log``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import APIError, bad_request

Obj = dict[str, Any]
TERMINAL_PHASES = ("Succeeded", "Failed")


def log_path(state_dir: Path, namespace: str, pod: str, container: str, previous: bool = False) -> Path:
    suffix = ".previous.log" if previous else ".log"
    return state_dir / "logs" / namespace / pod / f"{container}{suffix}"


def container_name(pod: Obj, requested: str | None) -> str:
    spec = pod.get("spec") or {}
    names = [str(c["name"]) for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
    if requested:
        if requested not in names:
            raise bad_request(f"container {requested} is not valid for pod {pod['metadata']['name']}")
        return requested
    main = [str(c["name"]) for c in spec.get("containers") or []]
    if len(main) == 1:
        return main[0]
    raise bad_request(
        f"a container name must be specified for pod {pod['metadata']['name']}, choose one of: [{' '.join(main)}]"
    )


def tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def read_log(path: Path, tail_lines: int | None, previous: bool) -> tuple[bytes, int]:
    """The (tail of the) log and how many bytes of the file were read."""
    if not path.exists():
        if previous:
            raise bad_request(f"previous terminated container {path.stem.split('.')[0]!r} not found")
        return b"", 0
    try:
        data = path.read_bytes()
        return tail(data, tail_lines), len(data)
    except OSError as exc:
        raise APIError(500, f"reading {path}: {exc}") from exc


def is_terminal(pod: Obj | None) -> bool:
    return pod is None or (pod.get("status") or {}).get("phase") in TERMINAL_PHASES
