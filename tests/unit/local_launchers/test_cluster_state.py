"""The daemon's state record, the shell exports, the status table and the CLI's arguments."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from stockpot_local.cli import build_parser, main
from stockpot_local.cluster import ExternalCluster, prometheus_dir
from stockpot_local.cluster_state import ClusterState, export_lines, read_state, status_lines, write_state
from stockpot_local.prometheus import PrometheusServer

pytestmark = pytest.mark.unit


def _state(**overrides: object) -> ClusterState:
    fields: dict[str, object] = {
        "pid": 41,
        "api_url": "http://127.0.0.1:6443",
        "kubeconfig": "/s/kubeconfig",
        "env": {"KUBECONFIG": "/s/kubeconfig"},
        "s3_endpoint": "http://127.0.0.1:9000",
        "prometheus_url": None,
        "child_pids": {"s3": 42},
    }
    fields.update(overrides)
    return ClusterState(**fields)  # type: ignore[arg-type]


def test_state_survives_the_file_round_trip(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    write_state(tmp_path, _state())
    assert read_state(tmp_path) == _state()
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.json"]


def test_endpoints_list_only_running_parts() -> None:
    assert _state().endpoints() == {"apiserver": "http://127.0.0.1:6443", "s3": "http://127.0.0.1:9000"}
    assert set(_state(prometheus_url="http://127.0.0.1:9090").endpoints()) == {"apiserver", "s3", "prometheus"}


def test_export_lines_survive_the_shell() -> None:
    env = {"KUBECONFIG": "/dir with space/kubeconfig", "AWS_SECRET_ACCESS_KEY": "a'b$c"}
    script = "\n".join([*export_lines(env), 'printf "%s\\n%s" "$KUBECONFIG" "$AWS_SECRET_ACCESS_KEY"'])
    printed = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.split("\n") == ["/dir with space/kubeconfig", "a'b$c"]
    assert all(shlex.split(line)[0] == "export" for line in export_lines(env))


def test_status_lines_flag_unhealthy_parts() -> None:
    lines = status_lines(_state(), {"apiserver": True, "s3": False})
    assert any(line.startswith("apiserver") and line.endswith(" healthy") for line in lines)
    assert any(line.startswith("s3") and line.endswith("UNHEALTHY") for line in lines)


@pytest.mark.parametrize(
    "argv",
    [["--state-dir", "/x", "up", "--no-prometheus"], ["up", "--state-dir", "/x", "--no-prometheus"]],
)
def test_state_dir_is_accepted_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.command, args.state_dir, args.no_prometheus, args.foreground) == ("up", Path("/x"), True, False)


def test_state_dir_defaults_to_dot_local_cluster() -> None:
    assert build_parser().parse_args(["status"]).state_dir == Path(".local-cluster")


def test_external_cluster_takes_kubeconfig_and_s3_from_env(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\n")
    cluster = ExternalCluster.from_env({"KUBECONFIG": str(kubeconfig), "AWS_ENDPOINT_URL": "http://s3.example"})
    assert cluster.env()["KUBECONFIG"] == str(kubeconfig)
    assert cluster.env()["AWS_ENDPOINT_URL_S3"] == "http://s3.example"
    with pytest.raises(FileNotFoundError, match="STOCKPOT_E2E_CLUSTER"):
        ExternalCluster.from_env({"KUBECONFIG": str(tmp_path / "missing")})


def test_scrape_command_adds_replaces_and_removes_static_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--state-dir", str(tmp_path), "scrape"]
    assert main([*base, "127.0.0.1:8080"]) == 0
    assert main([*base, "127.0.0.1:8080", "--job", "operator", "--path", "/m"]) == 0
    assert main([*base, "127.0.0.1:9000", "--job", "other"]) == 0
    targets = PrometheusServer(prometheus_dir(tmp_path)).static_targets()
    assert {(t.address, t.path, t.labels["job"]) for t in targets} == {
        ("127.0.0.1:8080", "/m", "operator"),
        ("127.0.0.1:9000", "/metrics", "other"),
    }
    capsys.readouterr()
    assert main([*base, "127.0.0.1:8080", "--remove"]) == 0
    assert capsys.readouterr().out == "other\t127.0.0.1:9000/metrics\n"
