"""Status shapes shared by the four kinds."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from stockpot_runtime.spec import SpecModel


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(SpecModel):
    """A Kubernetes condition (metav1.Condition)."""

    type: str = Field(max_length=316, description="CamelCase condition type, e.g. Running.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase reason for the last transition.")
    message: str = Field(default="", max_length=32_768, description="Human-readable detail.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, ge=0, description="Generation the condition was set for.")


class ArtifactRef(SpecModel):
    """A committed artifact: its prefix and the digest of its manifest."""

    uri: str = Field(description="Artifact prefix; manifest.json lies under it.")
    manifest_sha256: str = Field(description="sha256 of manifest.json.")
    base_model: str | None = Field(default=None, description="Base model the artifact derives from.")
    config_hash: str | None = Field(default=None, description="Hash of the configuration that produced it.")


class StatusBase(SpecModel):
    """Fields every kind's status has."""

    phase: str | None = Field(default=None, description="Coarse lifecycle phase.")
    observed_generation: int | None = Field(default=None, ge=0, description="Generation last reconciled.")
    conditions: list[Condition] = Field(default_factory=list, description="Current conditions.")
