"""Command lines, configs and environments of the S3 and Prometheus launchers."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockpot_local.managed_process import free_ports
from stockpot_local.prometheus import (
    INSTALL_COMMAND,
    PrometheusNotInstalled,
    prometheus_argv,
    prometheus_binary,
    prometheus_config,
)
from stockpot_local.s3 import ExternalS3, identity_config, s3_env, weed_mini_argv

pytestmark = pytest.mark.unit


def test_weed_binds_every_port_to_loopback_and_disables_extras() -> None:
    ports = dict.fromkeys(("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc"), 1)
    ports["s3"] = 4567
    argv = weed_mini_argv(Path("/bin/weed"), Path("/d"), Path("/d/s3.json"), ports)
    assert argv[:3] == ["/bin/weed", "-logtostderr", "mini"]
    flags = dict(arg.lstrip("-").split("=", 1) for arg in argv[3:])
    assert flags["ip"] == flags["ip.bind"] == "127.0.0.1"
    assert flags["s3.port"] == "4567"
    assert flags["s3.config"] == "/d/s3.json"
    assert {flags[name] for name in ("webdav", "admin.ui", "master.telemetry")} == {"false"}
    assert all(f"{name}.port" in " ".join(flags) for name in ("master", "volume", "filer"))


def test_identity_has_the_credentials_and_admin_rights() -> None:
    (identity,) = identity_config("ak", "sk")["identities"]
    assert identity["credentials"] == [{"accessKey": "ak", "secretKey": "sk"}]
    assert "Admin" in identity["actions"]


def test_s3_env_names_the_standard_aws_variables() -> None:
    env = s3_env("http://127.0.0.1:9000", "ak", "sk")
    assert env == {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "ak",
        "AWS_SECRET_ACCESS_KEY": "sk",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STOCKPOT_S3_ADDRESSING_STYLE": "path",
    }


def test_external_s3_from_env_prefers_the_s3_specific_endpoint() -> None:
    external = ExternalS3.from_env(
        {"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_S3": "http://s3", "AWS_ACCESS_KEY_ID": "k"}
    )
    assert external is not None
    assert (external.endpoint_url, external.access_key, external.secret_key) == ("http://s3", "k", "")
    assert ExternalS3.from_env({"AWS_ACCESS_KEY_ID": "k"}) is None


def test_prometheus_config_reads_every_targets_file() -> None:
    config = prometheus_config(Path("/p/targets"), "2s")
    (job,) = config["scrape_configs"]
    assert job["file_sd_configs"] == [{"files": ["/p/targets/*.json"], "refresh_interval": "5s"}]
    assert config["global"]["scrape_interval"] == job["scrape_interval"] == "2s"


def test_prometheus_listens_on_loopback_only() -> None:
    argv = prometheus_argv(Path("/usr/bin/prometheus"), Path("/p/c.yml"), Path("/p/tsdb"), 9999)
    assert "--web.listen-address=127.0.0.1:9999" in argv


def test_missing_prometheus_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrometheusNotInstalled, match=INSTALL_COMMAND):
        prometheus_binary()


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
