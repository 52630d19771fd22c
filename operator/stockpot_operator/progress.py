"""Reading a run's ``progress.json`` from S3, with the credentials its resource names, backing off on failure.

The operator reads only what the runtime publishes for it (``progress.json``); credentials come from the Secret
named in ``spec.credentials.s3Secret`` at read time and live only in the boto3 client. ``pvc://`` outputs are
not readable by the operator: their status gets no live progress (the termination message still reports the
outcome). A failed read is retried after 10 s, doubling up to 5 minutes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
MIN_BACKOFF_S, MAX_BACKOFF_S = 10.0, 300.0


@dataclass
class _Backoff:
    delay: float = 0.0
    next_try: float = 0.0


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → (``bucket``, ``a/b``)."""
    rest = uri.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")


class ProgressReader:
    """``read(artifact_uri, endpoint, credentials)`` → progress.json as a dict, or None (absent or backing off)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._backoff: dict[str, _Backoff] = {}

    def read(self, artifact_uri: str, endpoint: str | None, region: str, credentials: Mapping[str, str]) -> Any:
        if not artifact_uri.startswith("s3://"):
            return None
        state = self._backoff.setdefault(artifact_uri, _Backoff())
        if self._clock() < state.next_try:
            return None
        bucket, prefix = split_s3(artifact_uri)
        try:
            body = self._client(endpoint, region, credentials).get_object(Bucket=bucket, Key=f"{prefix}/progress.json")
            progress = json.loads(body["Body"].read())
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
            if code not in ("NoSuchKey", "404"):
                state.delay = min(max(state.delay * 2, MIN_BACKOFF_S), MAX_BACKOFF_S)
                state.next_try = self._clock() + state.delay
                log.info("progress of %s not readable (%s); next try in %.0f s", artifact_uri, code, state.delay)
            return None
        state.delay, state.next_try = 0.0, 0.0
        return progress if isinstance(progress, dict) else None

    @staticmethod
    def _client(endpoint: str | None, region: str, credentials: Mapping[str, str]) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
            config=Config(
                retries={"max_attempts": 1}, connect_timeout=3, read_timeout=5, s3={"addressing_style": "path"}
            ),
        )
