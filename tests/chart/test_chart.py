"""The Helm chart, checked with the real helm binary and the real Kubernetes schemas."""

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from stockpot_local.tools import ensure_tool

pytestmark = pytest.mark.unit

CHART = Path(__file__).resolve().parents[2] / "charts" / "stockpot"


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_tool("helm")


def test_chart_lints(helm: Path) -> None:
    result = subprocess.run([helm, "lint", "--strict", CHART], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_objects_are_valid(helm: Path) -> None:
    rendered = subprocess.run(
        [helm, "template", "stockpot", CHART, "--include-crds", "--namespace", "stockpot-system"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = sorted(d["metadata"]["name"] for d in documents if d["kind"] == "CustomResourceDefinition")
    assert kinds == sorted(p.stem for p in (CHART.parent.parent / "crds").glob("*.yaml"))
    for document in documents:
        kubernetes_validate.validate(document, "1.33", strict=True)


def test_the_operator_is_deployed_with_least_privilege(helm: Path) -> None:
    rendered = subprocess.run(
        [helm, "template", "stockpot", CHART, "--namespace", "stockpot-system", "--set", "watchNamespaces={team-a}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documents = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}
    deployment = documents[("Deployment", "stockpot-operator")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["operator", "--namespace=team-a"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STOCKPOT_WEBHOOK_HOST"] == "stockpot-operator.stockpot-system.svc"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    rules = documents[("ClusterRole", "stockpot-operator")]["rules"]
    secrets = next(r for r in rules if r["resources"] == ["secrets"])
    assert secrets["verbs"] == ["get"]  # never list: the operator reads only the Secrets resources name
