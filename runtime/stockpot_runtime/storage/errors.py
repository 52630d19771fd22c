"""Storage errors: each names the location it concerns and what to do about it, never a secret value."""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation failed; ``uri`` is the location, ``str(error)`` says why and how to fix it."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason


class NotFoundError(StorageError):
    """The object, prefix or path does not exist."""


class BucketNotFoundError(NotFoundError):
    """The S3 bucket does not exist."""


class AccessDeniedError(StorageError):
    """The credentials are missing, wrong, or not allowed to do this."""


class EndpointUnreachableError(StorageError):
    """The storage endpoint (S3 or the model hub) could not be reached."""


class HubError(StorageError):
    """A model hub repository could not be downloaded (unreachable, gated, missing or bad revision)."""


class NoArtifactError(NotFoundError):
    """No committed artifact at this location: its manifest.json does not exist (yet)."""


class CorruptArtifactError(StorageError):
    """Stored files do not match what their manifest or checkpoint marker records."""


class ModelDirError(StorageError):
    """A model directory lacks files a model needs (config, weights, shards listed in its index)."""
