"""Content digests: per-file sha256 entries, data digests over many files, config hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .local import relative_files, sha256_file
from .store import canonical_json


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact or checkpoint: posix path relative to its root, sha256 and size."""

    path: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileEntry:
        return cls(str(data["path"]), str(data["sha256"]), int(data["size"]))


def file_entries(root: Path, prefix: str = "", exclude: Iterable[str] = ()) -> list[FileEntry]:
    """Entries for every file under ``root`` (sorted); paths get ``prefix/`` prepended."""
    skip = set(exclude)
    out = []
    for rel in relative_files(root):
        if rel in skip:
            continue
        path = root / rel
        name = f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel
        out.append(FileEntry(name, sha256_file(path), path.stat().st_size))
    return out


def digest_files(paths: Iterable[Path]) -> str:
    """``sha256:<hex>`` over the given files (directories expand to their files), order-independent.

    Each file contributes its name relative to the argument it came from and its content hash, so the same
    data under another directory gives the same digest and renaming or editing any file changes it.
    """
    items: list[tuple[str, str]] = []
    for path in paths:
        if path.is_dir():
            items.extend((rel, sha256_file(path / rel)) for rel in relative_files(path))
        elif path.is_file():
            items.append((path.name, sha256_file(path)))
        else:
            raise FileNotFoundError(f"{path}: cannot digest, no such file or directory")
    digest = hashlib.sha256()
    for name, file_hash in sorted(items):
        digest.update(f"{name}\0{file_hash}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def config_hash(obj: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``obj`` (sorted keys, no whitespace)."""
    return f"sha256:{hashlib.sha256(canonical_json(obj)).hexdigest()}"
