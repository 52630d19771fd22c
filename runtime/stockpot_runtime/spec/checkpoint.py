"""Checkpoints: how often, how many to keep, and whether a restarted run resumes from them."""

from __future__ import annotations

from pydantic import Field

from .base import SpecModel


class CheckpointSpec(SpecModel):
    """A restarted or preempted run resumes from the newest complete checkpoint and loses at most everySteps."""

    every_steps: int = Field(default=100, ge=1, description="Save a checkpoint every N optimizer steps.")
    keep: int = Field(default=3, ge=1, le=100, description="Complete checkpoints kept; older ones are deleted.")
    resume: bool = Field(
        default=True, description="On start, resume from the newest complete checkpoint if one exists."
    )
    on_sigterm: bool = Field(
        default=True,
        description="On SIGTERM (preemption, eviction), save a checkpoint before exiting when time allows.",
    )
