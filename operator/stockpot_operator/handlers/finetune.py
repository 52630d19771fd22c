"""FineTune triggers: its own watch events, its Job's and pods' events, and the poller all call one reconcile.

kopf's low-level event handlers keep no state on the resource (no annotations, no finalizer), so a FineTune's
first pass writes only what the controller itself decides: its children, its status, its events. The initial
listing (event type None) covers operator restarts. A MODIFIED event whose generation the status has already
observed is the echo of a status write (or a metadata change) and needs no pass.
"""

from __future__ import annotations

from typing import Any

import kopf

from stockpot_operator.api.kinds import GROUP, VERSION
from stockpot_operator.polling import Poller
from stockpot_operator.wiring import reconcilers

FINETUNE_LABEL = "stockpot.dev/finetune"
CHILD_FILTER: dict[str, Any] = {
    "app.kubernetes.io/managed-by": "stockpot",
    FINETUNE_LABEL: kopf.PRESENT,
}
POLL_SECONDS = 5.0
_pollers: list[Poller] = []


@kopf.on.event(GROUP, VERSION, "finetunes")
def finetune_event(body: kopf.Body, type: str | None, **_: Any) -> None:
    namespace, name = str(body.metadata.namespace), str(body.metadata.name)
    finetunes = reconcilers().finetune
    if type == "DELETED":
        finetunes.forget(namespace, name)
    elif type != "MODIFIED" or body.status.get("observedGeneration") != body.metadata.get("generation"):
        finetunes.reconcile(namespace, name, dict(body))


@kopf.on.event("batch", "v1", "jobs", labels=CHILD_FILTER)
@kopf.on.event("", "v1", "pods", labels=CHILD_FILTER)
def finetune_child_changed(body: kopf.Body, type: str | None, **_: Any) -> None:
    """A child changed. ADDED is skipped: the pass that created it saw it, and restarts revisit every FineTune."""
    if type not in ("MODIFIED", "DELETED"):
        return
    job = dict(body) if type == "MODIFIED" and body.get("kind") == "Job" else None
    reconcilers().finetune.reconcile(
        str(body.metadata.namespace), body.metadata.labels[FINETUNE_LABEL], children=False, job=job
    )


@kopf.on.startup()
def start_polling(**_: Any) -> None:
    """Revisit active FineTunes: mirror progress.json into status, retry passes that failed."""
    finetunes = reconcilers().finetune
    poller = Poller(POLL_SECONDS, finetunes.active, finetunes.reconcile)
    poller.start()
    _pollers.append(poller)


@kopf.on.cleanup()
def stop_polling(**_: Any) -> None:
    while _pollers:
        _pollers.pop().stop()
