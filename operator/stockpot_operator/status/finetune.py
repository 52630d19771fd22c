"""A FineTune's status, computed from what is observed — the Job, its pods, progress.json — never remembered.

``observe(observation) -> (status, events)`` is pure. Phases: Pending (Job not yet running), Queued (waiting for
Kueue, or evicted by it), Running, Suspended (``spec.suspend``), Succeeded (the Job completed and the runtime
reported a committed artifact), Failed (the Job failed: retries exhausted, deadline, or a failure the runtime
says retrying cannot fix). Conditions Admitted, Running, Succeeded, Failed, Suspended and Queued follow the
phase; ``Invalid`` is set by the handler when the spec does not parse. The artifact comes from the successful
pod's termination message (the runtime's summary: URI and manifest sha256); progress from ``progress.json``.
Events are emitted only on transitions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from stockpot_operator.api.finetune import FineTunePhase, FineTuneSpec

from .conditions import ConditionType, Reason, find, set_condition, set_exclusive

Obj = dict[str, Any]
LIFECYCLE = (
    ConditionType.QUEUED,
    ConditionType.RUNNING,
    ConditionType.SUSPENDED,
    ConditionType.SUCCEEDED,
    ConditionType.FAILED,
)


@dataclass
class Observation:
    """Everything the status is computed from."""

    spec: FineTuneSpec
    generation: int
    previous: Obj
    job: Obj | None = None
    pods: list[Obj] = field(default_factory=list)
    progress: Obj | None = None


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def job_condition(job: Obj, type_: str) -> Obj | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            return dict(condition)
    return None


def termination_summaries(pods: list[Obj]) -> list[Obj]:
    """The runtime's JSON summaries from the pods' termination messages, oldest pod first."""
    out = []
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            message = terminated.get("message")
            if not message:
                continue
            try:
                summary = json.loads(message.strip().splitlines()[-1])
            except (ValueError, IndexError):
                continue
            if isinstance(summary, dict):
                out.append(summary)
    return out


def progress_status(progress: Obj | None, previous: Obj | None, succeeded: bool) -> Obj | None:
    """status.progress from progress.json (kept from before when nothing new was read)."""
    if progress is None:
        return previous
    step, total = int(progress.get("step") or 0), progress.get("totalSteps")
    if succeeded and total:
        step = int(total)
    out: Obj = {"step": step}
    if total:
        out["totalSteps"] = int(total)
        out["summary"] = f"{step}/{total} ({math.floor(100 * step / int(total))}%)"
    for source, target in (
        ("epoch", "epoch"),
        ("loss", "loss"),
        ("lr", "learningRate"),
        ("tokensPerSecond", "tokensPerSecond"),
        ("etaSeconds", "etaSeconds"),
        ("updated", "updated"),
    ):
        if progress.get(source) is not None:
            out[target] = progress[source]
    if succeeded:
        out["etaSeconds"] = 0
    return out


def running_pods(pods: list[Obj]) -> int:
    return sum(1 for pod in pods if (pod.get("status") or {}).get("phase") == "Running")


def attempts(obs: Observation) -> int:
    """Pod generations the Job has started (pods / nodes), never fewer than the status already said: pods a
    suspension deletes leave the Job's counts, and an evicted run has still been attempted."""
    previous = int((obs.previous or {}).get("attempts") or 0)
    if obs.job is None:
        return previous
    status = obs.job.get("status") or {}
    started = int(status.get("failed") or 0) + int(status.get("succeeded") or 0) + int(status.get("active") or 0)
    return max(previous, math.ceil(started / max(obs.spec.resources.nodes, 1)))


def phase_of(obs: Observation, summaries: list[Obj]) -> tuple[FineTunePhase, str, str]:
    """(phase, reason, message) for the observation."""
    job = obs.job
    if job is None:
        return FineTunePhase.PENDING, Reason.SPEC_VALID, "creating the Job"
    failed = job_condition(job, "Failed")
    if failed is not None:
        last = next((s for s in reversed(summaries) if s.get("result") in ("Failed", "Invalid")), None)
        message = (last or {}).get("message") or failed.get("message") or "the training Job failed"
        reason = failed.get("reason") or Reason.BACKOFF_LIMIT_EXCEEDED
        return FineTunePhase.FAILED, reason if reason.isalnum() else Reason.BACKOFF_LIMIT_EXCEEDED, message
    if job_condition(job, "Complete") is not None:
        # a committed artifact seen once stays: the pods that reported it may be deleted or garbage-collected since
        reported = any(s.get("result") == "Succeeded" and s.get("manifestSha256") for s in summaries)
        if reported or (obs.previous or {}).get("artifact"):
            return FineTunePhase.SUCCEEDED, Reason.ARTIFACT_COMMITTED, "the artifact is committed"
        return FineTunePhase.FAILED, "NoArtifact", "the Job completed but no pod reported a committed artifact"
    if (job.get("spec") or {}).get("suspend"):
        if obs.spec.suspend:
            return FineTunePhase.SUSPENDED, Reason.SUSPENDED_BY_USER, "suspended: pods stopped, checkpoints kept"
        # suspended again after it ran: Kueue evicted or preempted it (the Job controller clears startTime when it
        # suspends a Job, so the Job itself no longer shows that it ran; this status's attempts do)
        evicted = attempts(obs) > 0
        reason = Reason.EVICTED if evicted else Reason.QUEUED_BY_KUEUE
        return FineTunePhase.QUEUED, reason, f"waiting for Kueue to admit the Job (queue {obs.spec.queue_name})"
    if running_pods(obs.pods) > 0:
        return FineTunePhase.RUNNING, Reason.PODS_RUNNING, f"{running_pods(obs.pods)} pod(s) running"
    return FineTunePhase.PENDING, Reason.JOB_CREATED, "waiting for the training pod(s) to start"


_CONDITION_OF = {
    FineTunePhase.QUEUED: ConditionType.QUEUED,
    FineTunePhase.RUNNING: ConditionType.RUNNING,
    FineTunePhase.SUSPENDED: ConditionType.SUSPENDED,
    FineTunePhase.SUCCEEDED: ConditionType.SUCCEEDED,
    FineTunePhase.FAILED: ConditionType.FAILED,
}


def observe(obs: Observation) -> tuple[Obj, list[Event]]:
    """The status to write, and the events of the transitions it makes."""
    previous = obs.previous or {}
    summaries = termination_summaries(obs.pods)
    phase, reason, message = phase_of(obs, summaries)
    conditions = list(previous.get("conditions") or [])
    conditions = set_condition(conditions, ConditionType.INVALID, False, Reason.SPEC_VALID, generation=obs.generation)
    admitted = phase not in (FineTunePhase.QUEUED, FineTunePhase.PENDING) or obs.job is not None
    if phase != FineTunePhase.QUEUED:
        conditions = set_condition(
            conditions, ConditionType.ADMITTED, admitted, Reason.JOB_CREATED, generation=obs.generation
        )
    else:
        conditions = set_condition(
            conditions, ConditionType.ADMITTED, False, reason, message, generation=obs.generation
        )
    if phase in _CONDITION_OF:
        conditions = set_exclusive(
            conditions, LIFECYCLE, _CONDITION_OF[phase], reason, message, generation=obs.generation
        )
    else:
        for type_ in LIFECYCLE:
            if find(conditions, type_) is not None:
                conditions = set_condition(conditions, type_, False, reason, generation=obs.generation)
    succeeded = phase == FineTunePhase.SUCCEEDED
    status: Obj = {
        "phase": str(phase),
        "observedGeneration": obs.generation,
        "conditions": conditions,
        "attempts": attempts(obs),
        "resumes": max(int(previous.get("resumes") or 0), _resumes(obs.progress, summaries)),
    }
    progress = progress_status(obs.progress, previous.get("progress"), succeeded)
    if progress is not None:
        status["progress"] = progress
    artifact = next((s for s in reversed(summaries) if s.get("result") == "Succeeded"), None)
    if artifact is not None:
        status["artifact"] = {"uri": artifact["artifact"], "manifestSha256": artifact["manifestSha256"]}
    elif previous.get("artifact"):
        status["artifact"] = previous["artifact"]
    job_status = (obs.job or {}).get("status") or {}
    for source, target in (("startTime", "startTime"), ("completionTime", "completionTime")):
        if job_status.get(source):
            status[target] = job_status[source]
    checkpoint = (obs.progress or {}).get("checkpoint") or previous.get("checkpoint")
    if checkpoint:
        status["checkpoint"] = {"uri": checkpoint["uri"], "step": int(checkpoint["step"])}
    return status, transition_events(previous, status, message)


def _resumes(progress: Obj | None, summaries: list[Obj]) -> int:
    values = [int(s.get("resumes") or 0) for s in summaries]
    if progress is not None and progress.get("resumes") is not None:
        values.append(int(progress["resumes"]))
    return max(values, default=0)


def transition_events(previous: Obj, status: Obj, message: str) -> list[Event]:
    before, after = previous.get("phase"), status["phase"]
    events = []
    if before != after:
        kind = "Warning" if after == FineTunePhase.FAILED else "Normal"
        events.append(Event(kind, after, message))
    if int(status.get("resumes") or 0) > int(previous.get("resumes") or 0):
        events.append(Event("Normal", "Resumed", f"training resumed from a checkpoint (resume {status['resumes']})"))
    return events


def invalid_status(previous: Obj, generation: int, message: str) -> Obj:
    """The status of a FineTune whose spec does not parse: condition Invalid with every error; not retried."""
    conditions = set_condition(
        list(previous.get("conditions") or []),
        ConditionType.INVALID,
        True,
        Reason.SPEC_INVALID,
        message,
        generation=generation,
    )
    return {"phase": str(FineTunePhase.INVALID), "observedGeneration": generation, "conditions": conditions}
