import json
import math
from pathlib import Path

import pytest

from stockpot_runtime.storage import local
from stockpot_runtime.storage.errors import StorageError
from stockpot_runtime.storage.progress import (
    ProgressReporter,
    progress_document,
    read_metrics,
    read_progress,
    termination_line,
    write_termination_message,
)

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_document_fields() -> None:
    doc = progress_document(5, total_steps=10, epoch=0.5, loss=math.nan, lr=1e-4, tokens_per_second=12.5, resumes=1)
    assert doc["step"] == 5
    assert doc["totalSteps"] == 10
    assert doc["loss"] is None
    assert doc["etaSeconds"] is None
    assert doc["updated"].endswith("Z")
    assert doc["resumes"] == 1
    assert set(doc) == {
        "step",
        "totalSteps",
        "epoch",
        "loss",
        "lr",
        "tokensPerSecond",
        "etaSeconds",
        "resumes",
        "checkpoint",
        "updated",
    }


def test_reports_are_throttled_unless_forced(tmp_path: Path) -> None:
    clock = FakeClock()
    reporter = ProgressReporter(tmp_path, min_interval_s=5, clock=clock)
    assert read_progress(tmp_path) is None
    assert reporter.report(1, total_steps=10, loss=2.0)
    assert not reporter.report(2, total_steps=10, loss=1.9)
    assert read_progress(tmp_path)["step"] == 1  # type: ignore[index]
    assert reporter.report(3, total_steps=10, force=True)
    clock.now += 5
    assert reporter.report(4, total_steps=10, eta_seconds=60.0)
    progress = read_progress(tmp_path)
    assert progress is not None
    assert (progress["step"], progress["etaSeconds"]) == (4, 60.0)
    assert not reporter.report(5)
    reporter.flush()
    assert read_progress(tmp_path)["step"] == 5  # type: ignore[index]


def test_storage_failures_do_not_stop_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reporter = ProgressReporter(tmp_path, clock=FakeClock())

    def broken(self: local.LocalStore, key: str, data: bytes) -> None:
        raise StorageError(self.uri_for(key), "unavailable")

    monkeypatch.setattr(local.LocalStore, "put_bytes", broken)
    assert not reporter.report(1, force=True)
    monkeypatch.undo()
    assert reporter.report(2, force=True)
    assert read_progress(tmp_path)["step"] == 2  # type: ignore[index]


def test_metrics_are_buffered_and_continue_a_previous_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/metrics.jsonl").write_text('{"step":1,"loss":3.0}\n')
    reporter = ProgressReporter(tmp_path / "out", clock=FakeClock(), buffer_dir=tmp_path / "buf")
    reporter.log_metrics({"step": 2, "loss": 2.5})
    reporter.log_metrics({"step": 3, "loss": math.inf})
    assert read_metrics(tmp_path / "out") == [{"step": 1, "loss": 3.0}]
    reporter.flush()
    assert read_metrics(tmp_path / "out") == [
        {"step": 1, "loss": 3.0},
        {"step": 2, "loss": 2.5},
        {"loss": None, "step": 3},
    ]
    assert read_metrics(tmp_path / "nothing") == []


def test_a_report_uploads_pending_metrics(tmp_path: Path) -> None:
    reporter = ProgressReporter(tmp_path / "out", clock=FakeClock())
    reporter.log_metrics({"step": 1})
    reporter.report(1, force=True)
    assert read_metrics(tmp_path / "out") == [{"step": 1}]


def test_termination_line_fits_in_4_kib() -> None:
    small = {"phase": "Succeeded", "step": 10}
    assert termination_line(small) == '{"phase":"Succeeded","step":10}'
    big = {"phase": "Failed", "message": "x" * 10_000, "trace": ["y" * 3000] * 3}
    line = termination_line(big)
    assert len(line.encode()) <= 4096
    parsed = json.loads(line)
    assert parsed["phase"] == "Failed"
    assert parsed["message"].startswith("xxx")
    many = {f"key{i}": "é" * 20 for i in range(400)}
    line = termination_line(many)
    assert len(line.encode()) <= 4096
    assert json.loads(line)["truncated"] is True


def test_write_termination_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "termination-log"
    monkeypatch.setenv("STOCKPOT_TERMINATION_LOG", str(target))
    assert write_termination_message({"phase": "Succeeded", "artifact": "s3://b/x"})
    assert target.read_text().count("\n") == 1
    assert json.loads(target.read_text()) == {"phase": "Succeeded", "artifact": "s3://b/x"}
    assert not write_termination_message({"phase": "Failed"}, tmp_path / "missing-dir/log")
