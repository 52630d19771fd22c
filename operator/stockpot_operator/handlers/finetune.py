"""FineTune triggers: the resource itself, its Job and pods, and a progress timer all call one reconcile."""

from __future__ import annotations

from typing import Any

import kopf

from stockpot_operator.api.kinds import GROUP, VERSION
from stockpot_operator.wiring import reconcilers

FINETUNE_LABEL = "stockpot.dev/finetune"
CHILD_FILTER: dict[str, Any] = {
    "app.kubernetes.io/managed-by": "stockpot",
    FINETUNE_LABEL: kopf.PRESENT,
}
ACTIVE_PHASES = frozenset({None, "Pending", "Queued", "Running"})


@kopf.on.create(GROUP, VERSION, "finetunes")
@kopf.on.update(GROUP, VERSION, "finetunes")
@kopf.on.resume(GROUP, VERSION, "finetunes")
def finetune_changed(body: kopf.Body, **_: Any) -> None:
    reconcilers().finetune.reconcile(str(body.metadata.namespace), str(body.metadata.name))


@kopf.timer(GROUP, VERSION, "finetunes", interval=5.0, initial_delay=2.0)
def finetune_progress(body: kopf.Body, **_: Any) -> None:
    """Mirror progress.json while the run is active (the reader backs off on storage errors)."""
    if body.status.get("phase") in ACTIVE_PHASES:
        reconcilers().finetune.reconcile(str(body.metadata.namespace), str(body.metadata.name))


@kopf.on.event("batch", "v1", "jobs", labels=CHILD_FILTER)
@kopf.on.event("", "v1", "pods", labels=CHILD_FILTER)
def finetune_child_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A child changed. ADDED is skipped: the pass that created it saw it, and restarts resume every FineTune."""
    if type in ("MODIFIED", "DELETED"):
        reconcilers().finetune.reconcile(str(body.metadata.namespace), body.metadata.labels[FINETUNE_LABEL])
