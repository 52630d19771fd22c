"""The FineTune reconciler: parse once, ensure the children, observe, write status once, emit transition events.

``reconcile(namespace, name)`` is idempotent and safe to call from any trigger (the FineTune changed, its Job or
pods changed, the poller came round). A spec that does not parse gets condition Invalid with every error and
is not retried. Children are created in order with deterministic names; an existing child (409) is adopted.
After start only ``suspend`` changes the Job (the CRD's CEL makes the rest of the spec immutable).

A trigger may hand over what it already holds: the FineTune's body (its own watch event) or the Job (a Job
event); a child's event skips re-ensuring the children when the status shows this generation was already
handled. The reconciler keeps the set of FineTunes whose run is active (or whose last pass failed), which the
poller revisits to mirror progress and retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from kubernetes.client.exceptions import ApiException

from stockpot_operator.api.document import DocumentError, parse_spec
from stockpot_operator.api.finetune import FineTuneSpec
from stockpot_operator.builders.children import Parent
from stockpot_operator.builders.finetune import Names, Settings, artifact_uri, desired
from stockpot_operator.kube import Kube
from stockpot_operator.metrics import OperatorMetrics
from stockpot_operator.progress import ProgressReader
from stockpot_operator.status.finetune import Observation, invalid_status, observe

Obj = dict[str, Any]
PLURAL = "finetunes"
ACTIVE_PHASES = frozenset({"Pending", "Queued", "Running"})
Key = tuple[str, str]
log = logging.getLogger(__name__)


class FineTuneReconciler:
    def __init__(self, kube: Kube, settings: Settings, metrics: OperatorMetrics, progress: ProgressReader) -> None:
        self.kube, self.settings, self.metrics, self.progress = kube, settings, metrics, progress
        self._locks: dict[Key, threading.Lock] = defaultdict(threading.Lock)
        self._active: set[Key] = set()
        self._active_lock = threading.Lock()
        self._written: dict[Key, str] = {}  # the resourceVersion each FineTune got from our last status write

    def reconcile(
        self, namespace: str, name: str, body: Obj | None = None, *, children: bool = True, job: Obj | None = None
    ) -> str | None:
        """Bring one FineTune up to date; returns its phase (None when it no longer exists).

        ``body``: the FineTune as the trigger saw it (else it is read); ``children=False``: a child changed, so
        the children are ensured only when this generation was not handled yet; ``job``: the Job as its event
        carried it.
        """
        started = time.monotonic()
        result, phase = "error", None
        key = (namespace, name)
        try:
            with self._locks[key]:
                phase = self._reconcile(namespace, name, body, children, job)
            result = "ok" if phase != "Invalid" else "invalid"
            return phase
        finally:
            with self._active_lock:
                if result == "error" or phase in ACTIVE_PHASES:
                    self._active.add(key)
                else:
                    self._active.discard(key)
            self.metrics.reconciled("FineTune", result, time.monotonic() - started)

    def active(self) -> list[Key]:
        """FineTunes to revisit: an active run, or a pass that failed."""
        with self._active_lock:
            return sorted(self._active)

    def forget(self, namespace: str, name: str) -> None:
        """The FineTune is gone: stop revisiting it and drop its gauges."""
        with self._active_lock:
            self._active.discard((namespace, name))
        self._written.pop((namespace, name), None)
        self.metrics.forget("FineTune", namespace, name)

    def _reconcile(self, namespace: str, name: str, body: Obj | None, children: bool, job: Obj | None) -> str | None:
        written = self._written.get((namespace, name))
        if body is not None and written not in (None, body["metadata"].get("resourceVersion")):
            body = None  # we wrote its status after this snapshot may have been taken: read the current one
        if body is None:
            body = self.kube.get_custom(PLURAL, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.forget(namespace, name)
            return None
        parent = Parent.from_body(body)
        previous = body.get("status") or {}
        try:
            spec = parse_spec(body)
        except DocumentError as error:
            self._mark_invalid(body, parent, previous, "; ".join(str(e) for e in error.errors))
            return "Invalid"
        assert isinstance(spec, FineTuneSpec)
        handled = previous.get("observedGeneration") == parent.generation
        if not children and handled:
            job = job or self.kube.get_job(namespace, Names.of(name).job)
        try:
            if children or not handled or job is None:
                job = self._ensure_children(spec, parent, probably_new="observedGeneration" not in previous)
        except ApiException as error:
            if error.status != 422:
                raise
            # A child the spec renders was refused (e.g. an invalid affinity): say so once, do not retry.
            message = f"spec: the API server refused an object this FineTune renders: {Kube.message(error)}"
            self._mark_invalid(body, parent, previous, message)
            return "Invalid"
        names = Names.of(name)
        pods = self.kube.pods(namespace, {"job-name": names.job}) if job is not None and _has_pods(job) else []
        observation = Observation(spec, parent.generation, previous, job, pods, self._progress(spec, parent))
        status, events = observe(observation)
        if status != {k: previous.get(k) for k in status}:
            self._written[(namespace, name)] = self.kube.patch_status(PLURAL, namespace, name, status)
        for event in events:
            self.kube.event(body, event.type, event.reason, event.message)
        self.metrics.observed("FineTune", namespace, name, status["phase"], status.get("progress"))
        return str(status["phase"])

    def _mark_invalid(self, body: Obj, parent: Parent, previous: Obj, message: str) -> None:
        status = invalid_status(previous, parent.generation, message)
        if status != {k: previous.get(k) for k in status}:
            self._written[(parent.namespace, parent.name)] = self.kube.patch_status(
                PLURAL, parent.namespace, parent.name, status
            )
            self.kube.event(body, "Warning", "Invalid", message)
        self.metrics.observed("FineTune", parent.namespace, parent.name, "Invalid", None)

    def _ensure_children(self, spec: FineTuneSpec, parent: Parent, probably_new: bool) -> Obj | None:
        job = None
        for child in desired(spec, parent, self.settings):
            obj, created = self.kube.ensure(child, probably_new=probably_new)
            if created:
                log.info(
                    "%s/%s: created %s %s", parent.namespace, parent.name, child["kind"], child["metadata"]["name"]
                )
            if child["kind"] == "Job":
                job = obj
        if job is not None and spec.queue_name is None:
            wanted = spec.suspend
            if bool((job.get("spec") or {}).get("suspend")) != wanted:
                self.kube.patch_job_suspend(parent.namespace, job["metadata"]["name"], wanted)
                job = self.kube.get_job(parent.namespace, job["metadata"]["name"])
        elif job is not None and spec.suspend and not (job.get("spec") or {}).get("suspend"):
            self.kube.patch_job_suspend(parent.namespace, job["metadata"]["name"], True)
            job = self.kube.get_job(parent.namespace, job["metadata"]["name"])
        return job

    def _progress(self, spec: FineTuneSpec, parent: Parent) -> Obj | None:
        secret = spec.credentials.s3_secret
        uri = artifact_uri(spec, parent)
        if secret is None or not uri.startswith("s3://"):
            return None
        try:
            credentials = self.kube.secret_values(parent.namespace, secret)
        except Exception:
            return None
        endpoint = spec.storage.endpoint or self.settings.extra_env.get("AWS_ENDPOINT_URL")
        found = self.progress.read(uri, endpoint, spec.storage.region, credentials)
        return found if isinstance(found, dict) else None


def _has_pods(job: Obj) -> bool:
    """Whether the Job has (or had) pods worth reading: a fresh or suspended Job without history has none."""
    status = job.get("status") or {}
    return any(int(status.get(key) or 0) for key in ("active", "succeeded", "failed", "terminating", "ready")) or bool(
        status.get("startTime")
    )
