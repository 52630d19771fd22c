from pathlib import Path

import pytest

from stockpot_runtime.storage.uri import (
    HubLocation,
    LocalLocation,
    PvcLocation,
    S3Location,
    join,
    local_path,
    parse_uri,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://models/base/llama", S3Location("models", "base/llama")),
        ("s3://models", S3Location("models", "")),
        ("s3://models/base//llama/", S3Location("models", "base/llama")),
        ("hf://Qwen/Qwen2.5-0.5B", HubLocation("Qwen/Qwen2.5-0.5B")),
        ("hf://org/name@v1.0", HubLocation("org/name", "v1.0")),
        ("file:///data/x", LocalLocation(Path("/data/x"))),
        ("/abs/path", LocalLocation(Path("/abs/path"))),
        ("rel/path", LocalLocation(Path("rel/path"))),
    ],
)
def test_parses_each_form(uri: str, expected: object) -> None:
    assert parse_uri(uri) == expected


def test_pvc_root_comes_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKPOT_PVC_ROOT", "/volumes")
    loc = parse_uri("pvc://models/llama/v1")
    assert loc == PvcLocation("models", "llama/v1", Path("/volumes"))
    assert isinstance(loc, PvcLocation)
    assert loc.path == Path("/volumes/models/llama/v1")


def test_pvc_root_defaults_to_mnt_pvc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKPOT_PVC_ROOT", raising=False)
    assert local_path("pvc://data") == Path("/mnt/pvc/data")


@pytest.mark.parametrize(
    "uri",
    [
        "s3://mo/x",
        "s3://Bad_Bucket/x",
        "hf://only-one-part",
        "hf://a/b/c",
        "hf://a/b@",
        "gs://bucket/x",
        "pvc://Claim/x",
        "file://relative",
        "s3://b-ok/../etc",
        "",
    ],
)
def test_rejects_with_uri_and_accepted_forms(uri: str) -> None:
    with pytest.raises(ValueError, match="accepted forms") as info:
        parse_uri(uri)
    assert repr(uri) in str(info.value)


@pytest.mark.parametrize(
    "uri", ["s3://models/base/llama", "s3://models", "hf://org/name@main", "pvc://claim/a/b", "/abs/x"]
)
def test_str_round_trips(uri: str) -> None:
    assert str(parse_uri(uri)) == uri
    assert parse_uri(str(parse_uri(uri))) == parse_uri(uri)


def test_join_appends_segments() -> None:
    assert str(join("s3://b-1/ns/FineTune", "x/uid", "final/")) == "s3://b-1/ns/FineTune/x/uid/final"
    assert str(join("s3://bucket", "a")) == "s3://bucket/a"
    assert join("/tmp/a", "b/c") == LocalLocation(Path("/tmp/a/b/c"))
    assert str(join("pvc://claim", "x", "y")) == "pvc://claim/x/y"
    assert join("s3://bucket/a") == S3Location("bucket", "a")


def test_join_refuses_hub_and_dot_segments() -> None:
    with pytest.raises(ValueError, match="not a prefix"):
        join("hf://org/name", "x")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        join("s3://bucket/a", "../b")


def test_local_path_is_none_for_remote() -> None:
    assert local_path("s3://bucket/a") is None
    assert local_path("hf://org/name") is None
