"""S3-compatible storage settings: where the endpoint is. Credentials never appear here (env from Secrets)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import SpecModel


class AddressingStyle(StrEnum):
    PATH = "path"
    VIRTUAL = "virtual"


class StorageSpec(SpecModel):
    """How to reach S3-compatible storage for every s3:// location of the resource."""

    endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        max_length=512,
        description="S3 endpoint URL (MinIO, SeaweedFS, Ceph…); unset: AWS S3 or the operator's default.",
    )
    region: str = Field(default="us-east-1", max_length=64, description="S3 region.")
    addressing_style: AddressingStyle = Field(default=AddressingStyle.PATH, description="path or virtual-hosted style.")
