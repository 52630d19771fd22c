"""The pytest fixtures as a test suite sees them: e2e-cluster mode, and cleanup when a run is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from stockpot_local.managed_process import wait_until

pytestmark = pytest.mark.integration


# pytest, with Ctrl-C raising KeyboardInterrupt as in a terminal: a suite started in the background of a shell
# without job control inherits SIGINT ignored, and Python then installs no handler of its own for it.
PYTEST = (
    "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


def _pytest(test_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PYTEST, "-p", "stockpot_local.pytest_plugin", "-p", "no:cacheprovider", "-q"],
        cwd=test_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_e2e_mode_uses_the_cluster_and_s3_named_by_env(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    (tmp_path / "test_real.py").write_text(
        textwrap.dedent(
            """
            import os

            def test_real(local_cluster, s3):
                assert str(local_cluster.kubeconfig) == os.environ["KUBECONFIG"]
                assert s3.endpoint_url == "http://s3.example:9000"
                assert local_cluster.env()["AWS_ACCESS_KEY_ID"] == "real-key"
            """
        )
    )
    env = {
        **os.environ,
        "STOCKPOT_E2E_CLUSTER": "1",
        "KUBECONFIG": str(kubeconfig),
        "AWS_ENDPOINT_URL_S3": "http://s3.example:9000",
        "AWS_ACCESS_KEY_ID": "real-key",
        "AWS_SECRET_ACCESS_KEY": "real-secret",
    }
    run = _pytest(tmp_path, env)
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output
    assert "1 passed" in output


def test_interrupted_run_stops_its_s3_server(tmp_path: Path) -> None:
    pid_file = tmp_path / "weed.pid"
    (tmp_path / "test_interrupted.py").write_text(
        textwrap.dedent(
            f"""
            import time
            from pathlib import Path

            def test_hangs(s3):
                Path({str(pid_file)!r}).write_text(str(s3.pid))
                time.sleep(120)
            """
        )
    )
    env = {key: value for key, value in os.environ.items() if key != "STOCKPOT_E2E_CLUSTER"}
    run = _pytest(tmp_path, env)
    try:
        assert wait_until(pid_file.exists, timeout=60), "the test never got its S3 server"
        weed_pid = int(pid_file.read_text())
        assert psutil.pid_exists(weed_pid)
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=60)
    finally:
        run.kill()
    assert "KeyboardInterrupt" in output
    assert wait_until(lambda: not psutil.pid_exists(weed_pid), timeout=10)
