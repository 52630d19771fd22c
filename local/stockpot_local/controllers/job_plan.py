"""The Job controller's decisions as a pure function of the Job, its pods and the time.

Follows Kubernetes 1.33 semantics: terminal conditions are delayed until pods have terminated
(SuccessCriteriaMet / FailureTarget first, then Complete / Failed), suspended Jobs delete their active pods,
Indexed Jobs track completedIndexes and (with backoffLimitPerIndex) failedIndexes. Deviation: pods are
recreated without the exponential pod-failure back-off delay, and there is no job-tracking pod finalizer
(counters never go down while the pods they count exist).
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from stockpot_local.controllers import conditions as cond
from stockpot_local.controllers.children import pod_is_active, pod_is_ready, pod_is_terminating

Obj = dict[str, Any]
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
MSG_SUCCESS = "Reached expected number of succeeded pods"
MSG_BACKOFF = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_FAILED_INDEXES = "Job has failed indexes"
MSG_MAX_FAILED_INDEXES = "Job has exceeded the specified maximal number of failed indexes"


@dataclass
class JobPlan:
    """What to do next: pods to create (by completion index, None when not Indexed), pods to delete,
    the new status, whether the Job itself is due for deletion (TTL) and when to look again."""

    create: list[int | None] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    delete_job: bool = False
    requeue_after: float | None = None


def format_indexes(indexes: set[int]) -> str:
    """Compress {0,1,2,5} into '0-2,5' as in status.completedIndexes."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.update(range(int(lo), int(hi) + 1))
        elif part.strip():
            out.add(int(part))
    return out


def pod_index(pod: Obj) -> int | None:
    meta = pod.get("metadata", {})
    raw = (meta.get("annotations") or {}).get(INDEX_KEY) or (meta.get("labels") or {}).get(INDEX_KEY)
    return int(raw) if raw is not None and str(raw).isdigit() else None


def _phase(pod: Obj) -> str:
    return str(pod.get("status", {}).get("phase", ""))


def _finish_terminal(status: Obj, active: list[Obj], terminating: list[Obj], now: str) -> JobPlan | None:
    """When SuccessCriteriaMet / FailureTarget is set: delete what runs, then add Complete / Failed."""
    conditions = status.get("conditions") or []
    for target, final in (("SuccessCriteriaMet", "Complete"), ("FailureTarget", "Failed")):
        marker = cond.find(conditions, target)
        if marker is None or marker.get("status") != "True":
            continue
        if active or terminating:
            return JobPlan(delete=[p["metadata"]["name"] for p in active], status=status)
        status["conditions"] = cond.set_condition(
            conditions, final, True, marker["reason"], marker.get("message", ""), now=now, probe_time=True
        )
        if final == "Complete":
            status["completionTime"] = now
        return JobPlan(status=status)
    return None


def _ttl_plan(job: Obj, status: Obj, now: dt.datetime) -> JobPlan:
    ttl = job["spec"].get("ttlSecondsAfterFinished")
    if ttl is None:
        return JobPlan(status=status)
    conditions = status.get("conditions") or []
    final = cond.find(conditions, "Complete") or cond.find(conditions, "Failed") or {}
    finished = cond.parse_time(status.get("completionTime") or final.get("lastTransitionTime")) or now
    remaining = (finished + dt.timedelta(seconds=int(ttl)) - now).total_seconds()
    if remaining <= 0:
        return JobPlan(status=status, delete_job=True)
    return JobPlan(status=status, requeue_after=remaining)


def _count(job: Obj, pods: list[Obj], status: Obj) -> tuple[set[int], dict[int, int]]:
    """Update succeeded/failed counters; answer completed indexes and failures per index."""
    succeeded = [p for p in pods if _phase(p) == "Succeeded"]
    failed = [p for p in pods if _phase(p) == "Failed"]
    status["failed"] = max(int(status.get("failed") or 0), len(failed))
    per_index: dict[int, int] = {}
    for pod in failed:
        if (index := pod_index(pod)) is not None:
            per_index[index] = per_index.get(index, 0) + 1
    if job["spec"].get("completionMode") != "Indexed":
        status["succeeded"] = max(int(status.get("succeeded") or 0), len(succeeded))
        return set(), per_index
    completions = int(job["spec"].get("completions") or 1)
    done = parse_indexes(status.get("completedIndexes"))
    done.update(i for p in succeeded if (i := pod_index(p)) is not None and i < completions)
    status["completedIndexes"] = format_indexes(done)
    status["succeeded"] = len(done)
    return done, per_index


def _failure(
    job: Obj, status: Obj, done: set[int], per_index: dict[int, int], now: dt.datetime
) -> tuple[str, str] | None:
    spec = job["spec"]
    start = cond.parse_time(status.get("startTime"))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and start is not None and (now - start).total_seconds() >= int(deadline):
        return "DeadlineExceeded", MSG_DEADLINE
    per_index_limit = spec.get("backoffLimitPerIndex")
    if spec.get("completionMode") == "Indexed" and per_index_limit is not None:
        failed = {i for i, n in per_index.items() if n > int(per_index_limit) and i not in done}
        status["failedIndexes"] = format_indexes(failed)
        max_failed = spec.get("maxFailedIndexes")
        if max_failed is not None and len(failed) > int(max_failed):
            return "MaxFailedIndexesExceeded", MSG_MAX_FAILED_INDEXES
        if failed and len(failed | done) >= int(spec.get("completions") or 1):
            return "FailedIndexes", MSG_FAILED_INDEXES
        return None
    limit = spec.get("backoffLimit")
    limit = 6 if limit is None else int(limit)
    if int(status.get("failed") or 0) > limit:
        return "BackoffLimitExceeded", MSG_BACKOFF
    return None


def _succeeded(job: Obj, status: Obj, done: set[int], active: list[Obj]) -> bool:
    spec = job["spec"]
    if spec.get("completionMode") == "Indexed":
        return len(done) >= int(spec.get("completions") or 1)
    completions = spec.get("completions")
    if completions is None:
        return int(status.get("succeeded") or 0) >= 1 and not active
    return int(status.get("succeeded") or 0) >= int(completions)


def _wanted(job: Obj, status: Obj, done: set[int], active: list[Obj]) -> list[int | None]:
    """Pods to start now, respecting parallelism and completions."""
    spec = job["spec"]
    parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
    if spec.get("completionMode") == "Indexed":
        failed = parse_indexes(status.get("failedIndexes"))
        running = {pod_index(p) for p in active}
        todo = [i for i in range(int(spec.get("completions") or 1)) if i not in done | failed | running]
        return list(todo[: max(parallelism - len(active), 0)])
    completions = spec.get("completions")
    succeeded = int(status.get("succeeded") or 0)
    if completions is None:
        want = parallelism if succeeded == 0 else 0
    else:
        want = min(parallelism, int(completions) - succeeded)
    return [None] * max(want - len(active), 0)


def plan_job(job: Obj, pods: list[Obj], now: dt.datetime) -> JobPlan:
    """Decide the next step for a Job given the pods it owns."""
    status = copy.deepcopy(job.get("status") or {})
    conditions = status.get("conditions") or []
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if cond.is_true(conditions, "Complete") or cond.is_true(conditions, "Failed"):
        return _ttl_plan(job, status, now)
    active = [p for p in pods if pod_is_active(p)]
    terminating = [p for p in pods if pod_is_terminating(p)]
    done, per_index = _count(job, pods, status)
    status.update(active=len(active), ready=sum(1 for p in active if pod_is_ready(p)), terminating=len(terminating))
    if (finishing := _finish_terminal(status, active, terminating, stamp)) is not None:
        return finishing
    if job["spec"].get("suspend"):
        return _suspend(status, active, stamp)
    if cond.find(conditions, "Suspended") is not None and cond.is_true(conditions, "Suspended"):
        status["conditions"] = cond.set_condition(
            conditions, "Suspended", False, "JobResumed", "Job resumed", now=stamp, probe_time=True
        )
        status["startTime"] = stamp
    status.setdefault("startTime", stamp)
    if (failure := _failure(job, status, done, per_index, now)) is not None:
        status["conditions"] = cond.set_condition(
            status.get("conditions") or [], "FailureTarget", True, failure[0], failure[1], now=stamp, probe_time=True
        )
        status["failed"] = int(status["failed"]) + len(active)
        return JobPlan(delete=[p["metadata"]["name"] for p in active], status=status, requeue_after=0.1)
    if _succeeded(job, status, done, active):
        status["conditions"] = cond.set_condition(
            status.get("conditions") or [],
            "SuccessCriteriaMet",
            True,
            "CompletionsReached",
            MSG_SUCCESS,
            now=stamp,
            probe_time=True,
        )
        return JobPlan(delete=[p["metadata"]["name"] for p in active], status=status, requeue_after=0.1)
    plan = JobPlan(create=_wanted(job, status, done, active), status=status)
    plan.delete = _excess(job, status, active)
    deadline = job["spec"].get("activeDeadlineSeconds")
    if deadline is not None and (start := cond.parse_time(status.get("startTime"))) is not None:
        plan.requeue_after = max((start + dt.timedelta(seconds=int(deadline)) - now).total_seconds(), 0.05)
    return plan


def _excess(job: Obj, status: Obj, active: list[Obj]) -> list[str]:
    """Active pods beyond parallelism (parallelism was lowered); newest first."""
    spec = job["spec"]
    parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
    extra = len(active) - parallelism
    if extra <= 0:
        return []
    newest = sorted(active, key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True)
    return [p["metadata"]["name"] for p in newest[:extra]]


def _suspend(status: Obj, active: list[Obj], stamp: str) -> JobPlan:
    conditions = status.get("conditions") or []
    status["conditions"] = cond.set_condition(
        conditions, "Suspended", True, "JobSuspended", "Job suspended", now=stamp, probe_time=True
    )
    status.pop("startTime", None)
    return JobPlan(delete=[p["metadata"]["name"] for p in active], status=status)
