"""Watch semantics: resume without replay, selectors, bookmarks, 410 Gone; list pagination and selectors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from apiserver_samples import SUITE, config_map
from kubernetes import client, config, watch

from stockpot_local.apiserver import ThreadedAPIServer

pytestmark = pytest.mark.integration


def events(kube: Any, namespace: str, **params: Any) -> list[tuple[str, str]]:
    params.setdefault("label_selector", SUITE)
    watcher: Any = watch.Watch
    stream = watcher().stream(kube.core.list_namespaced_config_map, namespace, timeout_seconds=1, **params)
    return [(e["type"], e["object"].metadata.name) for e in stream]


def test_watch_resumes_after_list_without_replaying(kube: Any, namespace: str) -> None:
    kube.core.create_namespaced_config_map(namespace, config_map("before"))
    listed = kube.core.list_namespaced_config_map(namespace)
    kube.core.create_namespaced_config_map(namespace, config_map("after"))
    kube.core.patch_namespaced_config_map("before", namespace, {"data": {"x": "1"}})
    kube.core.delete_namespaced_config_map("after", namespace)
    seen = events(kube, namespace, resource_version=listed.metadata.resource_version)
    assert seen == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]


def test_watch_without_version_starts_with_current_objects(kube: Any, namespace: str) -> None:
    kube.core.create_namespaced_config_map(namespace, config_map("a"))
    kube.core.create_namespaced_config_map(namespace, config_map("b"))
    assert events(kube, namespace) == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_label_selector_turns_leaving_objects_into_deleted(kube: Any, namespace: str) -> None:
    start = kube.core.list_namespaced_config_map(namespace).metadata.resource_version
    kube.core.create_namespaced_config_map(namespace, config_map("a", labels={"team": "x"}))
    kube.core.create_namespaced_config_map(namespace, config_map("b", labels={"team": "y"}))
    kube.core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"team": "z"}}})
    seen = events(kube, namespace, resource_version=start, label_selector=f"{SUITE},team=x")
    assert seen == [("ADDED", "a"), ("DELETED", "a")]


def test_watch_sends_bookmarks_when_allowed(kube: Any, namespace: str) -> None:
    start = kube.core.list_namespaced_config_map(namespace).metadata.resource_version
    path = (
        f"/api/v1/namespaces/{namespace}/configmaps?watch=true&allowWatchBookmarks=true"
        f"&resourceVersion={start}&timeoutSeconds=2"
    )
    response = kube.api_client.rest_client.request("GET", kube.api_client.configuration.host + path)
    lines = [json.loads(line) for line in response.read().decode().splitlines() if line]
    bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
    if kube.server is not None:
        assert bookmarks
    assert all(int(b["object"]["metadata"]["resourceVersion"]) >= int(start) for b in bookmarks)


def test_watch_from_a_compacted_version_is_gone(tmp_path: Any) -> None:
    with ThreadedAPIServer(state_dir=tmp_path, event_window=5) as server:
        new_client: Any = config.new_client_from_config
        api = new_client(str(server.kubeconfig))
        core = client.CoreV1Api(api)
        start = core.list_namespaced_config_map("default").metadata.resource_version  # type: ignore[union-attr]
        for i in range(10):
            core.create_namespaced_config_map("default", config_map(f"cm{i}"))
        path = f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start}"
        response = api.rest_client.request("GET", api.configuration.host + path)
        (event,) = [json.loads(line) for line in response.read().decode().splitlines()]
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410
        api.close()


def test_list_selectors_and_pagination(kube: Any, namespace: str) -> None:
    for name, labels in [("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}), ("c", {"tier": "web"})]:
        kube.core.create_namespaced_config_map(namespace, config_map(name, labels=labels))

    def names(**params: Any) -> list[str]:
        items = kube.core.list_namespaced_config_map(namespace, **params).items
        return [c.metadata.name for c in items if c.metadata.name != "kube-root-ca.crt"]

    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier!=web") == ["b"]
    assert names(label_selector="tier in (db, web),env") == ["a"]
    assert names(label_selector="tier notin (web)") == ["b"]
    assert names(label_selector="!env") == ["b", "c"]
    assert names(field_selector="metadata.name!=b") == ["a", "c"]
    first = kube.core.list_namespaced_config_map(namespace, limit=2, label_selector=SUITE)
    assert [c.metadata.name for c in first.items] == ["a", "b"]
    rest = kube.core.list_namespaced_config_map(
        namespace, limit=2, label_selector=SUITE, _continue=first.metadata._continue
    )
    assert [c.metadata.name for c in rest.items] == ["c"]
    assert not rest.metadata._continue


def test_table_lists_and_table_watches(kube: Any, namespace: str) -> None:
    start = kube.core.list_namespaced_config_map(namespace).metadata.resource_version
    kube.core.create_namespaced_config_map(namespace, config_map("a"))
    kube.core.create_namespaced_config_map(namespace, config_map("b"))
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    status, listed = kube.raw("GET", f"/api/v1/namespaces/{namespace}/configmaps?labelSelector={SUITE}", headers=accept)
    assert status == 200
    assert listed["kind"] == "Table"
    assert listed["columnDefinitions"][0]["name"] == "Name"
    assert [row["cells"][0] for row in listed["rows"]] == ["a", "b"]
    path = f"/api/v1/namespaces/{namespace}/configmaps?watch=true&resourceVersion={start}&timeoutSeconds=1"
    rest: Any = kube.api_client.rest_client
    response = rest.request("GET", kube.api_client.configuration.host + path, headers=accept)
    tables = [json.loads(line)["object"] for line in response.read().decode().splitlines()]
    assert [t["kind"] for t in tables] == ["Table", "Table"]
    assert tables[0]["columnDefinitions"]
    assert [t["rows"][0]["cells"][0] for t in tables] == ["a", "b"]
