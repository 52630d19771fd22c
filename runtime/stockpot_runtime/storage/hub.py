"""Model hub sources: ``hf://org/name[@revision]`` downloaded with ``huggingface_hub.snapshot_download``.

The token comes from ``HF_TOKEN`` (huggingface_hub also reads it itself); offline mode (``HF_HUB_OFFLINE=1``)
is honoured. Every failure becomes a ``HubError`` naming the repository and the likely fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx2
from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .errors import EndpointUnreachableError, HubError, StorageError
from .uri import HubLocation

MODEL_FILE_PATTERNS: tuple[str, ...] = (
    "*.json",
    "*.safetensors",
    "*.model",
    "*.tiktoken",
    "*.txt",
    "*.jinja",
)
"""Config, weights (safetensors) and tokenizer files: what loading a model for training or serving needs."""

CODE_FILE_PATTERNS: tuple[str, ...] = ("*.py",)
"""Repository code, needed only when a model is loaded with trust_remote_code."""


def download_hub(
    location: HubLocation,
    dest_dir: Path,
    *,
    allow_patterns: tuple[str, ...] = MODEL_FILE_PATTERNS,
    revision: str | None = None,
) -> Path:
    """Download a hub repository's matching files into ``dest_dir``; ``revision`` overrides the URI's."""
    revision = revision or location.revision
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = snapshot_download(
            location.repo_id,
            revision=revision,
            local_dir=dest_dir,
            allow_patterns=list(allow_patterns),
            token=os.environ.get("HF_TOKEN") or None,
        )
    except Exception as exc:
        raise translate_hub_error(exc, str(location), revision) from exc
    return Path(str(path))


def translate_hub_error(exc: Exception, uri: str, revision: str | None) -> StorageError:
    """The StorageError explaining a hub download failure."""
    if isinstance(exc, GatedRepoError):
        return HubError(
            uri,
            "the repository is gated — accept its terms on the hub with the account whose token is in "
            "HF_TOKEN (set through the resource's credentials Secret)",
        )
    if isinstance(exc, RevisionNotFoundError):
        return HubError(uri, f"revision {revision!r} does not exist in the repository — fix the revision")
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(
            uri,
            "repository not found, or private and HF_TOKEN is missing or lacks access — check the name "
            "and the credentials Secret",
        )
    if isinstance(exc, LocalEntryNotFoundError):
        return EndpointUnreachableError(
            uri,
            "the model hub is unreachable (offline mode or no network) and no local copy exists — allow "
            "egress to the hub (or HF_ENDPOINT), or copy the model to s3:// or a pvc:// volume and use "
            "that URI",
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "unknown"
        return HubError(uri, f"the hub answered HTTP {status} — the hub may be unavailable; retry later")
    if isinstance(exc, OSError | ConnectionError | httpx2.TransportError):
        return EndpointUnreachableError(
            uri,
            f"the model hub may be unreachable ({type(exc).__name__}) — check network egress to the hub, "
            "or copy the model to s3:// or a pvc:// volume",
        )
    return HubError(uri, f"download failed ({type(exc).__name__}: {exc})")
