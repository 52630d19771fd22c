from pathlib import Path

import pytest

from stockpot_runtime.storage.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    NotFoundError,
)
from stockpot_runtime.storage.manifest import read_manifest
from stockpot_runtime.storage.s3 import S3Store
from stockpot_runtime.storage.sources import materialize
from stockpot_runtime.storage.store import ObjectInfo, open_store, read_json, write_json
from stockpot_runtime.storage.uri import S3Location

pytestmark = pytest.mark.runtime


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_round_trip_through_s3(s3_env: str, tmp_path: Path) -> None:
    files = {f"shard-{i}.bin": bytes([i]) * (100 + i) for i in range(6)} | {"sub/config.json": b"{}"}
    store = open_store(f"s3://{s3_env}/ns/FineTune/x/uid")
    assert isinstance(store, S3Store)
    assert sorted(store.put_dir(_tree(tmp_path / "src", files), "final")) == sorted(f"final/{k}" for k in files)
    assert store.list("final")[-1] == ObjectInfo("sub/config.json", 2)
    assert len(store.list()) == 7
    assert store.list("fin") == []
    assert store.exists("final/shard-0.bin")
    assert not store.exists("final")
    write_json(store, "progress.json", {"step": 3})
    assert read_json(store, "progress.json") == {"step": 3}
    dest = _tree(tmp_path / "dest", {"shard-1.bin": b"?" * 101})
    store.get_dir("final", dest)
    assert (dest / "shard-1.bin").read_bytes() == b"?" * 101
    assert (dest / "shard-2.bin").read_bytes() == files["shard-2.bin"]
    assert store.child("final").sha256("sub/config.json") == store.sha256("final/sub/config.json")
    assert store.delete("final") == 7
    assert [info.key for info in store.list()] == ["progress.json"]


def test_materialize_object_and_prefix(s3_env: str, tmp_path: Path) -> None:
    store = open_store(f"s3://{s3_env}/models")
    store.put_dir(_tree(tmp_path / "m", {"config.json": b"{}", "model.safetensors": b"w"}), "tiny")
    one = materialize(f"s3://{s3_env}/models/tiny/config.json", tmp_path / "one")
    assert one == tmp_path / "one/config.json"
    assert one.read_bytes() == b"{}"
    whole = materialize(f"s3://{s3_env}/models/tiny", tmp_path / "whole")
    assert sorted(p.name for p in whole.iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(NotFoundError, match=rf"^s3://{s3_env}/models/absent: no object"):
        materialize(f"s3://{s3_env}/models/absent", tmp_path / "absent")


def test_missing_things_are_explained(s3_env: str) -> None:
    with pytest.raises(BucketNotFoundError, match="bucket 'no-such-bucket-here' does not exist"):
        open_store("s3://no-such-bucket-here/x").list()
    with pytest.raises(BucketNotFoundError):
        read_manifest("s3://no-such-bucket-here/x")
    with pytest.raises(NotFoundError, match=rf"s3://{s3_env}/a/b\.json: no such object"):
        open_store(f"s3://{s3_env}/a").get_bytes("b.json")


def test_bad_credentials_are_explained_without_the_secret(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-123")
    with pytest.raises(AccessDeniedError) as info:
        open_store(f"s3://{s3_env}/x").put_bytes("a.json", b"{}")
    assert "credentials Secret" in str(info.value)
    assert "wrong-secret-value-123" not in str(info.value)


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int) -> None:
    endpoint = f"http://127.0.0.1:{unused_tcp_port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = S3Store.from_env(S3Location("bucket", "x"))
    with pytest.raises(EndpointUnreachableError, match=f"cannot reach the S3 endpoint {endpoint}"):
        store.get_bytes("a.json")
