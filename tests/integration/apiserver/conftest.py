"""Fixtures of the API conformance suite (the shared `kube`/`namespace` fixtures are in ../conftest.py)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The suite's helper modules (apiserver_samples) sit next to this file; pytest runs in importlib mode.
sys.path.insert(0, str(Path(__file__).parent))


@dataclass(frozen=True)
class WidgetKind:
    group: str
    version: str = "v1"
    plural: str = "widgets"


@pytest.fixture(scope="session")
def widgets(kube: Any) -> Iterator[WidgetKind]:
    """The sample ``Widget`` CRD, registered once per session under a unique group."""
    import time

    from apiserver_samples import widget_crd

    group = f"w{uuid.uuid4().hex[:8]}.stockpot.test"
    kube.extensions.create_custom_resource_definition(widget_crd(group))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = kube.extensions.read_custom_resource_definition(f"widgets.{group}")
        conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
        if conditions.get("Established") == "True":
            break
        time.sleep(0.2)
    yield WidgetKind(group)
    kube.extensions.delete_custom_resource_definition(f"widgets.{group}")
