"""Where a model comes from: a URI (hf://, s3://, pvc://, or a path) plus how to load it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, StringConstraints

from .base import PATTERN_HINTS, Problem, SpecModel

URI_PATTERN = r"^(hf://[^/@\s]+/[^/@\s]+(@[^\s]+)?|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?|pvc://[a-z0-9][a-z0-9\-]*(/\S*)?|/\S*)$"
"""hf://org/name[@rev], s3://bucket[/key], pvc://claim[/path], or an absolute path inside the image."""

Uri = Annotated[
    str,
    StringConstraints(pattern=URI_PATTERN, max_length=1024),
    Field(
        description="hf://org/name[@revision], s3://bucket/key, pvc://claim/path, or an absolute path in the image.",
        examples=["hf://Qwen/Qwen2.5-0.5B-Instruct", "s3://models/base/llama", "pvc://models/llama"],
    ),
]
"""A location the runtime can read from or write to."""

PATTERN_HINTS[URI_PATTERN] = (
    "not a location: use hf://org/name[@revision], s3://bucket/key (bucket 3-63 lowercase characters), "
    "pvc://claim/path or an absolute path"
)


def uri_scheme(uri: str) -> str:
    """``hf``, ``s3``, ``pvc`` or ``path``."""
    match = re.match(r"^([a-z0-9]+)://", uri)
    return match.group(1) if match else "path"


class ModelSource(SpecModel):
    """A base model to load: its location, revision and whether its repository code may run."""

    uri: Uri
    revision: str | None = Field(
        default=None,
        max_length=255,
        description="Hub revision (branch, tag or commit) for hf:// models; the @revision suffix of the URI also works.",
    )
    trust_remote_code: bool = Field(
        default=False,
        description="Run Python code shipped with the model repository. Off by default: only enable for sources you trust.",
    )

    def problems(self) -> Iterator[Problem]:
        if self.revision and uri_scheme(self.uri) != "hf":
            yield Problem(("revision",), "revision applies only to hf:// models; remove it or use an hf:// uri")
        if self.revision and "@" in self.uri:
            yield Problem(("revision",), "give the revision once: either as uri@revision or in revision, not both")
