"""Training progress for the operator and people: ``progress.json``, ``metrics.jsonl``, termination message.

``progress.json`` is overwritten at most every ``min_interval_s`` (or at once with ``force=True``);
``metrics.jsonl`` is buffered in a local file and uploaded whole on flush, continuing any file a previous
attempt left. The termination message is the one-line JSON summary Kubernetes shows in the pod status.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import NotFoundError, StorageError
from .store import Store, canonical_json, open_store, read_json
from .uri import UriLike

PROGRESS_NAME = "progress.json"
METRICS_NAME = "metrics.jsonl"
TERMINATION_LOG_ENV = "STOCKPOT_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT_BYTES = 4096
log = logging.getLogger(__name__)


def progress_document(
    step: int,
    *,
    total_steps: int | None = None,
    epoch: float | None = None,
    loss: float | None = None,
    lr: float | None = None,
    tokens_per_second: float | None = None,
    eta_seconds: float | None = None,
    resumes: int | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    updated: datetime | None = None,
) -> dict[str, Any]:
    """The ``progress.json`` content; non-finite numbers (a diverged loss) become null."""
    when = (updated or datetime.now(UTC)).astimezone(UTC)
    return {
        "step": step,
        "totalSteps": total_steps,
        "epoch": _finite(epoch),
        "loss": _finite(loss),
        "lr": _finite(lr),
        "tokensPerSecond": _finite(tokens_per_second),
        "etaSeconds": _finite(eta_seconds),
        "resumes": resumes,
        "checkpoint": dict(checkpoint) if checkpoint else None,
        "updated": when.isoformat().replace("+00:00", "Z"),
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class ProgressReporter:
    """Writes ``progress.json`` and ``metrics.jsonl`` under ``prefix_uri``."""

    def __init__(
        self,
        prefix_uri: UriLike,
        min_interval_s: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        buffer_dir: Path | None = None,
    ) -> None:
        self.store: Store = open_store(prefix_uri)
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last_write: float | None = None
        self._pending: dict[str, Any] | None = None
        self._buffer_dir = buffer_dir
        self._buffer: Path | None = None
        self._metrics_dirty = False

    def report(self, step: int, *, force: bool = False, **fields: Any) -> bool:
        """Record progress (fields as in ``progress_document``); write now if forced or due.

        Returns whether it was written. A storage failure is logged and retried at the next write, so a
        blip in storage never stops training.
        """
        self._pending = progress_document(step, **fields)
        now = self._clock()
        due = self._last_write is None or now - self._last_write >= self.min_interval_s
        if not (force or due):
            return False
        try:
            self._write_pending()
        except StorageError as exc:
            log.warning("progress not written (will retry): %s", exc)
            return False
        self._last_write = now
        return True

    def log_metrics(self, record: Mapping[str, Any]) -> None:
        """Append one record to the local ``metrics.jsonl`` buffer (uploaded on flush or the next report)."""
        line = canonical_json(_finite_record(record)) + b"\n"
        with self._metrics_file().open("ab") as out:
            out.write(line)
        self._metrics_dirty = True

    def flush(self) -> None:
        """Write pending progress and the whole metrics file now; storage errors propagate."""
        self._write_pending()
        self._last_write = self._clock()

    def _write_pending(self) -> None:
        if self._pending is not None:
            self.store.put_bytes(PROGRESS_NAME, canonical_json(self._pending, indent=2))
            self._pending = None
        if self._metrics_dirty and self._buffer is not None:
            self.store.put_file(self._buffer, METRICS_NAME)
            self._metrics_dirty = False

    def _metrics_file(self) -> Path:
        if self._buffer is None:
            directory = self._buffer_dir or Path(tempfile.mkdtemp(prefix="stockpot-metrics-"))
            directory.mkdir(parents=True, exist_ok=True)
            self._buffer = directory / METRICS_NAME
            try:
                self.store.get_file(METRICS_NAME, self._buffer)
            except NotFoundError:
                self._buffer.write_bytes(b"")
        return self._buffer


def _finite_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _finite(value) if isinstance(value, float) else value for key, value in record.items()}


def read_progress(uri: UriLike) -> dict[str, Any] | None:
    """The ``progress.json`` under ``uri``, or None when none has been written yet."""
    store = open_store(uri)
    try:
        data = read_json(store, PROGRESS_NAME)
    except NotFoundError:
        return None
    return data if isinstance(data, dict) else None


def read_metrics(uri: UriLike) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` under ``uri`` (empty when there is none)."""
    store = open_store(uri)
    try:
        data = store.get_bytes(METRICS_NAME)
    except NotFoundError:
        return []
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def termination_line(summary: Mapping[str, Any], limit: int = TERMINATION_LIMIT_BYTES) -> str:
    """One JSON line of at most ``limit`` bytes: long strings are cut first, then the whole is wrapped."""
    text = json.dumps(summary, separators=(",", ":"), default=str)
    width = 1024
    while len(text.encode()) > limit and width >= 16:
        text = json.dumps(_cut_strings(summary, width), separators=(",", ":"), default=str)
        width //= 2
    if len(text.encode()) <= limit:
        return text
    whole = json.dumps(summary, separators=(",", ":"), default=str)
    size = limit
    while True:
        text = json.dumps({"truncated": True, "summary": whole[:size]}, separators=(",", ":"))
        if len(text.encode()) <= limit:
            return text
        size = size * 3 // 4


def _cut_strings(value: Any, width: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= width else value[:width] + "…"
    if isinstance(value, Mapping):
        return {key: _cut_strings(item, width) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cut_strings(item, width) for item in value]
    return value


def write_termination_message(summary: Mapping[str, Any], path: str | Path | None = None) -> bool:
    """Write the summary as one JSON line (≤ 4 KiB) to the termination log; never raises on I/O errors.

    ``path`` defaults to ``$STOCKPOT_TERMINATION_LOG`` or ``/dev/termination-log``. Returns whether it was
    written.
    """
    target = Path(path or os.environ.get(TERMINATION_LOG_ENV) or DEFAULT_TERMINATION_LOG)
    line = termination_line(summary, TERMINATION_LIMIT_BYTES - 1)
    try:
        target.write_text(line + "\n")
    except OSError as exc:
        log.warning("termination message not written to %s: %s", target, exc)
        return False
    return True
