"""S3-backed storage tests: the local S3 fixtures, and the runtime's AWS environment pointed at them."""

from __future__ import annotations

import pytest

from stockpot_local.s3 import S3Access


@pytest.fixture
def s3_env(s3: S3Access, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the runtime's S3 settings at the test server; returns a fresh bucket's name."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    return s3_bucket
