"""pytest fixtures for the local stack: S3, Prometheus and the local (or a real) Kubernetes cluster.

Register with ``pytest_plugins = ["stockpot_local.pytest_plugin"]``. Session-scoped servers are stopped by
their fixture's teardown and, should pytest itself be killed, by the kernel (see ``managed_process``).

``STOCKPOT_E2E_CLUSTER=1`` switches ``local_cluster`` to the cluster named by ``KUBECONFIG``, and ``s3`` to
the endpoint named by ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` when set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from stockpot_local.s3 import ExternalS3, S3Access, SeaweedS3

if TYPE_CHECKING:
    from stockpot_local.cluster import ClusterAccess
    from stockpot_local.prometheus import PrometheusServer

E2E_CLUSTER_ENV = "STOCKPOT_E2E_CLUSTER"


def use_real_cluster() -> bool:
    return os.environ.get(E2E_CLUSTER_ENV) == "1"


def unique_bucket_name(prefix: str = "test") -> str:
    """A valid, unique S3 bucket name (lowercase, 3–63 chars)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Access]:
    """A running S3 endpoint: SeaweedFS started for the session, or the real one in e2e-cluster mode."""
    external = ExternalS3.from_env(os.environ) if use_real_cluster() else None
    if external is not None:
        yield external
        return
    with SeaweedS3(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3: S3Access) -> Iterator[str]:
    """A fresh, empty bucket for one test; emptied and deleted afterwards."""
    name = s3.create_bucket(unique_bucket_name())
    yield name
    s3.delete_bucket(name)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A Prometheus server scraping every 1 s; add targets with ``prometheus.set_static_targets``."""
    from stockpot_local.prometheus import PrometheusServer

    with PrometheusServer(tmp_path_factory.mktemp("prometheus"), scrape_interval="1s") as server:
        yield server


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory, s3: S3Access) -> Iterator[ClusterAccess]:
    """The local cluster (API server, controllers, kubelet; the session's ``s3``; no Prometheus).

    In e2e-cluster mode, the cluster named by ``KUBECONFIG`` instead.
    """
    from stockpot_local.cluster import ExternalCluster, LocalCluster

    if use_real_cluster():
        real = ExternalCluster.from_env(os.environ)
        yield ExternalCluster(real.kubeconfig, s3)
        return
    with LocalCluster(tmp_path_factory.mktemp("local-cluster"), s3=s3, prometheus=False) as cluster:
        yield cluster
