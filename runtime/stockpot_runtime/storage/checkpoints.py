"""Checkpoints under a prefix: ``step-<N>/`` directories, each complete once its ``checkpoint.json`` exists.

The marker (step, files with sha256 and size, created) is written after every file, so a checkpoint
interrupted mid-upload is never taken for complete. Pruning runs only after a new checkpoint is complete,
so the newest complete checkpoint is never deleted before its successor exists.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from .digests import FileEntry, file_entries
from .errors import CorruptArtifactError, StorageError
from .local import sha256_file
from .store import ObjectInfo, Store, join_key, open_store, read_json, write_json
from .uri import UriLike

MARKER_NAME = "checkpoint.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")
log = logging.getLogger(__name__)


class CheckpointRef(NamedTuple):
    """A complete checkpoint: its training step and URI."""

    step: int
    uri: str


class CheckpointStore:
    """Save, find, restore and prune the checkpoints under ``prefix_uri``, keeping the newest ``keep``."""

    def __init__(self, prefix_uri: UriLike, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.store: Store = open_store(prefix_uri)
        self.keep = keep

    def save(self, step: int, local_dir: Path) -> CheckpointRef:
        """Upload ``local_dir`` as ``step-<step>/``, then its marker, then prune older checkpoints.

        Saving a step that is already complete returns it unchanged (a second save of the same step,
        e.g. on SIGTERM right after a periodic save, has nothing new to store).
        """
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if (local_dir / MARKER_NAME).exists():
            raise ValueError(f"{local_dir} contains {MARKER_NAME}, a name reserved for the completion marker")
        name = step_dir(step)
        child = self.store.child(name)
        if child.exists(MARKER_NAME):
            return CheckpointRef(step, child.uri)
        entries = file_entries(local_dir)
        if not entries:
            raise ValueError(f"{local_dir}: an empty directory is not a checkpoint")
        child.delete()
        child.put_dir(local_dir)
        write_json(child, MARKER_NAME, marker(step, entries))
        self.prune()
        return CheckpointRef(step, child.uri)

    def complete(self) -> list[CheckpointRef]:
        """Every complete checkpoint, oldest first: marker readable, every file present with its size."""
        by_step = _group_by_step(self.store.list())
        out = []
        for step in sorted(by_step):
            files = by_step[step]
            if MARKER_NAME in files and self._is_complete(step, files):
                out.append(CheckpointRef(step, self.store.uri_for(step_dir(step))))
        return out

    def latest_complete(self) -> CheckpointRef | None:
        """The newest complete checkpoint, or None when there is none (incomplete ones are ignored)."""
        found = self.complete()
        return found[-1] if found else None

    def restore(self, step: int, dest_dir: Path) -> Path:
        """Download checkpoint ``step`` into ``dest_dir`` and check every file's sha256 against the marker."""
        child = self.store.child(step_dir(step))
        entries = _marker_entries(child)
        child.get_dir("", dest_dir)
        for entry in entries:
            if sha256_file(dest_dir / entry.path) != entry.sha256:
                child.get_file(entry.path, dest_dir / entry.path)
                if sha256_file(dest_dir / entry.path) != entry.sha256:
                    raise CorruptArtifactError(child.uri_for(entry.path), "sha256 differs from checkpoint.json")
        (dest_dir / MARKER_NAME).unlink(missing_ok=True)
        return dest_dir

    def prune(self) -> list[int]:
        """Delete complete checkpoints beyond the newest ``keep`` and incomplete ones older than the newest.

        Incomplete checkpoints newer than the newest complete one are left alone: a writer may still be
        uploading them.
        """
        complete = [ref.step for ref in self.complete()]
        if not complete:
            return []
        newest = complete[-1]
        incomplete = set(_group_by_step(self.store.list())) - set(complete)
        doomed = complete[: -self.keep] + sorted(step for step in incomplete if step < newest)
        for step in doomed:
            self.store.delete(step_dir(step))
        return sorted(doomed)

    def _is_complete(self, step: int, files: dict[str, int]) -> bool:
        try:
            entries = _marker_entries(self.store.child(step_dir(step)))
        except StorageError as exc:
            log.warning("ignoring checkpoint step %d: %s", step, exc)
            return False
        return all(files.get(entry.path) == entry.size for entry in entries)


def step_dir(step: int) -> str:
    """The directory name of a step's checkpoint."""
    return f"step-{step}"


def marker(step: int, entries: list[FileEntry], created: datetime | None = None) -> dict[str, Any]:
    """The completion marker of a checkpoint."""
    when = (created or datetime.now(UTC)).astimezone(UTC)
    return {
        "step": step,
        "created": when.isoformat().replace("+00:00", "Z"),
        "files": [entry.to_json() for entry in entries],
    }


def _marker_entries(child: Store) -> list[FileEntry]:
    data = read_json(child, MARKER_NAME)
    try:
        return [FileEntry.from_json(item) for item in data["files"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptArtifactError(child.uri_for(MARKER_NAME), f"is not a checkpoint marker ({exc})") from exc


def _group_by_step(infos: list[ObjectInfo]) -> dict[int, dict[str, int]]:
    """``{step: {path inside the step dir: size}}`` for every ``step-<N>/`` directory."""
    grouped: dict[int, dict[str, int]] = defaultdict(dict)
    for info in infos:
        head, _, rest = info.key.partition("/")
        match = _STEP_DIR.match(head)
        if match and rest:
            grouped[int(match.group(1))][join_key(rest)] = info.size
    return dict(grouped)
