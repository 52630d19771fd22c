"""The command lines, end to end in-process."""

import json
import shutil
from pathlib import Path

import pytest

from stockpot_operator import cli as operator_cli
from stockpot_runtime import cli as runtime_cli

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_crds_check_passes_on_the_repo_and_fails_on_a_stale_copy(tmp_path: Path) -> None:
    assert operator_cli.main(["crds", "--check", "--out", str(REPO / "crds")]) == 0
    shutil.copytree(REPO / "crds", tmp_path / "crds")
    next((tmp_path / "crds").glob("*.yaml")).write_text("stale")
    assert operator_cli.main(["crds", "--check", "--out", str(tmp_path / "crds")]) == 1


def test_validate_reports_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert operator_cli.main(["validate", str(REPO / "docs/examples/finetune.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "docs/examples/finetune.yaml").read_text().replace("r: 16", "r: -4"))
    assert operator_cli.main(["validate", str(bad)]) == 1
    assert "spec.peft.r" in capsys.readouterr().err


def test_runtime_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "run.json"
    spec.write_text(
        json.dumps({"model": {"uri": "/models/x"}, "data": {"train": "/data/t.jsonl"}, "artifactUri": "/out"})
    )
    assert runtime_cli.main(["check", "train", "--spec", str(spec)]) == 0
    spec.write_text(json.dumps({"model": {"uri": "/models/x"}}))
    assert runtime_cli.main(["check", "train", "--spec", str(spec)]) == 2
    assert "artifactUri" in capsys.readouterr().err


def test_local_passes_everything_to_the_local_cluster_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "stockpot_operator", "local", "--state-dir", str(tmp_path), "status"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert "not running" in result.stdout + result.stderr
    help_text = subprocess.run([*command[:4], "--help"], capture_output=True, text=True, check=True, timeout=60)
    assert "up,down,status,env" in help_text.stdout
