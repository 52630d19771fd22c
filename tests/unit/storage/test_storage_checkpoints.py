import json
from pathlib import Path

import pytest

from stockpot_runtime.storage import local
from stockpot_runtime.storage.checkpoints import MARKER_NAME, CheckpointRef, CheckpointStore
from stockpot_runtime.storage.errors import CorruptArtifactError

pytestmark = pytest.mark.unit


def _state(root: Path, step: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "adapter_model.safetensors").write_bytes(f"weights-{step}".encode() * 10)
    (root / "optimizer.pt").write_bytes(f"optim-{step}".encode())
    (root / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return root


def _failing_after(monkeypatch: pytest.MonkeyPatch, good_puts: int) -> None:
    calls = []
    real_put = local.LocalStore.put_file

    def failing_put(self: local.LocalStore, src: Path, key: str) -> None:
        calls.append(key)
        if len(calls) > good_puts:
            raise OSError("pod evicted")
        real_put(self, src, key)

    monkeypatch.setattr(local.LocalStore, "put_file", failing_put)


def test_save_find_restore(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=2)
    assert store.latest_complete() is None
    ref = store.save(10, _state(tmp_path / "s10", 10))
    assert ref == CheckpointRef(10, str(tmp_path / "ckpt/step-10"))
    marker = json.loads((tmp_path / "ckpt/step-10" / MARKER_NAME).read_text())
    assert marker["step"] == 10
    assert [f["path"] for f in marker["files"]] == ["adapter_model.safetensors", "optimizer.pt", "trainer_state.json"]
    step, uri = store.latest_complete() or (None, None)
    assert (step, uri) == (10, ref.uri)
    dest = store.restore(10, tmp_path / "restored")
    assert (dest / "optimizer.pt").read_bytes() == b"optim-10"
    assert sorted(p.name for p in dest.iterdir()) == ["adapter_model.safetensors", "optimizer.pt", "trainer_state.json"]


def test_incomplete_checkpoints_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=3)
    store.save(10, _state(tmp_path / "s10", 10))
    _failing_after(monkeypatch, good_puts=1)
    with pytest.raises(OSError, match="evicted"):
        store.save(20, _state(tmp_path / "s20", 20))
    assert (tmp_path / "ckpt/step-20/adapter_model.safetensors").exists()
    assert not (tmp_path / "ckpt/step-20" / MARKER_NAME).exists()
    assert store.latest_complete() == CheckpointRef(10, str(tmp_path / "ckpt/step-10"))


def test_a_marker_whose_files_are_missing_is_not_complete(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    store.save(10, _state(tmp_path / "s10", 10))
    store.save(20, _state(tmp_path / "s20", 20))
    (tmp_path / "ckpt/step-20/optimizer.pt").unlink()
    assert store.latest_complete() is not None
    assert store.latest_complete() == CheckpointRef(10, str(tmp_path / "ckpt/step-10"))
    (tmp_path / "ckpt/step-10" / MARKER_NAME).write_text("{broken")
    assert store.latest_complete() is None


def test_prune_keeps_the_newest_k_and_removes_stale_partials(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=2)
    (tmp_path / "ckpt/step-5").mkdir(parents=True)
    (tmp_path / "ckpt/step-5/partial.bin").write_bytes(b"x")
    for step in (10, 20, 30):
        store.save(step, _state(tmp_path / f"s{step}", step))
    (tmp_path / "ckpt/step-40").mkdir()
    (tmp_path / "ckpt/step-40/in-flight.bin").write_bytes(b"x")
    assert [ref.step for ref in store.complete()] == [20, 30]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-20", "step-30", "step-40"]
    assert store.prune() == []


def test_newest_complete_survives_a_failed_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=1)
    store.save(10, _state(tmp_path / "s10", 10))
    _failing_after(monkeypatch, good_puts=2)
    with pytest.raises(OSError, match="evicted"):
        store.save(20, _state(tmp_path / "s20", 20))
    assert store.latest_complete() == CheckpointRef(10, str(tmp_path / "ckpt/step-10"))
    monkeypatch.undo()
    store.save(20, _state(tmp_path / "s20", 20))
    assert [ref.step for ref in store.complete()] == [20]


def test_saving_a_complete_step_again_changes_nothing(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    first = store.save(10, _state(tmp_path / "s10", 10))
    marker = (tmp_path / "ckpt/step-10" / MARKER_NAME).read_bytes()
    assert store.save(10, _state(tmp_path / "other", 11)) == first
    assert (tmp_path / "ckpt/step-10" / MARKER_NAME).read_bytes() == marker


def test_restore_detects_corruption(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    store.save(10, _state(tmp_path / "s10", 10))
    (tmp_path / "ckpt/step-10/optimizer.pt").write_bytes(b"optim-99")
    with pytest.raises(CorruptArtifactError, match=r"step-10/optimizer\.pt: sha256 differs"):
        store.restore(10, tmp_path / "restored")


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        CheckpointStore(tmp_path, keep=0)
    store = CheckpointStore(tmp_path / "ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        store.save(1, tmp_path / "empty")
    (tmp_path / "empty" / MARKER_NAME).write_text("{}")
    with pytest.raises(ValueError, match="reserved"):
        store.save(1, tmp_path / "empty")


def test_restore_replaces_stale_files_of_the_same_size(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    store.save(10, _state(tmp_path / "s10", 10))
    dest = tmp_path / "restored"
    dest.mkdir()
    (dest / "optimizer.pt").write_bytes(b"optim-11")
    store.restore(10, dest)
    assert (dest / "optimizer.pt").read_bytes() == b"optim-10"
    assert not (dest / MARKER_NAME).exists()
