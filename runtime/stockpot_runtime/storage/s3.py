"""S3 store: a boto3 client configured from the environment, bounded parallel transfers, clear errors.

Settings come from the environment the operator gives the pod: ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, credentials through boto3's usual chain
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` from the resource's Secret),
``STOCKPOT_S3_ADDRESSING_STYLE`` (path|virtual, default path),
``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE`` and ``STOCKPOT_S3_CONCURRENCY``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from .errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    NotFoundError,
    StorageError,
)
from .local import relative_files
from .store import ObjectInfo, Store, join_key
from .uri import S3Location

ADDRESSING_STYLE_ENV = "STOCKPOT_S3_ADDRESSING_STYLE"
CONCURRENCY_ENV = "STOCKPOT_S3_CONCURRENCY"
_ENV_NAMES = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    ADDRESSING_STYLE_ENV,
    CONCURRENCY_ENV,
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "403",
        "Forbidden",
        "ExpiredToken",
        "InvalidToken",
    }
)
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
_CHUNK = 1 << 20
_T = TypeVar("_T")


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3; built from the environment by ``settings_from_env``."""

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "path"
    max_attempts: int = 5
    retry_mode: str = "standard"
    concurrency: int = 4

    @property
    def endpoint_label(self) -> str:
        return self.endpoint_url or "the default AWS S3 endpoint"


def settings_from_env(env: Mapping[str, str]) -> S3Settings:
    """Read S3 settings from environment variables; ``ValueError`` for values that make no sense."""
    style = env.get(ADDRESSING_STYLE_ENV, "path") or "path"
    if style not in ("path", "virtual"):
        raise ValueError(f"{ADDRESSING_STYLE_ENV}={style!r}: use 'path' or 'virtual'")
    return S3Settings(
        endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        addressing_style=style,
        max_attempts=_positive_int(env, "AWS_MAX_ATTEMPTS", 5),
        retry_mode=env.get("AWS_RETRY_MODE") or "standard",
        concurrency=_positive_int(env, CONCURRENCY_ENV, 4),
    )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r}: must be a positive integer")
    return int(raw)


def make_client(settings: S3Settings) -> Any:
    """A boto3 S3 client (credentials from boto3's chain, resolved now) with retries and timeouts."""
    config = Config(
        retries={"max_attempts": settings.max_attempts, "mode": settings.retry_mode},
        s3={"addressing_style": settings.addressing_style},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=max(10, settings.concurrency * 4),
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config)


@lru_cache(maxsize=8)
def _cached_client(env_items: tuple[tuple[str, str], ...]) -> tuple[S3Settings, Any]:
    settings = settings_from_env(dict(env_items))
    return settings, make_client(settings)


def translate_error(exc: BaseException, uri: str, settings: S3Settings) -> StorageError | None:
    """The StorageError for a boto3/botocore failure (looking through wrapping exceptions), or None."""
    for cause in _causes(exc):
        if isinstance(cause, ClientError):
            return _client_error(cause, uri, settings)
        if isinstance(cause, NoCredentialsError | PartialCredentialsError):
            return AccessDeniedError(
                uri,
                "no usable S3 credentials — reference the credentials Secret in the resource so "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set",
            )
        if isinstance(cause, _UNREACHABLE):
            return EndpointUnreachableError(
                uri,
                f"cannot reach the S3 endpoint {settings.endpoint_label} ({type(cause).__name__}) — check "
                "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and that the endpoint is reachable from the pod",
            )
        if isinstance(cause, BotoCoreError):
            return StorageError(uri, f"S3 client error ({type(cause).__name__})")
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _client_error(exc: ClientError, uri: str, settings: S3Settings) -> StorageError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    if code == "NoSuchBucket":
        return BucketNotFoundError(
            uri,
            f"bucket '{bucket}' does not exist at {settings.endpoint_label} — create it or fix the bucket in the URI",
        )
    if code in _NOT_FOUND_CODES:
        return NotFoundError(uri, "no such object")
    if code in _DENIED_CODES:
        return AccessDeniedError(
            uri,
            f"access denied ({code}) — check the credentials Secret referenced by the resource "
            f"(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and that it may access bucket '{bucket}'",
        )
    return StorageError(uri, f"S3 error {code or 'unknown'}: {error.get('Message', 'no message')}")


class S3Store:
    """Objects under an S3 prefix; keys are relative to the prefix."""

    def __init__(self, client: Any, location: S3Location, settings: S3Settings | None = None) -> None:
        self.client = client
        self.location = location
        self.settings = settings or S3Settings()
        self._transfer = TransferConfig(max_concurrency=self.settings.concurrency, use_threads=True)

    @classmethod
    def from_env(cls, location: S3Location, env: Mapping[str, str] | None = None) -> S3Store:
        source = os.environ if env is None else env
        settings, client = _cached_client(tuple((name, source.get(name, "")) for name in _ENV_NAMES))
        return cls(client, location, settings)

    @property
    def uri(self) -> str:
        return str(self.location)

    def uri_for(self, key: str) -> str:
        return str(S3Location(self.location.bucket, self._key(key)))

    def child(self, key: str) -> Store:
        return S3Store(self.client, S3Location(self.location.bucket, self._key(key)), self.settings)

    def _key(self, key: str) -> str:
        return join_key(self.location.key, key)

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError, boto3.exceptions.Boto3Error) as exc:
            translated = translate_error(exc, self.uri_for(key), self.settings)
            if translated is None:
                raise
            raise translated from exc

    def put_file(self, src: Path, key: str) -> None:
        with self._errors(key):
            self.client.upload_file(str(src), self.location.bucket, self._key(key), Config=self._transfer)

    def put_dir(self, src: Path, key: str = "") -> list[str]:
        rels = relative_files(src)
        jobs = [lambda rel=rel: self.put_file(src / rel, join_key(key, rel)) for rel in rels]
        _run_bounded(jobs, self.settings.concurrency)
        return [join_key(key, rel) for rel in rels]

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors(key):
            self.client.put_object(Bucket=self.location.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        with self._errors(key):
            response = self.client.get_object(Bucket=self.location.bucket, Key=self._key(key))
            return bytes(response["Body"].read())

    def get_file(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._errors(key):
            self.client.download_file(self.location.bucket, self._key(key), str(dest), Config=self._transfer)
        return dest

    def get_dir(self, key: str, dest: Path) -> list[Path]:
        infos = self.list(key)
        if not infos:
            raise NotFoundError(self.uri_for(key), "no objects under this prefix")
        stale = [info for info in infos if not _same_size(dest / info.key, info.size)]
        jobs = [lambda i=info: self.get_file(join_key(key, i.key), dest / i.key) for info in stale]
        _run_bounded(jobs, self.settings.concurrency)
        return [dest / info.key for info in infos]

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                self.client.head_object(Bucket=self.location.bucket, Key=self._key(key))
        except NotFoundError:
            return False
        return True

    def list(self, key: str = "") -> list[ObjectInfo]:
        prefix = self._key(key)
        prefix = f"{prefix}/" if prefix else ""
        out: list[ObjectInfo] = []
        with self._errors(key):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    rel = item["Key"][len(prefix) :]
                    if rel and not rel.endswith("/"):
                        out.append(ObjectInfo(rel, int(item["Size"])))
        return sorted(out, key=lambda info: info.key)

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        with self._errors(key):
            body = self.client.get_object(Bucket=self.location.bucket, Key=self._key(key))["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def delete(self, key: str = "") -> int:
        keys = [self._key(join_key(key, info.key)) for info in self.list(key)]
        if join_key(key) and self.exists(key):
            keys.append(self._key(key))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            with self._errors(key):
                response = self.client.delete_objects(
                    Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if response.get("Errors"):
                first = response["Errors"][0]
                why = f"could not delete {first.get('Key')}: {first.get('Code')}"
                raise StorageError(self.uri_for(key), why)
        return len(keys)


def _same_size(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


def _run_bounded(jobs: Sequence[Callable[[], _T]], workers: int) -> list[_T]:
    """Run jobs on at most ``workers`` threads; a failure cancels jobs not yet started, then raises."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            error = None if future.cancelled() or not future.done() else future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]
