"""Read rows from local files, each row with the line (or index) it came from.

Supported: ``.jsonl``, ``.json`` (an array, or an object with a ``data`` array), ``.csv``, ``.parquet``
(pyarrow) and ``.txt``; each may end in ``.gz``. A ``.txt`` file holds one document per blank-line-separated
block and yields rows ``{"text": block}``. ``load_records`` reads, detects the format when asked and
normalises every row, raising one ``DataValidationError`` listing every bad row.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stockpot_runtime.spec.data import DataFormat

from .formats import Record, RowErrors, detect_format, parse_row
from .validation import DataValidationError, RowProblem


@dataclass(frozen=True)
class RawRow:
    """A row as read, with its 1-based line (JSONL/CSV/.txt) or 0-based index (JSON/Parquet)."""

    line: int
    value: Any


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _kind(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lstrip(".") if suffixes else ""


def _jsonl(path: Path, problems: list[RowProblem]) -> Iterator[RawRow]:
    with _open_text(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield RawRow(number, json.loads(line))
            except json.JSONDecodeError as e:
                problems.append(RowProblem(str(path), number, "row", f"invalid JSON: {e.msg}"))


def _json(path: Path) -> Iterator[RawRow]:
    with _open_text(path) as f:
        data = json.load(f)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataValidationError([RowProblem(str(path), 0, "file", 'must be a JSON array or {"data": [...]}')])
    yield from (RawRow(i, row) for i, row in enumerate(data))


def _csv(path: Path) -> Iterator[RawRow]:
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        for row in reader:
            yield RawRow(reader.line_num, dict(row))


def _parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    yield from (RawRow(i, row) for i, row in enumerate(table.to_pylist()))


def _txt(path: Path) -> Iterator[RawRow]:
    with _open_text(path) as f:
        block: list[str] = []
        start = 0
        for number, line in enumerate(f, start=1):
            if line.strip():
                start = start or number
                block.append(line)
            elif block:
                yield RawRow(start, {"text": "".join(block).rstrip("\n")})
                block, start = [], 0
        if block:
            yield RawRow(start, {"text": "".join(block).rstrip("\n")})


def read_rows(path: Path) -> list[RawRow]:
    """All rows of one file; unreadable JSONL lines raise ``DataValidationError`` (all of them listed)."""
    problems: list[RowProblem] = []
    kind = _kind(path)
    if kind == "jsonl":
        rows = list(_jsonl(path, problems))
    elif kind == "json":
        rows = list(_json(path))
    elif kind == "csv":
        rows = list(_csv(path))
    elif kind == "parquet":
        rows = list(_parquet(path))
    elif kind == "txt":
        rows = list(_txt(path))
    else:
        raise ValueError(f"{path}: unsupported file type {kind!r}; use jsonl, json, csv, parquet or txt")
    if problems:
        raise DataValidationError(problems)
    return rows


def data_files(path: Path) -> list[Path]:
    """The file itself, or every supported file under a directory, sorted."""
    if path.is_file():
        return [path]
    kinds = {"jsonl", "json", "csv", "parquet", "txt"}
    return sorted(p for p in path.rglob("*") if p.is_file() and _kind(p) in kinds)


def normalise_rows(path: str, rows: list[RawRow], fmt: DataFormat) -> list[Record]:
    """Parse every row; raises one ``DataValidationError`` with every bad row's problems."""
    records: list[Record] = []
    problems: list[RowProblem] = []
    for raw in rows:
        try:
            records.append(parse_row(fmt, raw.value))
        except RowErrors as errs:
            problems += [RowProblem(path, raw.line, name, problem) for name, problem in errs.errors]
    if problems:
        raise DataValidationError(problems)
    return records


def load_records(path: Path, fmt: DataFormat = DataFormat.AUTO) -> tuple[DataFormat, list[Record]]:
    """Read a file or directory of files, detect the format if ``auto``, and normalise every row."""
    files = data_files(path)
    if not files:
        raise ValueError(f"{path}: no data files found")
    per_file = [(f, read_rows(f)) for f in files]
    if fmt == DataFormat.AUTO:
        fmt = detect_format([r.value for _, rows in per_file for r in rows[:20]])
    records: list[Record] = []
    problems: list[RowProblem] = []
    for f, rows in per_file:
        try:
            records += normalise_rows(str(f), rows, fmt)
        except DataValidationError as e:
            problems += e.problems
    if problems:
        raise DataValidationError(problems)
    return fmt, records


def split_validation(records: Sequence[Record], fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Deterministic (train, validation) split holding out ``fraction`` of rows (at least one if fraction>0)."""
    if fraction <= 0 or len(records) < 2:
        return list(records), []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = min(len(records) - 1, max(1, round(len(records) * fraction)))
    held = set(order[:n_val])
    train = [r for i, r in enumerate(records) if i not in held]
    return train, [records[i] for i in sorted(held)]
