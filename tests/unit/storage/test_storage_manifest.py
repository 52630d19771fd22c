import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stockpot_runtime.storage import local
from stockpot_runtime.storage.errors import CorruptArtifactError, NoArtifactError, StorageError
from stockpot_runtime.storage.manifest import (
    build_manifest,
    commit_artifact,
    config_hash,
    digest_files,
    read_artifact_ref,
    read_manifest,
    verify,
)

pytestmark = pytest.mark.unit

LINEAGE = {"baseModel": "hf://org/base", "dataDigest": "sha256:d", "configHash": "sha256:c", "image": "img:1"}


def _model(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"a": 1}')
    (root / "model.safetensors").write_bytes(b"w" * 1000)
    (root / "sub/tokenizer.json").write_text("{}")
    return root


def test_build_manifest_records_files_and_lineage(tmp_path: Path) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    manifest = build_manifest(_model(tmp_path / "m"), LINEAGE, kind="FineTune", fmt="peft-adapter", created_at=when)
    assert manifest["kind"] == "FineTune"
    assert manifest["format"] == "peft-adapter"
    assert manifest["createdAt"] == "2026-01-02T03:04:05Z"
    assert manifest["lineage"] == LINEAGE
    assert [f["path"] for f in manifest["files"]] == [
        "final/config.json",
        "final/model.safetensors",
        "final/sub/tokenizer.json",
    ]
    assert manifest["files"][1] == {
        "path": "final/model.safetensors",
        "sha256": hashlib.sha256(b"w" * 1000).hexdigest(),
        "size": 1000,
    }


def test_commit_then_read_and_verify(tmp_path: Path) -> None:
    ref = commit_artifact(_model(tmp_path / "m"), tmp_path / "art", LINEAGE, kind="FineTune")
    manifest_bytes = (tmp_path / "art/manifest.json").read_bytes()
    assert ref.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest()
    assert ref.uri == str(tmp_path / "art")
    assert (tmp_path / "art/final/sub/tokenizer.json").read_text() == "{}"
    assert read_manifest(ref.uri)["lineage"] == LINEAGE
    assert verify(ref.uri)["kind"] == "FineTune"
    assert read_artifact_ref(ref.uri) == ref


def test_commit_to_pvc_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKPOT_PVC_ROOT", str(tmp_path))
    final = _model(tmp_path / "claim/run/final")
    ref = commit_artifact(final, "pvc://claim/run", LINEAGE)
    assert ref.uri == "pvc://claim/run"
    assert len(verify("pvc://claim/run")["files"]) == 3


def test_failure_mid_upload_leaves_no_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_put = local.LocalStore.put_file

    def failing_put(self: local.LocalStore, src: Path, key: str) -> None:
        calls.append(key)
        if len(calls) == 2:
            raise OSError("disk full")
        real_put(self, src, key)

    monkeypatch.setattr(local.LocalStore, "put_file", failing_put)
    with pytest.raises(OSError, match="disk full"):
        commit_artifact(_model(tmp_path / "m"), tmp_path / "art", LINEAGE)
    assert (tmp_path / "art/final/config.json").exists()
    assert not (tmp_path / "art/manifest.json").exists()
    with pytest.raises(NoArtifactError, match=r"no artifact: manifest\.json does not exist"):
        read_manifest(tmp_path / "art")


def test_recommit_is_idempotent_but_artifacts_are_immutable(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    first = commit_artifact(model, tmp_path / "art", LINEAGE)
    assert commit_artifact(model, tmp_path / "art", LINEAGE) == first
    (model / "config.json").write_text('{"a": 2}')
    with pytest.raises(StorageError, match="immutable"):
        commit_artifact(model, tmp_path / "art", LINEAGE)


def test_verify_finds_changed_and_missing_files(tmp_path: Path) -> None:
    ref = commit_artifact(_model(tmp_path / "m"), tmp_path / "art", LINEAGE)
    (tmp_path / "art/final/config.json").write_text('{"a": 9}')
    with pytest.raises(CorruptArtifactError, match=r"final/config\.json has a different sha256"):
        verify(ref.uri)
    verify(ref.uri, hashes=False)
    (tmp_path / "art/final/sub/tokenizer.json").unlink()
    (tmp_path / "art/final/model.safetensors").write_bytes(b"short")
    with pytest.raises(CorruptArtifactError) as info:
        verify(ref.uri, hashes=False)
    assert "final/model.safetensors has 5 bytes, expected 1000" in str(info.value)
    assert "final/sub/tokenizer.json is missing" in str(info.value)


def test_manifest_that_is_not_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CorruptArtifactError, match="not a Stockpot manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(CorruptArtifactError, match="not valid JSON"):
        read_manifest(tmp_path)


def test_digest_files_depends_on_names_and_content_not_location(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "train.jsonl").write_text("x\n")
    (a / "eval.jsonl").write_text("y\n")
    b = tmp_path / "b"
    b.mkdir()
    (b / "eval.jsonl").write_text("y\n")
    (b / "train.jsonl").write_text("x\n")
    assert digest_files([a]) == digest_files([b]) == digest_files([b / "train.jsonl", b / "eval.jsonl"])
    assert digest_files([a]).startswith("sha256:")
    (b / "train.jsonl").write_text("z\n")
    assert digest_files([a]) != digest_files([b])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        digest_files([tmp_path / "nowhere"])


def test_config_hash_is_canonical() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    expected = hashlib.sha256(b'{"a":1}').hexdigest()
    assert config_hash({"a": 1}) == f"sha256:{expected}"
