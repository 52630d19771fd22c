"""``stockpot-runtime train`` as a pod runs it: a spec file, S3 credentials in env, a termination log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stockpot_local.s3 import S3Access
from stockpot_runtime.storage.manifest import MANIFEST_NAME, read_manifest, verify
from stockpot_runtime.storage.progress import read_progress
from tests.runtime.train.conftest import make_run, write_jsonl

pytestmark = pytest.mark.runtime


def run_cli(spec: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """Run the command in a fresh process; return its exit code, termination message and stderr."""
    spec_file = tmp_path / "run.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    termination = tmp_path / "termination-log"
    full_env = {**os.environ, **(env or {}), "STOCKPOT_TERMINATION_LOG": str(termination)}
    done = subprocess.run(
        [sys.executable, "-m", "stockpot_runtime.cli", "train", "--spec", str(spec_file)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    message = json.loads(termination.read_text()) if termination.exists() else {}
    return done.returncode, message, done.stderr


def spec_json(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return make_run(*args, **kwargs).model_dump(mode="json", by_alias=True, exclude_none=True)


def test_trains_from_s3_to_s3(s3: S3Access, s3_bucket: str, tmp_path: Path) -> None:
    env = {**s3.env(), "AWS_MAX_ATTEMPTS": "2"}
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "stockpot_runtime.cli",
            "toy",
            "--model",
            f"s3://{s3_bucket}/models/toy",
            "--data",
            f"s3://{s3_bucket}/data/add.jsonl",
            "--rows",
            "200",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert published.returncode == 0
    spec = spec_json(
        Path("/unused"),
        Path("/unused"),
        Path("/unused"),
        model={"uri": f"s3://{s3_bucket}/models/toy/final"},
        data={"train": f"s3://{s3_bucket}/data/add.jsonl"},
        artifactUri=f"s3://{s3_bucket}/runs/ft-1",
        training={"maxSteps": 6},
        checkpoint={"everySteps": 3},
    )
    code, message, stderr = run_cli(spec, tmp_path, env)
    assert code == 0, stderr[-2000:]
    assert message["result"] == "Succeeded"
    assert message["steps"] == 6
    assert "memory allocator: tcmalloc" in stderr  # make setup installs libtcmalloc-minimal4
    for name, value in env.items():
        if "SECRET" in name:
            assert value not in stderr
            assert value not in json.dumps(message)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        artifact = f"s3://{s3_bucket}/runs/ft-1"
        manifest = read_manifest(artifact)
        assert manifest["kind"] == "adapter"
        assert {"final/adapter_model.safetensors", "final/adapter_config.json"} <= {
            f["path"] for f in manifest["files"]
        }
        verify(artifact)
        progress = read_progress(artifact)
        assert progress is not None
        assert progress["step"] == 6


def test_two_process_ddp_on_cpu(toy_model: Path, task_rows: Callable[..., Path], tmp_path: Path) -> None:
    """The runtime relaunches itself under torchrun (gloo) and both ranks step together."""
    spec = spec_json(
        toy_model,
        task_rows(n=128),
        tmp_path / "artifact",
        world={"nodes": 1, "procsPerNode": 2},
        training={"epochs": 1, "batchSize": 8},
    )
    code, message, stderr = run_cli(spec, tmp_path, {"MASTER_PORT": str(_free_port())})
    assert code == 0, stderr[-3000:]
    assert message["steps"] == 7  # 115 training rows -> 15 batches -> 7 per rank
    assert stderr.count("memory allocator: tcmalloc") == 2  # torchrun's workers inherit the preload
    assert (tmp_path / "artifact" / MANIFEST_NAME).exists()


def test_bad_rows_fail_with_file_line_and_field_and_publish_nothing(toy_model: Path, tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": "add 1 2"}, {"role": "assistant", "content": "3"}]}] * 20
    rows[7] = {"messages": [{"role": "wizard", "content": "hi"}]}
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    code, message, stderr = run_cli(
        spec_json(toy_model, data, tmp_path / "artifact"), tmp_path, {"STOCKPOT_MALLOC": "system"}
    )
    assert "memory allocator: system" in stderr
    assert code == 1
    assert message["result"] == "Failed"
    assert "bad.jsonl:8" in message["message"]
    assert "role" in message["message"]
    assert not (tmp_path / "artifact" / MANIFEST_NAME).exists()


def test_qlora_on_a_cpu_node_is_refused_before_any_download(tmp_path: Path) -> None:
    spec = spec_json(
        Path("/nonexistent/model"),
        Path("/nonexistent/data.jsonl"),
        tmp_path / "artifact",
        peft={"quantization": "4bit"},
    )
    code, message, _ = run_cli(spec, tmp_path)
    assert code == 1
    assert message["reason"] == "HardwareError"
    assert "peft.quantization" in message["message"]


def test_an_invalid_spec_exits_2_naming_the_field(tmp_path: Path) -> None:
    code, message, stderr = run_cli({"model": {"uri": "s3://models/x"}, "artifactUri": "s3://out/x"}, tmp_path)
    assert code == 2
    assert message["result"] == "Invalid"
    assert "data" in stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unknown_allocator_setting_exits_2(toy_model: Path, tmp_path: Path) -> None:
    spec = spec_json(toy_model, tmp_path / "unused.jsonl", tmp_path / "artifact")
    code, message, stderr = run_cli(spec, tmp_path, {"STOCKPOT_MALLOC": "jemalloc"})
    assert code == 2
    assert "STOCKPOT_MALLOC" in message["message"]
    assert "tcmalloc" in stderr
