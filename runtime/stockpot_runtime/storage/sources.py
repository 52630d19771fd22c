"""Materialize any source (s3 object or prefix, hub repository, pvc or local path) as a local path.

``check_model_dir`` then tells whether a directory holds a loadable model or adapter, and what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelDirError, NotFoundError
from .hub import MODEL_FILE_PATTERNS, download_hub
from .s3 import S3Store
from .uri import HubLocation, S3Location, UriLike, parse_uri

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "adapter_model.bin", "*.gguf")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def materialize(
    uri: UriLike,
    dest_dir: Path,
    *,
    hub_patterns: tuple[str, ...] = MODEL_FILE_PATTERNS,
    revision: str | None = None,
) -> Path:
    """A local path holding the source's content.

    pvc:// and local paths are used in place (no copy). An s3:// key that names an object is downloaded to
    ``dest_dir/<basename>``; otherwise the key is a prefix and its objects are downloaded under ``dest_dir``
    (files already there with the same size are kept). hf:// repositories are downloaded into ``dest_dir``
    (``revision``, if given, overrides the URI's ``@revision``; it is an error for other sources).
    """
    loc = parse_uri(uri)
    if revision and not isinstance(loc, HubLocation):
        raise ValueError(f"{loc}: a revision applies only to hf:// sources")
    if isinstance(loc, S3Location):
        return _materialize_s3(loc, dest_dir)
    if isinstance(loc, HubLocation):
        return download_hub(loc, dest_dir, allow_patterns=hub_patterns, revision=revision)
    if not loc.path.exists():
        raise NotFoundError(str(loc), f"no such file or directory ({loc.path}) — check the path and the volume mount")
    if loc.path.is_dir() and not any(loc.path.iterdir()):
        raise NotFoundError(str(loc), f"the directory {loc.path} is empty")
    return loc.path


def _materialize_s3(loc: S3Location, dest_dir: Path) -> Path:
    store = S3Store.from_env(S3Location(loc.bucket))
    if loc.key and store.exists(loc.key):
        return store.get_file(loc.key, dest_dir / loc.key.rsplit("/", 1)[-1])
    if not store.list(loc.key):
        raise NotFoundError(str(loc), "no object and no objects under this prefix — check the URI")
    store.get_dir(loc.key, dest_dir)
    return dest_dir


def model_dir_problems(path: Path) -> list[str]:
    """What keeps ``path`` from being a model (or adapter) directory; empty when it looks loadable."""
    if not path.is_dir():
        return [f"{path} is not a directory"]
    problems = []
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        problems.append("no config.json (model) or adapter_config.json (adapter)")
    for name in ("config.json", "adapter_config.json", *INDEX_FILES):
        if (path / name).is_file() and _json_problem(path / name):
            problems.append(f"{name} is not valid JSON")
    if not any(next(path.glob(pattern), None) for pattern in WEIGHT_PATTERNS):
        problems.append("no weights (*.safetensors, pytorch_model*.bin, adapter_model.bin or *.gguf)")
    problems.extend(_missing_shards(path))
    return problems


def check_model_dir(path: Path, uri: str | None = None) -> Path:
    """Return ``path`` if it holds a model or adapter; otherwise ModelDirError listing what is missing."""
    problems = model_dir_problems(path)
    if problems:
        raise ModelDirError(uri or str(path), "not a usable model directory: " + "; ".join(problems))
    return path


def _json_problem(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return True
    return False


def _missing_shards(path: Path) -> list[str]:
    missing = []
    for index_name in INDEX_FILES:
        index = path / index_name
        if not index.is_file() or _json_problem(index):
            continue
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        absent = [shard for shard in shards if not (path / str(shard)).is_file()]
        if absent:
            missing.append(f"{index_name} lists shards that are missing: {', '.join(absent)}")
    return missing
