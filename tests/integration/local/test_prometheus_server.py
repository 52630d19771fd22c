"""Prometheus scrapes what the local stack exposes: static targets and annotated pods."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from stockpot_local.managed_process import free_port
from stockpot_local.prometheus import PrometheusError, PrometheusServer, prometheus_binary
from stockpot_local.scrape_targets import ScrapeTarget

pytestmark = pytest.mark.integration


@pytest.fixture
def metrics_port() -> Iterator[int]:
    """A prometheus_client HTTP server on 127.0.0.1 exposing ``stockpot_probe_value 42``."""
    registry = CollectorRegistry()
    Gauge("stockpot_probe_value", "A value for the scrape test.", registry=registry).set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_generated_config_passes_promtool(prometheus: PrometheusServer) -> None:
    checked = subprocess.run(
        [str(prometheus_binary("promtool")), "check", "config", str(prometheus.config_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_scrapes_a_static_target(prometheus: PrometheusServer, metrics_port: int) -> None:
    prometheus.set_static_targets(
        [ScrapeTarget(f"127.0.0.1:{metrics_port}", labels={"job": "static-probe", "component": "probe"})]
    )
    series = prometheus.wait_for_series('stockpot_probe_value{job="static-probe"}', timeout=40)
    assert series[0]["value"][1] == "42"
    assert series[0]["metric"]["component"] == "probe"
    prometheus.set_static_targets([])


def test_bad_promql_raises_with_the_server_message(prometheus: PrometheusServer) -> None:
    with pytest.raises(PrometheusError, match="parse error"):
        prometheus.query("sum(")
