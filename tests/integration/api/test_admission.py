"""The generated CRDs at a real admission path: examples are accepted, and what the CRD can catch is rejected
with the field named — schema and CEL evaluated by the API server (embedded, or a real one via make e2e-cluster)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "docs" / "examples").glob("*.yaml"))
CASES: list[dict[str, Any]] = yaml.safe_load((REPO / "tests" / "unit" / "api" / "bad_resources.yaml").read_text())
PLURALS = {
    "FineTune": "finetunes",
    "Export": "exports",
    "EvalGate": "evalgates",
    "InferenceService": "inferenceservices",
}


@pytest.fixture(scope="module")
def stockpot_crds(kube: Any) -> None:
    for path in sorted((REPO / "crds").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        try:
            kube.extensions.create_custom_resource_definition(document)
        except client.ApiException as error:
            if error.status != 409:
                raise
            current = kube.extensions.read_custom_resource_definition(document["metadata"]["name"])
            document["metadata"]["resourceVersion"] = current.metadata.resource_version
            kube.extensions.replace_custom_resource_definition(document["metadata"]["name"], document)
    deadline = time.monotonic() + 30
    for plural in PLURALS.values():
        while time.monotonic() < deadline:
            crd = kube.extensions.read_custom_resource_definition(f"{plural}.stockpot.dev")
            if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
                break
            time.sleep(0.2)


def create(kube: Any, namespace: str, document: dict[str, Any]) -> dict[str, Any]:
    return kube.custom.create_namespaced_custom_object(
        "stockpot.dev", "v1alpha1", namespace, PLURALS[document["kind"]], document
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_admitted_and_defaulted(kube: Any, namespace: str, stockpot_crds: None, path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    created = create(kube, namespace, document)
    if document["kind"] == "FineTune":
        # Server-side defaults come from the same models as the operator's.
        assert created["spec"]["training"]["scheduler"] == "cosine"
        assert created["spec"]["checkpoint"]["keep"] >= 1


@pytest.mark.parametrize("case", [c for c in CASES if c["crd"] == "rejects"], ids=lambda c: c["case"])
def test_crd_rejects_naming_the_field(kube: Any, namespace: str, stockpot_crds: None, case: dict[str, Any]) -> None:
    with pytest.raises(client.ApiException) as caught:
        create(kube, namespace, case["resource"])
    assert caught.value.status == 422, caught.value.body
    assert case["field"].split("[")[0] in caught.value.body, caught.value.body
