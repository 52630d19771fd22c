import gzip
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stockpot_runtime.data.formats import Conversation, Text
from stockpot_runtime.data.readers import load_records, split_validation
from stockpot_runtime.data.validation import DataValidationError, RowProblem, format_problems
from stockpot_runtime.spec.data import DataFormat as F

pytestmark = pytest.mark.unit
ROW = {"instruction": "add 1 2", "output": "3"}


def test_jsonl_reports_every_bad_row_with_line_and_field(tmp_path: Any) -> None:
    path = tmp_path / "d.jsonl"
    lines = [ROW, {"instruction": "x"}, ROW, {"instruction": 5, "output": "y"}]
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    with pytest.raises(DataValidationError) as e:
        load_records(path, F.ALPACA)
    assert [str(p) for p in e.value.problems] == [
        f"{path}:2: output: missing",
        f"{path}:4: instruction: must be a string, got int",
    ]


def test_chatml_csv_and_parquet_bad_rows(tmp_path: Any) -> None:
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("instruction,output\nadd 1 2,3\n,4\nq,\n")
    with pytest.raises(DataValidationError) as e:
        load_records(csv_path)
    assert [(p.line, p.field) for p in e.value.problems] == [(3, "instruction"), (4, "output")]
    pq_path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "ok"}, {"text": ""}]), pq_path)
    with pytest.raises(DataValidationError) as e:
        load_records(pq_path)
    assert str(e.value.problems[0]) == f"{pq_path}:1: text: empty"


def test_json_gzip_and_txt(tmp_path: Any) -> None:
    path = tmp_path / "d.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"data": [ROW, ROW]}, f)
    fmt, records = load_records(path)
    assert fmt == F.ALPACA
    assert len(records) == 2
    assert isinstance(records[0], Conversation)
    txt = tmp_path / "d.txt"
    txt.write_text("first doc\nline two\n\n\nsecond doc\n")
    fmt, records = load_records(txt)
    assert fmt == F.PLAINTEXT
    assert records == [Text("first doc\nline two"), Text("second doc")]


def test_problem_list_is_capped() -> None:
    message = format_problems([RowProblem("f", i, "x", "bad") for i in range(25)], limit=20)
    assert "f:19: x: bad" in message
    assert "f:20: x" not in message
    assert "and 5 more" in message


def test_validation_split_is_deterministic_and_disjoint() -> None:
    records = [Text(str(i)) for i in range(100)]
    train, val = split_validation(records, 0.1, seed=7)
    assert len(val) == 10
    assert len(train) == 90
    assert split_validation(records, 0.1, seed=7) == (train, val)
    assert split_validation(records, 0.1, seed=8)[1] != val
    assert not set(map(id, train)) & set(map(id, val))
