"""The filesystem store (pvc:// mounts and local paths): every write is temp file, fsync, atomic rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import NotFoundError, StorageError
from .store import ObjectInfo, Store, join_key

_TMP_MARK = ".stockpot-tmp-"
_CHUNK = 1 << 20


class LocalStore:
    """Files under a directory; keys are paths relative to it."""

    def __init__(self, root: Path, uri: str | None = None) -> None:
        self.root = root
        self._uri = uri or str(root)

    @property
    def uri(self) -> str:
        return self._uri

    def uri_for(self, key: str) -> str:
        key = join_key(key)
        return f"{self._uri.rstrip('/')}/{key}" if key else self._uri

    def child(self, key: str) -> Store:
        return LocalStore(self._path(key), self.uri_for(key))

    def _path(self, key: str) -> Path:
        key = join_key(key)
        return self.root / key if key else self.root

    def put_file(self, src: Path, key: str) -> None:
        with _errors(self.uri_for(key)), src.open("rb") as reader:
            _atomic_write(self._path(key), lambda out: shutil.copyfileobj(reader, out, _CHUNK))

    def put_dir(self, src: Path, key: str = "") -> list[str]:
        written = []
        for rel in relative_files(src):
            self.put_file(src / rel, join_key(key, rel))
            written.append(join_key(key, rel))
        return written

    def put_bytes(self, key: str, data: bytes) -> None:
        with _errors(self.uri_for(key)):
            _atomic_write(self._path(key), lambda out: out.write(data))

    def get_bytes(self, key: str) -> bytes:
        path = self._existing_file(key)
        with _errors(self.uri_for(key)):
            return path.read_bytes()

    def get_file(self, key: str, dest: Path) -> Path:
        path = self._existing_file(key)
        with _errors(self.uri_for(key)):
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        return dest

    def get_dir(self, key: str, dest: Path) -> list[Path]:
        infos = self.list(key)
        if not infos:
            raise NotFoundError(self.uri_for(key), "no such directory or it is empty")
        out = []
        for info in infos:
            target = dest / info.key
            if not (target.is_file() and target.stat().st_size == info.size):
                self.get_file(join_key(key, info.key), target)
            out.append(target)
        return out

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, key: str = "") -> list[ObjectInfo]:
        base = self._path(key)
        if not base.is_dir():
            return []
        return [ObjectInfo(rel, (base / rel).stat().st_size) for rel in relative_files(base)]

    def sha256(self, key: str) -> str:
        return sha256_file(self._existing_file(key))

    def delete(self, key: str = "") -> int:
        path = self._path(key)
        if path.is_file():
            path.unlink()
            return 1
        if not path.is_dir():
            return 0
        count = len(self.list(key))
        with _errors(self.uri_for(key)):
            shutil.rmtree(path)
        return count

    def _existing_file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError(self.uri_for(key), "no such file")
        return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def relative_files(base: Path) -> list[str]:
    """Every regular file under ``base`` as a sorted posix relative path, skipping in-flight temp files."""
    files = [path for path in base.rglob("*") if path.is_file() and _TMP_MARK not in path.name]
    return sorted(path.relative_to(base).as_posix() for path in files)


def _atomic_write(dest: Path, write: Callable[[BinaryIO], object]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _errors(uri: str) -> Iterator[None]:
    try:
        yield
    except PermissionError as exc:
        raise StorageError(uri, (f"permission denied ({exc.strerror}) — check the volume's mount and fsGroup")) from exc
    except FileNotFoundError as exc:
        raise NotFoundError(uri, f"no such file ({exc.strerror})") from exc
    except OSError as exc:
        raise StorageError(uri, f"filesystem error: {exc.strerror or exc}") from exc
