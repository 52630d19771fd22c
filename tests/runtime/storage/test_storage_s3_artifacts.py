import hashlib
import threading
from pathlib import Path

import pytest

from stockpot_runtime.storage import s3
from stockpot_runtime.storage.checkpoints import CheckpointRef, CheckpointStore
from stockpot_runtime.storage.errors import CorruptArtifactError, NoArtifactError
from stockpot_runtime.storage.manifest import commit_artifact, read_artifact_ref, read_manifest, verify
from stockpot_runtime.storage.progress import ProgressReporter, read_metrics, read_progress
from stockpot_runtime.storage.store import open_store

pytestmark = pytest.mark.runtime

LINEAGE = {"baseModel": "s3://models/tiny", "dataDigest": "sha256:d", "configHash": "sha256:c", "image": "i:1"}


def _model(root: Path, tag: str = "a") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(5):
        (root / f"model-{i}.safetensors").write_bytes(f"{tag}{i}".encode() * 50)
    (root / "config.json").write_text('{"model_type": "llama"}')
    return root


def test_commit_and_verify_on_s3(s3_env: str, tmp_path: Path) -> None:
    uri = f"s3://{s3_env}/default/FineTune/demo/uid-1"
    ref = commit_artifact(_model(tmp_path / "m"), uri, LINEAGE, kind="FineTune", fmt="merged-safetensors")
    assert ref.uri == uri
    stored = open_store(uri).get_bytes("manifest.json")
    assert ref.manifest_sha256 == hashlib.sha256(stored).hexdigest()
    assert read_artifact_ref(uri) == ref
    assert len(verify(uri)["files"]) == 6
    open_store(uri).put_bytes("final/config.json", b'{"model_type": "gpt2"}')
    with pytest.raises(CorruptArtifactError, match=r"final/config\.json has"):
        verify(uri)


def test_failed_upload_leaves_no_artifact(s3_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"s3://{s3_env}/default/FineTune/demo/uid-2"
    lock = threading.Lock()
    calls: list[str] = []
    real_put = s3.S3Store.put_file

    def failing_put(self: s3.S3Store, src: Path, key: str) -> None:
        with lock:
            calls.append(key)
            fail = len(calls) == 3
        if fail:
            raise OSError("connection reset mid-upload")
        real_put(self, src, key)

    monkeypatch.setattr(s3.S3Store, "put_file", failing_put)
    with pytest.raises(OSError, match="mid-upload"):
        commit_artifact(_model(tmp_path / "m"), uri, LINEAGE)
    assert open_store(uri).list("final")
    assert not open_store(uri).exists("manifest.json")
    with pytest.raises(NoArtifactError, match=f"^{uri}: no artifact"):
        read_manifest(uri)


def test_checkpoints_on_s3(s3_env: str, tmp_path: Path) -> None:
    prefix = f"s3://{s3_env}/default/FineTune/demo/uid-3/checkpoints"
    store = CheckpointStore(prefix, keep=2)
    assert store.latest_complete() is None
    for step in (10, 20, 30):
        store.save(step, _model(tmp_path / f"s{step}", tag=str(step)))
    open_store(prefix).put_bytes("step-40/model-0.safetensors", b"partial")
    assert store.latest_complete() == CheckpointRef(30, f"{prefix}/step-30")
    assert [ref.step for ref in store.complete()] == [20, 30]
    dest = store.restore(30, tmp_path / "restored")
    assert (dest / "model-4.safetensors").read_bytes() == b"304" * 50
    assert not (dest / "checkpoint.json").exists()


def test_progress_on_s3(s3_env: str, tmp_path: Path) -> None:
    prefix = f"s3://{s3_env}/default/FineTune/demo/uid-4"
    assert read_progress(prefix) is None
    reporter = ProgressReporter(prefix, min_interval_s=3600, buffer_dir=tmp_path / "buf")
    reporter.log_metrics({"step": 1, "loss": 2.0})
    assert reporter.report(1, total_steps=4, loss=2.0, lr=1e-3)
    reporter.log_metrics({"step": 2, "loss": 1.5})
    assert not reporter.report(2, total_steps=4, loss=1.5)
    reporter.flush()
    progress = read_progress(prefix)
    assert progress is not None
    assert (progress["step"], progress["totalSteps"], progress["loss"]) == (2, 4, 1.5)
    assert read_metrics(prefix) == [{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}]
    resumed = ProgressReporter(prefix, buffer_dir=tmp_path / "buf2")
    resumed.log_metrics({"step": 3, "loss": 1.0})
    resumed.flush()
    assert [record["step"] for record in read_metrics(prefix)] == [1, 2, 3]
