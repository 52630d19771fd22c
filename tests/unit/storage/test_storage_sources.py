import json
from pathlib import Path

import pytest

from stockpot_runtime.storage.errors import ModelDirError, NotFoundError
from stockpot_runtime.storage.sources import check_model_dir, materialize, model_dir_problems

pytestmark = pytest.mark.unit


def _model(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_text("{}" if name.endswith(".json") else "weights")
    return root


def test_local_and_pvc_sources_are_used_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKPOT_PVC_ROOT", str(tmp_path / "pvc"))
    model = _model(tmp_path / "pvc/models/llama", "config.json", "model.safetensors")
    assert materialize("pvc://models/llama", tmp_path / "unused") == model
    assert materialize(f"file://{model}", tmp_path / "unused") == model
    assert materialize(str(model / "config.json"), tmp_path / "unused") == model / "config.json"
    assert not (tmp_path / "unused").exists()


def test_missing_or_empty_sources_name_the_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKPOT_PVC_ROOT", str(tmp_path))
    with pytest.raises(NotFoundError, match=r"^pvc://models/absent: no such file or directory"):
        materialize("pvc://models/absent", tmp_path / "dest")
    (tmp_path / "models/empty").mkdir(parents=True)
    with pytest.raises(NotFoundError, match=r"^pvc://models/empty: .*empty"):
        materialize("pvc://models/empty", tmp_path / "dest")


def test_a_model_and_an_adapter_pass(tmp_path: Path) -> None:
    model = _model(tmp_path / "m", "config.json", "model.safetensors", "tokenizer.json")
    adapter = _model(tmp_path / "a", "adapter_config.json", "adapter_model.safetensors")
    assert check_model_dir(model) == model
    assert model_dir_problems(adapter) == []


def test_reports_everything_missing_at_once(tmp_path: Path) -> None:
    empty = _model(tmp_path / "e", "tokenizer.json")
    with pytest.raises(ModelDirError) as info:
        check_model_dir(empty, "s3://b/model")
    message = str(info.value)
    assert message.startswith("s3://b/model: not a usable model directory")
    assert "no config.json" in message
    assert "no weights" in message


def test_detects_corrupt_config_and_missing_shards(tmp_path: Path) -> None:
    model = _model(tmp_path / "m", "model-00001-of-00002.safetensors")
    (model / "config.json").write_text("{not json")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    problems = model_dir_problems(model)
    assert problems == [
        "config.json is not valid JSON",
        "model.safetensors.index.json lists shards that are missing: model-00002-of-00002.safetensors",
    ]
    assert model_dir_problems(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'} is not a directory"]


def test_a_revision_only_applies_to_hub_sources(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only to hf://"):
        materialize(tmp_path, tmp_path / "dest", revision="main")
