"""One interface over S3 prefixes and filesystem directories, addressed by keys relative to a root.

Manifests, checkpoints and progress are written through a ``Store`` so the same code serves ``s3://``,
``pvc://`` and local destinations. ``open_store`` picks the implementation for a URI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .uri import HubLocation, S3Location, UriLike, parse_uri


@dataclass(frozen=True)
class ObjectInfo:
    """A stored file: its key relative to the store's root and its size in bytes."""

    key: str
    size: int


class Store(Protocol):
    """Files under a root location, addressed by '/'-separated keys ("" is the root itself)."""

    @property
    def uri(self) -> str: ...

    def uri_for(self, key: str) -> str: ...

    def child(self, key: str) -> Store: ...

    def put_file(self, src: Path, key: str) -> None: ...

    def put_dir(self, src: Path, key: str = "") -> list[str]: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_file(self, key: str, dest: Path) -> Path: ...

    def get_dir(self, key: str, dest: Path) -> list[Path]: ...

    def exists(self, key: str) -> bool: ...

    def list(self, key: str = "") -> list[ObjectInfo]: ...

    def sha256(self, key: str) -> str: ...

    def delete(self, key: str = "") -> int: ...


def open_store(location: UriLike) -> Store:
    """The store rooted at an s3://, pvc:// or local location (hub repositories are read-only sources)."""
    loc = parse_uri(location)
    if isinstance(loc, S3Location):
        from .s3 import S3Store

        return S3Store.from_env(loc)
    if isinstance(loc, HubLocation):
        raise ValueError(f"{loc}: a hub repository cannot be written to or listed as a store")
    from .local import LocalStore

    return LocalStore(loc.path, str(loc))


def read_json(store: Store, key: str) -> Any:
    """Parse a small JSON object; a file that is not JSON raises CorruptArtifactError."""
    from .errors import CorruptArtifactError

    data = store.get_bytes(key)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(store.uri_for(key), f"is not valid JSON ({exc})") from exc


def write_json(store: Store, key: str, obj: Any) -> bytes:
    """Write canonical, indented JSON (sorted keys); returns the exact bytes written."""
    data = canonical_json(obj, indent=2)
    store.put_bytes(key, data)
    return data


def canonical_json(obj: Any, indent: int | None = None) -> bytes:
    """Deterministic JSON bytes: sorted keys, UTF-8, no NaN."""
    separators = (",", ": ") if indent else (",", ":")
    text = json.dumps(obj, sort_keys=True, indent=indent, separators=separators, ensure_ascii=False, allow_nan=False)
    return (text + "\n" if indent else text).encode()


def join_key(*parts: str) -> str:
    """Join key segments with '/', ignoring empty ones and stray slashes."""
    return "/".join(part.strip("/") for part in parts if part.strip("/"))
