"""Publish the offline toy model and a synthetic dataset to a location, for demos and end-to-end tests.

``stockpot-runtime toy --model URI --data URI [--task add] [--rows 2000]`` builds the tiny random-weight Llama
and its tokenizer (no hub involved), commits it as an artifact (files first, ``manifest.json`` last) and writes
task rows as JSONL, so a FineTune can name both by URI like any other model and data.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stockpot_runtime.storage.manifest import ArtifactRef, commit_artifact, digest_files
from stockpot_runtime.storage.store import open_store
from stockpot_runtime.storage.uri import parse_uri
from stockpot_runtime.toy.model import save_toy_model
from stockpot_runtime.toy.tasks import Task, corpus, rows


@dataclass(frozen=True)
class Published:
    model: ArtifactRef
    data_uri: str
    data_digest: str
    rows: int


def _split_object_uri(uri: str) -> tuple[str, str]:
    """``s3://b/a/x.jsonl`` → (``s3://b/a``, ``x.jsonl``); works for paths and pvc:// too."""
    parse_uri(uri)  # rejects what is not a location, naming the accepted forms
    parent, _, name = uri.rstrip("/").rpartition("/")
    if not name.endswith(".jsonl"):
        raise ValueError(f"{uri}: the data location must name a .jsonl file")
    return parent, name


def publish(model_uri: str, data_uri: str, task: Task, count: int, seed: int = 0) -> Published:
    parent, name = _split_object_uri(data_uri)
    with tempfile.TemporaryDirectory(prefix="stockpot-toy-") as scratch:
        work = Path(scratch)
        model_dir = save_toy_model(work / "model", texts=corpus(), seed=seed)
        artifact = commit_artifact(
            model_dir, model_uri, {"baseModel": "toy://llama", "task": task.value, "seed": seed}, kind="model"
        )
        data_file = work / name
        data_file.write_text("".join(json.dumps(row) + "\n" for row in rows(task, count, seed=seed)), encoding="utf-8")
        open_store(parent).put_file(data_file, name)
        return Published(artifact, data_uri, digest_files([data_file]), count)
