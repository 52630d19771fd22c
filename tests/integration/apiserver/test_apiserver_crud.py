"""CRUD, patches, optimistic concurrency, discovery and validation through the official client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, NamedTuple

import pytest
from apiserver_samples import config_map, deployment, pod
from kubernetes import client

pytestmark = pytest.mark.integration


def test_discovery_lists_resources_with_subresources(kube: Any) -> None:
    core = {r.name: r for r in kube.core.get_api_resources().resources}
    assert core["pods"].namespaced
    assert "pods/log" in core
    assert "pods/status" in core
    assert "ns" in core["namespaces"].short_names
    apps = {r.name: r for r in kube.apps.get_api_resources().resources}
    assert apps["deployments/scale"].kind == "Scale"
    groups = {g.name for g in client.ApisApi(kube.api_client).get_api_versions().groups}
    assert {"apps", "batch", "coordination.k8s.io", "apiextensions.k8s.io", "rbac.authorization.k8s.io"} <= groups
    version = client.VersionApi(kube.api_client).get_code()
    assert version.major == "1"


def test_create_get_replace_and_stale_replace_conflicts(kube: Any, namespace: str) -> None:
    created = kube.core.create_namespaced_config_map(namespace, config_map("cm", k="v"))
    meta = created.metadata
    assert meta.uid
    assert meta.resource_version
    assert meta.creation_timestamp is not None
    fetched = kube.core.read_namespaced_config_map("cm", namespace)
    assert fetched.metadata.resource_version == meta.resource_version
    fetched.data["k"] = "w"
    replaced = kube.core.replace_namespaced_config_map("cm", namespace, fetched)
    assert replaced.data == {"k": "w"}
    assert int(replaced.metadata.resource_version) > int(meta.resource_version)
    with pytest.raises(client.ApiException) as stale:
        kube.core.replace_namespaced_config_map("cm", namespace, fetched)
    assert stale.value.status == 409
    with pytest.raises(client.ApiException) as exists:
        kube.core.create_namespaced_config_map(namespace, config_map("cm"))
    assert exists.value.status == 409


def test_replace_without_resource_version_is_unconditional(kube: Any, namespace: str) -> None:
    kube.core.create_namespaced_config_map(namespace, config_map("cm", k="v"))
    replaced = kube.core.replace_namespaced_config_map("cm", namespace, config_map("cm", k="x"))
    assert replaced.data == {"k": "x"}


def test_generate_name_and_missing_namespace(kube: Any, namespace: str) -> None:
    body = {"metadata": {"generateName": "gen-"}, "data": {}}
    created = kube.core.create_namespaced_config_map(namespace, body)
    assert created.metadata.name.startswith("gen-")
    assert len(created.metadata.name) > len("gen-")
    with pytest.raises(client.ApiException) as missing:
        kube.core.create_namespaced_config_map("no-such-namespace-x1", config_map("cm"))
    assert missing.value.status == 404


def test_unchanged_update_keeps_resource_version(kube: Any, namespace: str) -> None:
    created = kube.core.create_namespaced_config_map(namespace, config_map("cm", k="v"))
    patched = kube.core.patch_namespaced_config_map("cm", namespace, {"data": {"k": "v"}})
    assert patched.metadata.resource_version == created.metadata.resource_version


def test_json_patch_failing_test_op_is_422(kube: Any, namespace: str) -> None:
    created = kube.core.create_namespaced_config_map(namespace, config_map("cm", k="v"))
    rv = created.metadata.resource_version
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.test/f"]},
    ]
    patched = kube.core.patch_namespaced_config_map("cm", namespace, ops)
    assert patched.metadata.finalizers == ["x.test/f"]
    with pytest.raises(client.ApiException) as failed:
        kube.core.patch_namespaced_config_map("cm", namespace, ops)
    assert failed.value.status == 422
    kube.core.patch_namespaced_config_map("cm", namespace, [{"op": "remove", "path": "/metadata/finalizers"}])


def test_merge_patch_removes_keys_with_null(kube: Any, namespace: str) -> None:
    kube.core.create_namespaced_config_map(namespace, config_map("cm", a="1", b="2"))
    status, body = kube.raw(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/cm",
        {"data": {"a": None, "c": "3"}},
        {"Content-Type": "application/merge-patch+json"},
    )
    assert status == 200
    assert body["data"] == {"b": "2", "c": "3"}


def test_strategic_merge_patch_merges_containers_by_name(kube: Any, namespace: str) -> None:
    kube.apps.create_namespaced_deployment(namespace, deployment("web"))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx"}]}}}}
    patched = kube.apps.patch_namespaced_deployment("web", namespace, patch)
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"main", "side"}
    assert containers["main"].image == "nginx"
    assert containers["main"].env[0].name == "A"
    assert patched.metadata.generation == 2


def test_server_side_apply_creates_then_merges(kube: Any, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/applied?fieldManager=tests&force=true"
    headers = {"Content-Type": "application/apply-patch+yaml"}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}}
    status, created = kube.raw("PATCH", path, body, headers)
    assert status == 201
    assert created["data"] == {"a": "1"}
    body["data"] = {"a": "2"}
    status, applied = kube.raw("PATCH", path, body, headers)
    assert status == 200
    assert applied["data"]["a"] == "2"
    status, _ = kube.raw("PATCH", path.split("?", maxsplit=1)[0], body, headers)
    assert status == 422


def test_builtin_validation_names_the_field(kube: Any, namespace: str) -> None:
    bad = pod("bad")
    del bad["spec"]["containers"][0]["name"]
    status, body = kube.raw("POST", f"/api/v1/namespaces/{namespace}/pods", bad)
    assert status == 422
    assert body["reason"] == "Invalid"
    assert "spec.containers[0].name" in body["message"]
    assert any(c["field"] == "spec.containers[0].name" for c in body["details"]["causes"])


def test_unknown_fields_are_dropped_with_a_warning_or_rejected_when_strict(kube: Any, namespace: str) -> None:
    body = config_map("cm")
    body["bogus"] = 1
    status, created = kube.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert status == 201
    assert "bogus" not in created
    body["metadata"]["name"] = "cm2"
    path = f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation=Strict"
    status, rejected = kube.raw("POST", path, body)
    assert status == 400
    assert "bogus" in rejected["message"]


def test_errors_are_status_objects(kube: Any, namespace: str) -> None:
    status, body = kube.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps/absent")
    assert status == 404
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    status, body = kube.raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", ["not", "an", "object"])
    assert status == 400
    status, body = kube.raw("GET", "/apis/no.such.group/v1/things")
    assert status == 404


def test_cluster_wide_list_and_other_builtin_kinds(kube: Any, namespace: str) -> None:
    rbac: Any = client.RbacAuthorizationV1Api(kube.api_client)
    rbac.create_namespaced_role(
        namespace, {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    )
    batch: Any = client.BatchV1Api(kube.api_client)
    job = {
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }
    batch.create_namespaced_job(namespace, job)
    coordination: Any = client.CoordinationV1Api(kube.api_client)
    coordination.create_namespaced_lease(namespace, {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}})
    kube.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "s"}, "type": "Opaque", "stringData": {"a": "b"}}
    )
    jobs = batch.list_job_for_all_namespaces(field_selector=f"metadata.namespace={namespace}").items
    assert [j.metadata.name for j in jobs] == ["j"]
    secrets = kube.core.list_namespaced_secret(namespace, field_selector="type=Opaque").items
    assert [s.metadata.name for s in secrets] == ["s"]


def test_builtin_defaults_and_cross_field_rules(kube: Any, namespace: str) -> None:
    secret = kube.core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert secret.data == {"k": "dg=="}
    assert secret.type == "Opaque"
    batch: Any = client.BatchV1Api(kube.api_client)
    container = {"name": "c", "image": "busybox:1.36"}
    job: dict[str, Any] = {
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }
    created = batch.create_namespaced_job(namespace, job)
    assert created.spec.backoff_limit == 6
    assert created.spec.completions == 1
    uid_label = created.spec.selector.match_labels["batch.kubernetes.io/controller-uid"]
    assert uid_label == created.metadata.uid
    assert created.spec.template.metadata.labels["job-name"] == "j"
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    job["metadata"]["name"] = "always"
    job["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    status, body = kube.raw("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job)
    assert status == 422
    assert "spec.template.spec.restartPolicy" in body["message"]
    service = kube.core.create_namespaced_service(
        namespace, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert service.spec.cluster_ip
    assert service.spec.ports[0].target_port == 80
    assert service.spec.type == "ClusterIP"


class BadRequest(NamedTuple):
    method: str
    suffix: str
    body: bytes | None
    content_type: str
    expected: int


@pytest.mark.parametrize(
    "case",
    [
        BadRequest("PATCH", "/cm", b'{"op": "add"}', "application/json-patch+json", 400),
        BadRequest(
            "PATCH",
            "/cm",
            b'[{"op": "replace", "path": "/nope/deeper", "value": 1}]',
            "application/json-patch+json",
            422,
        ),
        BadRequest("PATCH", "/cm", b"{}", "text/plain", 415),
        BadRequest("PATCH", "/cm?fieldManager=t", b"data: [unclosed", "application/apply-patch+yaml", 400),
        BadRequest("POST", "", b"{not json", "application/json", 400),
        BadRequest("POST", "", b"\x0a\x00", "application/vnd.kubernetes.protobuf", 415),
        BadRequest("PUT", "/cm", b'{"metadata": {"name": "other"}}', "application/json", 400),
        BadRequest("PUT", "/cm", b'{"kind": "Secret", "metadata": {"name": "cm"}}', "application/json", 400),
        BadRequest("GET", "?labelSelector=a%20in%201", None, "application/json", 400),
        BadRequest("GET", "?limit=many", None, "application/json", 400),
        BadRequest("GET", "?watch=true&resourceVersion=abc", None, "application/json", 400),
        BadRequest("POST", "/cm", b"{}", "application/json", 405),
        BadRequest("DELETE", "/cm/status", None, "application/json", 404),
    ],
)
def test_bad_requests_get_status_errors(local_only: Any, namespace: str, case: BadRequest) -> None:
    """Malformed requests get the real API's 4xx ``Status``; none crashes the server."""
    local_only.core.create_namespaced_config_map(namespace, config_map("cm"))
    url = f"{local_only.server.url}/api/v1/namespaces/{namespace}/configmaps{case.suffix}"
    headers = {"Content-Type": case.content_type}
    request = urllib.request.Request(url, data=case.body, method=case.method, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request, timeout=10)
    assert failure.value.code == case.expected
    answer = json.loads(failure.value.read())
    assert answer["kind"] == "Status"
    assert answer["code"] == case.expected


def test_aggregated_discovery(kube: Any) -> None:
    accept = {"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"}
    status, core = kube.raw("GET", "/api", headers=accept)
    assert status == 200
    assert core["kind"] == "APIGroupDiscoveryList"
    (core_group,) = core["items"]
    pods = next(r for r in core_group["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced"
    assert {s["subresource"] for s in pods["subresources"]} >= {"status", "log"}
    status, groups = kube.raw("GET", "/apis", headers=accept)
    names = {g["metadata"]["name"] for g in groups["items"]}
    assert {"apps", "batch", "apiextensions.k8s.io"} <= names
