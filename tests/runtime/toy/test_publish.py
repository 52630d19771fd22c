"""`stockpot-runtime toy`: the toy model lands as a verified artifact and the rows as JSONL."""

import json
from pathlib import Path

import pytest

from stockpot_runtime import cli
from stockpot_runtime.data.readers import load_records
from stockpot_runtime.spec import DataFormat
from stockpot_runtime.storage.manifest import read_manifest, verify
from stockpot_runtime.storage.sources import check_model_dir

pytestmark = pytest.mark.runtime


def test_publish_writes_a_verified_model_and_parseable_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = tmp_path / "models" / "toy", tmp_path / "datasets" / "add.jsonl"
    assert cli.main(["toy", "--model", str(model), "--data", str(data), "--rows", "40"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 40
    manifest = read_manifest(str(model))
    assert {f["path"] for f in manifest["files"]} >= {"final/config.json", "final/model.safetensors"}
    verify(str(model))
    check_model_dir(model / "final")
    fmt, records = load_records(data)
    assert (fmt, len(records)) == (DataFormat.CHATML, 40)


def test_data_location_must_be_a_jsonl_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must name a \.jsonl file"):
        cli.main(["toy", "--model", str(tmp_path / "m"), "--data", str(tmp_path / "rows.csv")])
