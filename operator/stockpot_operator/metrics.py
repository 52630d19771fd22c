"""The operator's Prometheus metrics, served on ``/metrics``.

- ``stockpot_reconciles_total{kind, result}`` (ok, invalid, error) and ``stockpot_reconcile_seconds{kind}``;
- ``stockpot_resources{kind, phase}``: how many resources are in each phase;
- ``stockpot_finetune_step``, ``stockpot_finetune_total_steps``, ``stockpot_finetune_loss``,
  ``stockpot_finetune_tokens_per_second`` ``{namespace, name}``: training progress as mirrored into status.
"""

from __future__ import annotations

import contextlib
from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "stockpot_reconciles", "Reconcile passes.", ["kind", "result"], registry=self.registry
        )
        self.latency = Histogram(
            "stockpot_reconcile_seconds",
            "Time per reconcile pass.",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.resources = Gauge("stockpot_resources", "Resources by phase.", ["kind", "phase"], registry=self.registry)
        labels = ["namespace", "name"]
        self.step = Gauge("stockpot_finetune_step", "Optimizer steps done.", labels, registry=self.registry)
        self.total = Gauge("stockpot_finetune_total_steps", "Optimizer steps planned.", labels, registry=self.registry)
        self.loss = Gauge("stockpot_finetune_loss", "Latest training loss.", labels, registry=self.registry)
        self.speed = Gauge(
            "stockpot_finetune_tokens_per_second", "Training throughput.", labels, registry=self.registry
        )
        self._phases: dict[tuple[str, str, str], str] = {}

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def reconciled(self, kind: str, result: str, seconds: float) -> None:
        self.reconciles.labels(kind, result).inc()
        self.latency.labels(kind).observe(seconds)

    def observed(self, kind: str, namespace: str, name: str, phase: str, progress: dict[str, Any] | None) -> None:
        self._phases[(kind, namespace, name)] = phase
        self._publish_phases(kind)
        if progress:
            for gauge, key in (
                (self.step, "step"),
                (self.total, "totalSteps"),
                (self.loss, "loss"),
                (self.speed, "tokensPerSecond"),
            ):
                if progress.get(key) is not None:
                    gauge.labels(namespace, name).set(float(progress[key]))

    def forget(self, kind: str, namespace: str, name: str) -> None:
        if self._phases.pop((kind, namespace, name), None) is not None:
            self._publish_phases(kind)
        for gauge in (self.step, self.total, self.loss, self.speed):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)

    def _publish_phases(self, kind: str) -> None:
        counts = Tally(phase for (k, _, _), phase in self._phases.items() if k == kind)
        for phase in ("Pending", "Queued", "Running", "Suspended", "Succeeded", "Failed", "Invalid"):
            self.resources.labels(kind, phase).set(counts.get(phase, 0))
