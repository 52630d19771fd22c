"""The CRDs: generated from the models, current in git, valid and structural."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stockpot_operator.api.kinds import KINDS
from stockpot_operator.builders.crd import crd
from stockpot_operator.crdgen import stale_files, write_all

pytestmark = pytest.mark.unit

CRDS = Path(__file__).resolve().parents[3] / "crds"


def test_committed_crds_are_current() -> None:
    assert stale_files(CRDS) == [], "run `make crds` and commit the result"


def test_generation_is_idempotent(tmp_path: Path) -> None:
    write_all(tmp_path)
    first = {p.name: p.read_text() for p in tmp_path.iterdir()}
    write_all(tmp_path)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == first
    assert stale_files(tmp_path) == []


def test_stale_detection_notices_an_edit(tmp_path: Path) -> None:
    write_all(tmp_path)
    victim = next(tmp_path.iterdir())
    victim.write_text(victim.read_text().replace("description", "descriptoin", 1))
    (tmp_path / "leftover.yaml").write_text("{}")
    assert stale_files(tmp_path) == sorted([victim.name, "leftover.yaml"])


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_is_a_valid_kubernetes_object(kind) -> None:
    document = yaml.safe_load(yaml.safe_dump(crd(kind)))
    kubernetes_validate.validate(document, "1.33", strict=True)


def non_structural(node: dict[str, Any], path: str = "") -> list[str]:
    """Paths breaking the structural-schema rules that matter: a type everywhere, no refs, no unions."""
    found = []
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        found.append(f"{path or '/'}: no type")
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "additionalProperties"):
        if forbidden in node and not (forbidden == "additionalProperties" and isinstance(node[forbidden], dict)):
            found.append(f"{path}: {forbidden}")
    for name, sub in node.get("properties", {}).items():
        found += non_structural(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += non_structural(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += non_structural(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_explained(kind) -> None:
    root = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert non_structural(root) == []
    assert undocumented(root) == [], "every field needs a description: it is the `kubectl explain` text"


def undocumented(node: dict[str, Any], path: str = "") -> list[str]:
    found = []
    for name, sub in node.get("properties", {}).items():
        if not sub.get("description"):
            found.append(f"{path}.{name}")
        found += undocumented(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += undocumented(node["items"], f"{path}[]")
    return found


def test_printer_columns_and_names() -> None:
    finetune = crd(KINDS[0])["spec"]
    columns = [c["name"] for c in finetune["versions"][0]["additionalPrinterColumns"]]
    assert {"Phase", "Progress", "Loss", "Age"} <= set(columns)
    assert finetune["names"]["categories"] == ["stockpot"]
    isvc = crd(KINDS[3])["spec"]["versions"][0]
    assert isvc["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"


def test_api_reference_is_current() -> None:
    from stockpot_operator.crdgen import reference_is_stale

    assert not reference_is_stale(CRDS.parent / "docs" / "api-reference.md"), "run `make crds` and commit the result"
