"""The running operator: settings from the environment, the shared clients, and kopf's startup.

Environment (set by the Helm chart):
- ``STOCKPOT_RUNTIME_IMAGE``: the runtime image for training pods;
- ``STOCKPOT_RUNTIME_COMMAND``: its entrypoint (default ``stockpot-runtime``; the local cluster, which runs
  commands rather than images, points it at the virtualenv's script);
- ``STOCKPOT_BACKOFF_LIMIT``: retries of a training Job (preemptions do not count);
- ``STOCKPOT_DEFAULT_S3_ENDPOINT``: an S3 endpoint for resources that name none;
- ``STOCKPOT_METRICS_PORT``: the /metrics port (default 8080; 0 disables it);
- ``STOCKPOT_WEBHOOK_PORT``: serve the validating webhook on this port (unset: no webhook; the reconciler then
  marks invalid resources Invalid). ``STOCKPOT_WEBHOOK_HOST`` is the Service DNS name the API server calls (kopf
  generates a self-signed certificate for it and keeps the ValidatingWebhookConfiguration
  ``stockpot.dev`` up to date); ``STOCKPOT_WEBHOOK_INSECURE=1`` serves plain HTTP (tests only).
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import kopf

from stockpot_operator.builders.finetune import Settings
from stockpot_operator.kube import Kube
from stockpot_operator.metrics import OperatorMetrics
from stockpot_operator.progress import ProgressReader
from stockpot_operator.reconcilers.finetune import FineTuneReconciler


def settings_from_env(env: dict[str, str]) -> Settings:
    defaults = Settings()
    extra = {"AWS_ENDPOINT_URL": env["STOCKPOT_DEFAULT_S3_ENDPOINT"]} if env.get("STOCKPOT_DEFAULT_S3_ENDPOINT") else {}
    return Settings(
        runtime_image=env.get("STOCKPOT_RUNTIME_IMAGE") or defaults.runtime_image,
        runtime_command=tuple(shlex.split(env.get("STOCKPOT_RUNTIME_COMMAND") or "stockpot-runtime")),
        backoff_limit=int(env.get("STOCKPOT_BACKOFF_LIMIT") or defaults.backoff_limit),
        extra_env=extra,
    )


@dataclass
class Reconcilers:
    finetune: FineTuneReconciler
    metrics: OperatorMetrics


@lru_cache(maxsize=1)
def reconcilers() -> Reconcilers:
    metrics = OperatorMetrics()
    kube = Kube()
    return Reconcilers(
        FineTuneReconciler(kube, settings_from_env(dict(os.environ)), metrics, ProgressReader()), metrics
    )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """kopf keeps its bookkeeping in annotations (not status), posts no events of its own, and watches resiliently."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.stockpot.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kopf.stockpot.dev", key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 8
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    webhook_port = int(os.environ.get("STOCKPOT_WEBHOOK_PORT") or 0)
    if webhook_port:
        insecure = os.environ.get("STOCKPOT_WEBHOOK_INSECURE") == "1"
        host = os.environ.get("STOCKPOT_WEBHOOK_HOST")
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0",
            port=webhook_port,
            host=host,
            insecure=insecure,
            extra_sans=[host] if host else [],
        )
        if host:
            settings.admission.managed = "stockpot.dev"
    port = int(os.environ.get("STOCKPOT_METRICS_PORT", "8080"))
    if port:
        reconcilers().metrics.serve(port)
