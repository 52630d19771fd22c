"""Artifacts: files under ``final/`` plus ``manifest.json`` written last. No manifest, no artifact.

The manifest records every file (path relative to the artifact root, sha256, size), the artifact's kind
and format, when it was created and its lineage (base model URI, data digest, config hash, image). Its own
sha256 is what referrers pin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .digests import FileEntry, config_hash, digest_files, file_entries
from .errors import BucketNotFoundError, CorruptArtifactError, NoArtifactError, NotFoundError, StorageError
from .store import Store, canonical_json, open_store, read_json
from .uri import UriLike, local_path, parse_uri

MANIFEST_NAME = "manifest.json"
FINAL_DIR = "final"
SCHEMA_VERSION = 1

__all__ = [
    "FINAL_DIR",
    "MANIFEST_NAME",
    "ArtifactRef",
    "build_manifest",
    "commit_artifact",
    "config_hash",
    "digest_files",
    "manifest_entries",
    "read_artifact_ref",
    "read_manifest",
    "verify",
]


@dataclass(frozen=True)
class ArtifactRef:
    """A committed artifact: its root URI and the sha256 (hex) of its manifest.json bytes."""

    uri: str
    manifest_sha256: str


def build_manifest(
    local_dir: Path,
    lineage: Mapping[str, Any],
    *,
    kind: str = "model",
    fmt: str = "safetensors",
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The manifest for the files of ``local_dir``, as they will be stored under ``final/``."""
    files = file_entries(local_dir, prefix=FINAL_DIR)
    if not files:
        raise ValueError(f"{local_dir}: no files to commit as an artifact")
    created = (created_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "kind": kind,
        "format": fmt,
        "createdAt": created.isoformat().replace("+00:00", "Z"),
        "lineage": dict(lineage),
        "files": [entry.to_json() for entry in files],
    }


def commit_artifact(
    local_dir: Path,
    dest_uri: UriLike,
    lineage: Mapping[str, Any],
    *,
    kind: str = "model",
    fmt: str = "safetensors",
) -> ArtifactRef:
    """Store ``local_dir`` as the artifact at ``dest_uri``: every file under ``final/``, then the manifest.

    Committing the same files again returns the existing reference; different files under an already
    committed artifact raise StorageError (artifacts are immutable).
    """
    store = open_store(dest_uri)
    manifest = build_manifest(local_dir, lineage, kind=kind, fmt=fmt)
    if store.exists(MANIFEST_NAME):
        return _existing_commit(store, manifest)
    if not _is_in_place(local_dir, dest_uri):
        store.delete(FINAL_DIR)
        store.put_dir(local_dir, FINAL_DIR)
    data = canonical_json(manifest, indent=2)
    store.put_bytes(MANIFEST_NAME, data)
    return ArtifactRef(store.uri, hashlib.sha256(data).hexdigest())


def _existing_commit(store: Store, manifest: dict[str, Any]) -> ArtifactRef:
    existing = read_json(store, MANIFEST_NAME)
    if existing.get("files") != manifest["files"]:
        raise StorageError(
            store.uri,
            "an artifact with different files is already committed here — artifacts are immutable; "
            "write to a new location (a new resource uid)",
        )
    return read_artifact_ref(store.uri)


def _is_in_place(local_dir: Path, dest_uri: UriLike) -> bool:
    dest = local_path(dest_uri)
    return dest is not None and (dest / FINAL_DIR).resolve() == local_dir.resolve()


def read_manifest(uri: UriLike) -> dict[str, Any]:
    """The manifest of the artifact at ``uri``; NoArtifactError when it has not been committed."""
    store = open_store(uri)
    try:
        manifest = read_json(store, MANIFEST_NAME)
    except BucketNotFoundError:
        raise
    except NotFoundError as exc:
        raise NoArtifactError(
            store.uri,
            "no artifact: manifest.json does not exist — the writer has not committed it (still running, "
            "or it failed before commit)",
        ) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise CorruptArtifactError(store.uri_for(MANIFEST_NAME), "is not a Stockpot manifest (no files list)")
    return manifest


def read_artifact_ref(uri: UriLike) -> ArtifactRef:
    """The reference (URI and manifest sha256) of the committed artifact at ``uri``."""
    read_manifest(uri)
    store = open_store(uri)
    return ArtifactRef(store.uri, hashlib.sha256(store.get_bytes(MANIFEST_NAME)).hexdigest())


def manifest_entries(manifest: Mapping[str, Any]) -> list[FileEntry]:
    """The manifest's files as entries (paths relative to the artifact root)."""
    return [FileEntry.from_json(item) for item in manifest["files"]]


def verify(uri: UriLike, *, hashes: bool = True) -> dict[str, Any]:
    """Check every file the manifest lists: present, same size and (if ``hashes``) same sha256.

    Returns the manifest; raises CorruptArtifactError listing the first problems found.
    """
    loc = parse_uri(uri)
    manifest = read_manifest(loc)
    store = open_store(loc)
    problems = entry_problems(store, manifest_entries(manifest), hashes=hashes)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CorruptArtifactError(store.uri, f"does not match its manifest: {shown}")
    return manifest


def entry_problems(store: Store, entries: list[FileEntry], *, hashes: bool) -> list[str]:
    """How the stored files differ from ``entries`` (missing, wrong size, wrong sha256)."""
    sizes = {info.key: info.size for info in store.list()}
    problems = []
    for entry in entries:
        size = sizes.get(entry.path)
        if size is None:
            problems.append(f"{entry.path} is missing")
        elif size != entry.size:
            problems.append(f"{entry.path} has {size} bytes, expected {entry.size}")
        elif hashes and store.sha256(entry.path) != entry.sha256:
            problems.append(f"{entry.path} has a different sha256")
    return problems
