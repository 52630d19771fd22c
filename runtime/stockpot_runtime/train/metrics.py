"""The Prometheus endpoint of a training pod (``metricsPort``; 0 disables it).

Gauges follow the log records of the loop: ``stockpot_train_step``, ``stockpot_train_total_steps``,
``stockpot_train_epoch``, ``stockpot_train_loss``, ``stockpot_train_learning_rate``,
``stockpot_train_tokens_per_second``, ``stockpot_train_eval_loss``; counters ``stockpot_train_tokens_total``
and ``stockpot_train_samples_total`` count what this process trained on since it started.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class TrainingMetrics:
    """Gauges and counters in their own registry, optionally served over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"stockpot_train_{name}", doc, registry=self.registry)

        self.step = gauge("step", "Optimizer steps completed.")
        self.total_steps = gauge("total_steps", "Optimizer steps the run will take.")
        self.epoch = gauge("epoch", "Epochs completed (fractional).")
        self.loss = gauge("loss", "Training loss of the latest logged step.")
        self.lr = gauge("learning_rate", "Learning rate of the latest logged step.")
        self.tokens_per_second = gauge("tokens_per_second", "Real (non-pad) tokens trained per second.")
        self.eval_loss = gauge("eval_loss", "Loss on the evaluation data at the latest evaluation.")
        self.tokens = Counter("stockpot_train_tokens", "Real tokens trained on.", registry=self.registry)
        self.samples = Counter("stockpot_train_samples", "Training items consumed.", registry=self.registry)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def observe(self, record: dict[str, Any]) -> None:
        """Update from one loop log record."""
        if "eval_loss" in record:
            self.eval_loss.set(record["eval_loss"])
            return
        self.step.set(record["step"])
        self.loss.set(record["loss"])
        self.lr.set(record["lr"])
        if record.get("epoch") is not None:
            self.epoch.set(record["epoch"])
        if record.get("tokens_per_second") is not None:
            self.tokens_per_second.set(record["tokens_per_second"])
        self.tokens.inc(record.get("tokens", 0))
        self.samples.inc(record.get("samples", 0))
