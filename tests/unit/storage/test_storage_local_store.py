from pathlib import Path

import pytest

from stockpot_runtime.storage.errors import NotFoundError
from stockpot_runtime.storage.local import LocalStore
from stockpot_runtime.storage.store import ObjectInfo, open_store, read_json, write_json

pytestmark = pytest.mark.unit


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_put_list_get_delete(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {"a.txt": b"aa", "sub/b.bin": b"bbb"})
    store = LocalStore(tmp_path / "store", "pvc://claim/x")
    assert store.put_dir(src, "final") == ["final/a.txt", "final/sub/b.bin"]
    assert store.list() == [ObjectInfo("final/a.txt", 2), ObjectInfo("final/sub/b.bin", 3)]
    assert store.list("final/sub") == [ObjectInfo("b.bin", 3)]
    assert store.exists("final/a.txt")
    assert not store.exists("final")
    assert store.get_bytes("final/sub/b.bin") == b"bbb"
    assert store.uri_for("final/a.txt") == "pvc://claim/x/final/a.txt"
    assert store.child("final").uri == "pvc://claim/x/final"
    assert store.delete("final/sub") == 1
    assert store.list() == [ObjectInfo("final/a.txt", 2)]
    assert store.delete("missing") == 0


def test_get_dir_skips_files_of_the_same_size(tmp_path: Path) -> None:
    store = LocalStore(_tree(tmp_path / "store", {"a": b"new!", "b": b"bb"}))
    dest = _tree(tmp_path / "dest", {"a": b"old!"})
    paths = store.get_dir("", dest)
    assert paths == [dest / "a", dest / "b"]
    assert (dest / "a").read_bytes() == b"old!"
    assert (dest / "b").read_bytes() == b"bb"


def test_missing_reads_name_the_uri(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, "pvc://claim")
    with pytest.raises(NotFoundError, match=r"pvc://claim/nope\.json"):
        store.get_bytes("nope.json")
    with pytest.raises(NotFoundError, match="pvc://claim/dir"):
        store.get_dir("dir", tmp_path / "out")


def test_temp_files_of_interrupted_writes_are_invisible(tmp_path: Path) -> None:
    (tmp_path / ".x.json.stockpot-tmp-1234abcd").write_bytes(b"partial")
    store = LocalStore(tmp_path)
    write_json(store, "x.json", {"b": 1, "a": [1, 2]})
    assert [info.key for info in store.list()] == ["x.json"]
    assert read_json(store, "x.json") == {"a": [1, 2], "b": 1}


def test_open_store_picks_the_filesystem_for_pvc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKPOT_PVC_ROOT", str(tmp_path))
    store = open_store("pvc://claim/run")
    store.put_bytes("p.json", b"{}")
    assert (tmp_path / "claim/run/p.json").read_bytes() == b"{}"
    with pytest.raises(ValueError, match="hub repository"):
        open_store("hf://org/name")
