"""Storage locations: parse ``s3://``, ``hf://``, ``pvc://``, ``file://`` and paths into typed values.

A location is a frozen dataclass; ``str(location)`` gives back its canonical URI. ``join`` appends path
segments to any location that is a prefix (all but hub repositories).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PVC_ROOT_ENV = "STOCKPOT_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"

ACCEPTED_FORMS = (
    "s3://bucket/key, hf://org/name[@revision], pvc://claim/path, file:///absolute/path, "
    "or a plain absolute or relative path"
)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_HUB_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_CLAIM = re.compile(r"^[a-z0-9]([a-z0-9\-]{0,251}[a-z0-9])?$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


@dataclass(frozen=True)
class S3Location:
    """An object key or key prefix in an S3 bucket; ``key`` has no leading slash and may be empty."""

    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"


@dataclass(frozen=True)
class HubLocation:
    """A model hub repository, optionally pinned to a revision (branch, tag or commit)."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        suffix = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo_id}{suffix}"


@dataclass(frozen=True)
class PvcLocation:
    """A path inside a PersistentVolumeClaim, mounted by the operator at ``<root>/<claim>``."""

    claim: str
    sub_path: str = ""
    root: Path = Path(DEFAULT_PVC_ROOT)

    @property
    def path(self) -> Path:
        base = self.root / self.claim
        return base / self.sub_path if self.sub_path else base

    def __str__(self) -> str:
        return f"pvc://{self.claim}/{self.sub_path}" if self.sub_path else f"pvc://{self.claim}"


@dataclass(frozen=True)
class LocalLocation:
    """A path on the local filesystem (from ``file://`` or a plain path)."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


Location = S3Location | HubLocation | PvcLocation | LocalLocation
UriLike = str | Path | Location
"""Anything that names a location: a URI string, a filesystem Path, or a parsed location."""


def parse_uri(uri: UriLike) -> Location:
    """Parse a URI into its location; ``ValueError`` names the URI and the accepted forms otherwise."""
    if isinstance(uri, Path):
        return LocalLocation(uri)
    if not isinstance(uri, str):
        return uri
    if not uri.strip():
        raise _invalid(uri, "it is empty")
    match = _SCHEME.match(uri)
    if match is None:
        return LocalLocation(Path(uri))
    scheme, rest = match.group(1), uri[match.end() :]
    if scheme == "s3":
        return _parse_s3(uri, rest)
    if scheme == "hf":
        return _parse_hub(uri, rest)
    if scheme == "pvc":
        return _parse_pvc(uri, rest)
    if scheme == "file":
        return _parse_file(uri, rest)
    raise _invalid(uri, f"the scheme {scheme}:// is not supported")


def _parse_s3(uri: str, rest: str) -> S3Location:
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise _invalid(uri, (f"{bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '.', '-')"))
    return S3Location(bucket, _normalize_key(uri, key))


def _parse_hub(uri: str, rest: str) -> HubLocation:
    repo_id, at, revision = rest.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_HUB_PART.match(part) for part in parts):
        raise _invalid(uri, "a hub repository is written org/name")
    if at and not revision:
        raise _invalid(uri, "the revision after '@' is empty")
    return HubLocation(repo_id, revision or None)


def _parse_pvc(uri: str, rest: str) -> PvcLocation:
    claim, _, sub_path = rest.partition("/")
    if not _CLAIM.match(claim):
        raise _invalid(uri, f"{claim!r} is not a valid claim name (lowercase letters, digits, '-')")
    root = Path(os.environ.get(PVC_ROOT_ENV) or DEFAULT_PVC_ROOT)
    return PvcLocation(claim, _normalize_key(uri, sub_path), root)


def _parse_file(uri: str, rest: str) -> LocalLocation:
    if not rest.startswith("/"):
        raise _invalid(uri, "file:// URIs need an absolute path (file:///abs/path)")
    return LocalLocation(Path(rest))


def _normalize_key(uri: str, key: str) -> str:
    parts = [part for part in key.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise _invalid(uri, "'.' and '..' are not allowed in the path")
    return "/".join(parts)


def _invalid(uri: str, why: str) -> ValueError:
    return ValueError(f"invalid storage URI {uri!r}: {why}; accepted forms: {ACCEPTED_FORMS}")


def join(location: UriLike, *parts: str) -> Location:
    """Append path segments (each may contain '/') to a prefix location."""
    loc = parse_uri(location)
    extra = "/".join(part.strip("/") for part in parts if part.strip("/"))
    if not extra:
        return loc
    if any(seg in (".", "..") for seg in extra.split("/")):
        raise ValueError(f"cannot join {parts!r} to {loc}: '.' and '..' are not allowed")
    if isinstance(loc, S3Location):
        return S3Location(loc.bucket, _concat(loc.key, extra))
    if isinstance(loc, PvcLocation):
        return PvcLocation(loc.claim, _concat(loc.sub_path, extra), loc.root)
    if isinstance(loc, LocalLocation):
        return LocalLocation(loc.path / PurePosixPath(extra))
    raise ValueError(f"cannot join paths to {loc}: a hub repository is not a prefix")


def _concat(prefix: str, extra: str) -> str:
    return f"{prefix}/{extra}" if prefix else extra


def local_path(location: UriLike) -> Path | None:
    """The filesystem path of a pvc:// or local location, None for remote ones."""
    loc = parse_uri(location)
    if isinstance(loc, PvcLocation | LocalLocation):
        return loc.path
    return None
