"""CRDs: registration, schema validation naming the field, defaults, pruning, CEL, status and scale."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from apiserver_samples import deployment, widget, widget_crd
from kubernetes import client

pytestmark = pytest.mark.integration


def create_widget(kube: Any, widgets: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = kube.custom.create_namespaced_custom_object(
        widgets.group, widgets.version, namespace, widgets.plural, body
    )
    return result


def rejection(kube: Any, widgets: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    path = f"/apis/{widgets.group}/{widgets.version}/namespaces/{namespace}/widgets"
    status, answer = kube.raw("POST", path, body)
    assert status == 422, answer
    assert answer["reason"] == "Invalid"
    result: dict[str, Any] = answer
    return result


def test_crd_is_established_and_discoverable(kube: Any, widgets: Any) -> None:
    crd = kube.extensions.read_custom_resource_definition(f"widgets.{widgets.group}")
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    resources = client.CustomObjectsApi(kube.api_client).get_api_resources(widgets.group, widgets.version)
    names = {r.name: r for r in resources.resources}
    assert names["widgets"].short_names == ["wdg"]
    assert names["widgets"].categories == ["stockpot-test"]
    assert {"widgets/status", "widgets/scale"} <= set(names)


def test_defaults_pruning_and_generation(kube: Any, widgets: Any, namespace: str) -> None:
    body = widget("w", widgets.group, size=2)
    body["spec"]["unknownField"] = "dropped"
    created = create_widget(kube, widgets, namespace, body)
    assert created["spec"] == {"size": 2, "color": "blue", "replicas": 1}
    assert created["metadata"]["generation"] == 1
    args = (widgets.group, widgets.version, namespace, widgets.plural, "w")
    relabeled = kube.custom.patch_namespaced_custom_object(*args, {"metadata": {"labels": {"a": "b"}}})
    assert relabeled["metadata"]["generation"] == 1
    resized = kube.custom.patch_namespaced_custom_object(*args, {"spec": {"size": 4}})
    assert resized["metadata"]["generation"] == 2


def test_schema_violations_name_the_field(kube: Any, widgets: Any, namespace: str) -> None:
    too_big = rejection(kube, widgets, namespace, widget("big", widgets.group, size=99))
    assert f'Widget.{widgets.group} "big" is invalid: spec.size' in too_big["message"]
    assert too_big["details"]["causes"][0]["field"] == "spec.size"
    body = widget("nosize", widgets.group)
    del body["spec"]["size"]
    missing = rejection(kube, widgets, namespace, body)
    assert "spec.size" in missing["message"]
    assert "Required value" in missing["message"]
    wrong_enum = rejection(kube, widgets, namespace, widget("pink", widgets.group, color="pink"))
    assert "spec.color" in wrong_enum["message"]


def test_cel_rules_and_transition_rules(kube: Any, widgets: Any, namespace: str) -> None:
    crossed = rejection(kube, widgets, namespace, widget("x", widgets.group, min=5, max=1))
    assert "min must not exceed max" in crossed["message"]
    assert crossed["details"]["causes"][0]["field"] == "spec"
    create_widget(kube, widgets, namespace, widget("owned", widgets.group, owner="alice"))
    args = (widgets.group, widgets.version, namespace, widgets.plural, "owned")
    with pytest.raises(client.ApiException) as changed:
        kube.custom.patch_namespaced_custom_object(*args, {"spec": {"owner": "bob"}})
    assert changed.value.status == 422
    assert "owner is immutable" in str(changed.value.body)
    assert "spec.owner" in str(changed.value.body)


def test_status_subresource_is_separate(kube: Any, widgets: Any, namespace: str) -> None:
    body = widget("s", widgets.group)
    body["status"] = {"phase": "Ignored"}
    created = create_widget(kube, widgets, namespace, body)
    assert "status" not in created
    args = (widgets.group, widgets.version, namespace, widgets.plural, "s")
    with_status = kube.custom.patch_namespaced_custom_object_status(
        *args, {"status": {"phase": "Ready"}, "spec": {"size": 9}}
    )
    assert with_status["status"]["phase"] == "Ready"
    assert with_status["spec"]["size"] == 3
    main = kube.custom.patch_namespaced_custom_object(*args, {"status": {"phase": "Nope"}, "spec": {"size": 5}})
    assert main["status"]["phase"] == "Ready"
    assert main["spec"]["size"] == 5


def test_scale_subresource_for_custom_resources_and_deployments(kube: Any, widgets: Any, namespace: str) -> None:
    create_widget(kube, widgets, namespace, widget("sc", widgets.group, replicas=2))
    args = (widgets.group, widgets.version, namespace, widgets.plural, "sc")
    kube.custom.patch_namespaced_custom_object_status(*args, {"status": {"replicas": 2, "selector": "app=sc"}})
    scale = kube.custom.get_namespaced_custom_object_scale(*args)
    assert scale["spec"]["replicas"] == 2
    assert scale["status"] == {"replicas": 2, "selector": "app=sc"}
    kube.custom.patch_namespaced_custom_object_scale(*args, {"spec": {"replicas": 4}})
    assert kube.custom.get_namespaced_custom_object(*args)["spec"]["replicas"] == 4

    kube.apps.create_namespaced_deployment(namespace, deployment("web", replicas=1))
    kube.apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 3}})
    assert kube.apps.read_namespaced_deployment("web", namespace).spec.replicas == 3
    status = {"status": {"replicas": 3, "readyReplicas": 3}}
    kube.apps.patch_namespaced_deployment_status("web", namespace, status)
    assert kube.apps.read_namespaced_deployment_scale("web", namespace).status.replicas == 3


def test_deleting_a_crd_stops_serving_it(kube: Any, namespace: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.stockpot.test"
    kube.extensions.create_custom_resource_definition(widget_crd(group))
    deadline = time.monotonic() + 30
    while True:
        try:
            kube.custom.list_namespaced_custom_object(group, "v1", namespace, "widgets")
            break
        except client.ApiException:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    kube.extensions.delete_custom_resource_definition(f"widgets.{group}")
    deadline = time.monotonic() + 60
    while True:
        status, _ = kube.raw("GET", f"/apis/{group}/v1/namespaces/{namespace}/widgets")
        if status == 404:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_crd_deletion_waits_for_custom_resource_finalizers(kube: Any, namespace: str) -> None:
    group = f"f{uuid.uuid4().hex[:8]}.stockpot.test"
    kube.extensions.create_custom_resource_definition(widget_crd(group))
    deadline = time.monotonic() + 30
    held = widget("held", group)
    held["metadata"]["finalizers"] = ["test.stockpot.dev/hold"]
    while True:
        try:
            kube.custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", held)
            break
        except client.ApiException:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    kube.extensions.delete_custom_resource_definition(f"widgets.{group}")
    args = (group, "v1", namespace, "widgets", "held")
    deadline = time.monotonic() + 30
    while not kube.custom.get_namespaced_custom_object(*args)["metadata"].get("deletionTimestamp"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert kube.extensions.read_custom_resource_definition(f"widgets.{group}").metadata.deletion_timestamp
    kube.custom.patch_namespaced_custom_object(*args, {"metadata": {"finalizers": None}})
    deadline = time.monotonic() + 60
    while True:
        status, _ = kube.raw("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")
        if status == 404:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)


def tightened(crd: dict[str, Any]) -> dict[str, Any]:
    """The Widget CRD with stricter rules: size at most 5 (schema), replicas at most 2 (CEL)."""
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["size"]["maximum"] = 5
    spec["properties"]["replicas"]["x-kubernetes-validations"] = [{"rule": "self <= 2", "message": "at most 2"}]
    return crd


def test_updates_ratchet_values_left_unchanged(kube: Any, namespace: str) -> None:
    group = f"r{uuid.uuid4().hex[:8]}.stockpot.test"
    crd = widget_crd(group)
    kube.extensions.create_custom_resource_definition(crd)
    deadline = time.monotonic() + 30
    while True:
        try:
            kube.custom.create_namespaced_custom_object(
                group, "v1", namespace, "widgets", widget("old", group, size=8, replicas=3, owner="alice")
            )
            break
        except client.ApiException:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    name = f"widgets.{group}"
    stricter = tightened(crd)
    stricter["metadata"]["resourceVersion"] = kube.extensions.read_custom_resource_definition(
        name
    ).metadata.resource_version
    kube.extensions.replace_custom_resource_definition(name, stricter)
    path = f"/apis/{group}/v1/namespaces/{namespace}/widgets"
    deadline = time.monotonic() + 30
    while True:  # creates are not ratcheted: a new object with the old values is refused
        status, answer = kube.raw("POST", path, widget("new", group, size=8, replicas=3))
        if status == 422:
            break
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    assert "spec.size" in answer["message"]
    try:
        args = (group, "v1", namespace, "widgets", "old")
        kube.custom.patch_namespaced_custom_object_status(*args, {"status": {"phase": "Ready"}})
        recolored = kube.custom.patch_namespaced_custom_object(*args, {"spec": {"color": "red"}})
        assert (recolored["spec"]["size"], recolored["spec"]["replicas"]) == (8, 3)
        for change, message in [
            ({"size": 7}, "spec.size in body should be less than or equal to 5"),
            ({"replicas": 4}, "at most 2"),
            ({"owner": "bob"}, "owner is immutable"),
        ]:
            with pytest.raises(client.ApiException) as refused:
                kube.custom.patch_namespaced_custom_object(*args, {"spec": change})
            assert refused.value.status == 422
            assert message in str(refused.value.body)
    finally:
        kube.extensions.delete_custom_resource_definition(name)


def scrape(kube: Any) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"{kube.server.url}/metrics") as response:
        text = response.read().decode()
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {series: float(value) for series, value in samples}


def test_request_metrics_count_each_verb(local_only: Any, widgets: Any, namespace: str) -> None:
    kube = local_only
    before = scrape(kube)
    create_widget(kube, widgets, namespace, widget("m", widgets.group))
    args = (widgets.group, widgets.version, namespace, widgets.plural)
    kube.custom.get_namespaced_custom_object(*args, "m")
    kube.custom.list_namespaced_custom_object(*args)
    kube.custom.patch_namespaced_custom_object_status(*args, "m", {"status": {"phase": "Ready"}})
    after = scrape(kube)
    labels = f'group="{widgets.group}",resource="widgets",subresource="{{}}",verb="{{}}",version="v1"'
    for code, subresource, verb in [
        ("201", "", "CREATE"),
        ("200", "", "GET"),
        ("200", "", "LIST"),
        ("200", "status", "PATCH"),
    ]:
        series = f'apiserver_request_total{{code="{code}",{labels.format(subresource, verb)}}}'
        assert after[series] - before.get(series, 0) == 1, series
        count = f"apiserver_request_duration_seconds_count{{{labels.format(subresource, verb)}}}"
        assert after[count] - before.get(count, 0) == 1, count
