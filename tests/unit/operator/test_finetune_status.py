"""FineTune status from observation: phase, conditions, progress, artifact, events — table-tested."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stockpot_operator.api.finetune import FineTuneSpec
from stockpot_operator.status.finetune import Observation, invalid_status, observe

pytestmark = pytest.mark.unit


def spec(**extra: Any) -> FineTuneSpec:
    return FineTuneSpec.model_validate(
        {
            "model": {"uri": "s3://models/base"},
            "data": {"train": "s3://data/t.jsonl"},
            "output": {"uri": "s3://out"},
            **extra,
        }
    )


def job(*, suspend: bool = False, conditions: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {"spec": {"suspend": suspend}, "status": {"conditions": conditions or [], **status}}


def pod(phase: str, summary: dict[str, Any] | None = None, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    state = {"terminated": {"exitCode": 0, "message": json.dumps(summary)}} if summary else {"running": {}}
    return {
        "metadata": {"creationTimestamp": created},
        "status": {"phase": phase, "containerStatuses": [{"name": "train", "state": state}]},
    }


SUCCESS = {"result": "Succeeded", "artifact": "s3://a/ns/finetune/x/uid", "manifestSha256": "ab" * 32, "resumes": 1}
FAILURE = {
    "result": "Failed",
    "reason": "DataValidationError",
    "message": "train.jsonl:8: messages[0].role: unknown role",
}
PROGRESS = {
    "step": 40,
    "totalSteps": 100,
    "epoch": 0.4,
    "loss": 1.25,
    "lr": 1e-4,
    "tokensPerSecond": 900.0,
    "etaSeconds": 60.0,
    "resumes": 0,
    "updated": "2026-01-01T00:01:00Z",
    "checkpoint": {"uri": "s3://out/ns/finetune/x/uid/checkpoints/step-40", "step": 40},
}


@pytest.mark.parametrize(
    ("name", "observation", "phase", "condition"),
    [
        ("no job yet", Observation(spec(), 1, {}), "Pending", None),
        ("job, pod starting", Observation(spec(), 1, {}, job(active=1), [pod("Pending")]), "Pending", None),
        ("running", Observation(spec(), 1, {}, job(active=1), [pod("Running")], PROGRESS), "Running", "Running"),
        ("suspended by the user", Observation(spec(suspend=True), 2, {}, job(suspend=True)), "Suspended", "Suspended"),
        ("waiting for kueue", Observation(spec(queueName="q"), 1, {}, job(suspend=True)), "Queued", "Queued"),
        (
            "evicted by kueue",
            Observation(spec(queueName="q"), 1, {"attempts": 1}, job(suspend=True)),  # suspended after it ran
            "Queued",
            "Queued",
        ),
        (
            "succeeded",
            Observation(
                spec(),
                1,
                {},
                job(conditions=[{"type": "Complete", "status": "True"}], succeeded=1),
                [pod("Succeeded", SUCCESS)],
                PROGRESS,
            ),
            "Succeeded",
            "Succeeded",
        ),
        (
            "failed with the runtime's message",
            Observation(
                spec(),
                1,
                {},
                job(conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=4),
                [pod("Failed", FAILURE)],
            ),
            "Failed",
            "Failed",
        ),
        (
            "complete without an artifact",
            Observation(spec(), 1, {}, job(conditions=[{"type": "Complete", "status": "True"}], succeeded=1)),
            "Failed",
            "Failed",
        ),
    ],
)
def test_phase_and_conditions(name: str, observation: Observation, phase: str, condition: str | None) -> None:
    status, _ = observe(observation)
    assert status["phase"] == phase, name
    assert status["observedGeneration"] == observation.generation
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Invalid"]["status"] == "False"
    if condition is not None:
        assert conditions[condition]["status"] == "True"
        others = {"Queued", "Running", "Suspended", "Succeeded", "Failed"} - {condition}
        assert all(conditions[o]["status"] == "False" for o in others if o in conditions)
    assert all(c["observedGeneration"] == observation.generation for c in status["conditions"])


def test_success_reports_artifact_progress_and_resumes() -> None:
    obs = Observation(
        spec(),
        1,
        {},
        job(
            conditions=[{"type": "Complete", "status": "True"}],
            succeeded=1,
            failed=1,
            completionTime="2026-01-01T01:00:00Z",
        ),
        [pod("Succeeded", SUCCESS)],
        PROGRESS,
    )
    status, events = observe(obs)
    assert status["artifact"] == {"uri": SUCCESS["artifact"], "manifestSha256": SUCCESS["manifestSha256"]}
    assert status["progress"]["summary"] == "100/100 (100%)"
    assert status["progress"]["etaSeconds"] == 0
    assert (status["resumes"], status["attempts"]) == (1, 2)
    assert status["completionTime"] == "2026-01-01T01:00:00Z"
    assert [(e.type, e.reason) for e in events] == [("Normal", "Succeeded"), ("Normal", "Resumed")]


def test_success_stays_when_the_pods_that_reported_it_are_gone() -> None:
    complete = job(conditions=[{"type": "Complete", "status": "True"}], succeeded=1)
    first, _ = observe(Observation(spec(), 1, {}, complete, [pod("Succeeded", SUCCESS)], PROGRESS))
    again, events = observe(Observation(spec(), 1, first, complete, [], PROGRESS))
    assert (again["phase"], again["artifact"], again["resumes"]) == ("Succeeded", first["artifact"], 1)
    assert events == []
    never, _ = observe(Observation(spec(), 1, {}, complete, []))
    assert never["phase"] == "Failed"


def test_failure_message_comes_from_the_runtime() -> None:
    failed = job(conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=4)
    status, events = observe(Observation(spec(), 1, {}, failed, [pod("Failed", FAILURE)]))
    condition = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "BackoffLimitExceeded"
    assert "train.jsonl:8" in condition["message"]
    assert events[0].type == "Warning"


def test_progress_summary_and_mirroring() -> None:
    status, _ = observe(Observation(spec(), 1, {}, job(active=1), [pod("Running")], PROGRESS))
    assert status["progress"] == {
        "step": 40,
        "totalSteps": 100,
        "summary": "40/100 (40%)",
        "epoch": 0.4,
        "loss": 1.25,
        "learningRate": 1e-4,
        "tokensPerSecond": 900.0,
        "etaSeconds": 60.0,
        "updated": "2026-01-01T00:01:00Z",
    }
    again, events = observe(Observation(spec(), 1, status, job(active=1), [pod("Running")], None))
    assert again["progress"] == status["progress"]  # an unreadable progress.json keeps the last value
    assert events == []  # no transition, no event
    assert status["checkpoint"] == {"uri": "s3://out/ns/finetune/x/uid/checkpoints/step-40", "step": 40}


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    first, _ = observe(Observation(spec(), 1, {}, job(active=1), [pod("Running")]))
    running = next(c for c in first["conditions"] if c["type"] == "Running")
    running["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    second, _ = observe(Observation(spec(), 1, first, job(active=1), [pod("Running")], PROGRESS))
    assert (
        next(c for c in second["conditions"] if c["type"] == "Running")["lastTransitionTime"] == "2000-01-01T00:00:00Z"
    )


def test_invalid_status_names_the_problem() -> None:
    status = invalid_status({}, 4, "spec.data.format: task dpo trains on dpo; got chatml")
    assert status["phase"] == "Invalid"
    invalid = status["conditions"][0]
    assert (invalid["type"], invalid["status"], invalid["reason"]) == ("Invalid", "True", "SpecInvalid")
    assert invalid["observedGeneration"] == 4


def test_kueue_admission_and_eviction_through_the_jobs_suspend() -> None:
    """Kueue admits by unsuspending the Job and evicts (or preempts) by suspending it again; the Job controller
    then deletes the pods and clears startTime, so only this status remembers that the run had started."""
    queued = spec(queueName="q")

    def admitted(status: dict[str, Any]) -> tuple[str, str]:
        condition = next(c for c in status["conditions"] if c["type"] == "Admitted")
        return condition["status"], condition["reason"]

    waiting, _ = observe(Observation(queued, 1, {}, job(suspend=True)))
    assert (waiting["phase"], admitted(waiting), waiting["attempts"]) == ("Queued", ("False", "QueuedByKueue"), 0)
    running, _ = observe(Observation(queued, 1, waiting, job(active=1), [pod("Running")]))
    assert (running["phase"], admitted(running)[0], running["attempts"]) == ("Running", "True", 1)
    evicted, _ = observe(Observation(queued, 1, running, job(suspend=True)))
    assert (evicted["phase"], admitted(evicted), evicted["attempts"]) == ("Queued", ("False", "Evicted"), 1)
    still, _ = observe(Observation(queued, 1, evicted, job(suspend=True)))
    assert admitted(still) == ("False", "Evicted")  # the next pass does not forget it
