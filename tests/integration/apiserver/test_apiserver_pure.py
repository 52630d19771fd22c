"""Table tests for the API server's pure parts: selectors, JSONPath, patches, pruning, CEL, ratcheting, ages,
metrics."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stockpot_local.apiserver import cel, jsonpath, metrics, patch, selectors, semantics, structural, table
from stockpot_local.apiserver.errors import APIError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a in (1, 2),b", {"a": "2", "b": ""}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("!a", {"a": "1"}, False),
        ("x.io/k-1=v_2", {"x.io/k-1": "v_2"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    predicate = selectors.make_predicate(selector, None)
    assert predicate({"metadata": {"labels": labels}}) is expected


def test_bad_label_selector_is_a_bad_request() -> None:
    with pytest.raises(APIError) as err:
        selectors.parse_label_selector("a in 1")
    assert err.value.code == 400


def test_field_selectors_read_nested_fields() -> None:
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}}
    assert selectors.make_predicate(None, "involvedObject.kind=Pod,involvedObject.name=p")(event)
    assert not selectors.make_predicate(None, "involvedObject.name!=p")(event)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.size", [3]),
        (".spec.items[1].n", ["b"]),
        (".spec.items[*].n", ["a", "b"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        ("{.metadata.name}", ["x"]),
        (".spec.missing", []),
    ],
)
def test_jsonpath(path: str, expected: list[Any]) -> None:
    obj = {
        "metadata": {"name": "x"},
        "spec": {"size": 3, "items": [{"n": "a"}, {"n": "b"}]},
        "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]},
    }
    assert jsonpath.evaluate(obj, path) == expected


def test_strategic_merge_merges_keyed_lists_and_honours_delete() -> None:
    live = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}], "args": ["x"]}
    change = {"containers": [{"name": "a", "image": "2"}, {"name": "b", "$patch": "delete"}], "args": ["y"]}
    assert patch.strategic_merge(live, change) == {"containers": [{"name": "a", "image": "2"}], "args": ["y"]}


def test_strategic_merge_is_refused_for_custom_resources() -> None:
    with pytest.raises(APIError) as err:
        patch.patch_object(patch.STRATEGIC_PATCH, {}, {}, builtin=False)
    assert err.value.code == 415


def test_merge_patch_follows_rfc7386() -> None:
    assert patch.merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None}, "d": [2]}) == {
        "a": {"c": 2},
        "d": [2],
    }


def test_prune_and_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "default": 1},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
    }
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"}, "spec": {"zzz": 1, "free": {"q": 1}}, "top": 1}
    removed = structural.prune(obj, schema, root=True)
    structural.apply_defaults(obj, schema)
    assert sorted(removed) == ["spec.zzz", "top"]
    assert obj["spec"] == {"a": 1, "free": {"q": 1}}


def test_cel_rules_report_paths_and_skip_transition_rules_on_create() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [
                    {"rule": "self.lo <= self.hi", "messageExpression": "'lo ' + string(self.lo) + ' > hi'"}
                ],
                "properties": {
                    "lo": {"type": "integer"},
                    "hi": {"type": "integer"},
                    "name": {
                        "type": "string",
                        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}],
                    },
                },
            }
        },
    }
    bad = {"metadata": {}, "spec": {"lo": 3, "hi": 1, "name": "a"}}
    (cause,) = cel.cel_causes(bad, None, schema)
    assert cause.field == "spec"
    assert "lo 3 > hi" in cause.message
    renamed = {"metadata": {}, "spec": {"lo": 1, "hi": 1, "name": "b"}}
    (immutable,) = cel.cel_causes(renamed, {"metadata": {}, "spec": {"lo": 1, "hi": 1, "name": "a"}}, schema)
    assert immutable.field == "spec.name"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400, "3d"),
        (400 * 86400, "400d"),
    ],
)
def test_human_durations(seconds: int, text: str) -> None:
    assert table.human_duration(seconds) == text


def test_cel_evaluation_errors_reject_like_the_real_api() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.items.all(i, i > 0)", "message": "items must be positive"}],
            }
        },
    }
    (cause,) = cel.cel_causes({"metadata": {}, "spec": {}}, None, schema)
    assert cause.message == 'Invalid value: "object": no such key: items evaluating rule: items must be positive'


@pytest.mark.parametrize(
    ("obj", "fields"),
    [
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok.name-1"}}, []),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Upper"}}, ["metadata.name"]),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "with.dot"}}, ["metadata.name"]),
        ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:x"}}, []),
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"model": "hf://org/name"}}},
            ["metadata.labels"],
        ),
        ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": "x"}}}, []),
    ],
)
def test_metadata_syntax(obj: dict[str, Any], fields: list[str]) -> None:
    assert [c.field for c in semantics.metadata_causes(obj)] == fields


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "number", "minimum": 0, "exclusiveMinimum": True}, "should be greater than 0"),
        ({"type": "number", "minimum": 0}, "should be greater than or equal to 0"),
        ({"type": "number", "maximum": 1, "exclusiveMaximum": True}, "should be less than 1"),
    ],
)
def test_bound_messages_follow_exclusiveness(schema: dict[str, object], message: str) -> None:
    import jsonschema

    from stockpot_local.apiserver.structural import _cause

    error = next(jsonschema.Draft4Validator(schema).iter_errors(-1 if "minimum" in schema else 2))
    assert _cause(error).message.endswith(message)


# -- ratcheting (KEP-4008): on updates, failures in unchanged values are not reported ----------

RATCHET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.lo <= self.hi", "messageExpression": "'lo ' + string(self.lo) + ' > hi'"}
            ],
            "properties": {
                "lo": {"type": "integer"},
                "hi": {"type": "integer"},
                "size": {"type": "integer", "maximum": 10},
                "name": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}],
                },
                "revision": {
                    "type": "integer",
                    "x-kubernetes-validations": [{"rule": "self > oldSelf", "message": "revision must increase"}],
                },
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def custom(spec: dict[str, Any], phase: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"}, "spec": spec}
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def test_cel_rules_ratchet_unchanged_values_on_updates() -> None:
    stored = custom({"lo": 3, "hi": 1})  # valid once, invalid under today's rule
    assert cel.cel_causes(custom({"lo": 3, "hi": 1}, "Running"), stored, RATCHET_SCHEMA) == []
    (changed,) = cel.cel_causes(custom({"lo": 4, "hi": 1}), stored, RATCHET_SCHEMA)
    assert (changed.field, changed.message) == ("spec", 'Invalid value: "object": lo 4 > hi')
    (created,) = cel.cel_causes(custom({"lo": 3, "hi": 1}), None, RATCHET_SCHEMA)
    assert created.message == 'Invalid value: "object": lo 3 > hi'


def test_transition_rules_are_never_ratcheted() -> None:
    stored = custom({"lo": 1, "hi": 2, "name": "a", "revision": 1})
    (renamed,) = cel.cel_causes(custom({"lo": 1, "hi": 2, "name": "b", "revision": 2}), stored, RATCHET_SCHEMA)
    assert (renamed.field, renamed.message) == ("spec.name", 'Invalid value: "string": name is immutable')
    (kept,) = cel.cel_causes(custom({"lo": 1, "hi": 2, "name": "a", "revision": 1}, "Running"), stored, RATCHET_SCHEMA)
    assert (kept.field, kept.message) == ("spec.revision", 'Invalid value: "integer": revision must increase')
    assert cel.cel_causes(custom({"lo": 1, "hi": 2, "name": "a", "revision": 1}), None, RATCHET_SCHEMA) == []


def test_schema_violations_ratchet_unchanged_values_on_updates() -> None:
    stored = custom({"lo": 1, "hi": 2, "size": 99})
    assert structural.schema_causes(custom({"lo": 1, "hi": 3, "size": 99}), RATCHET_SCHEMA, stored) == []
    (changed,) = structural.schema_causes(custom({"lo": 1, "hi": 2, "size": 98}), RATCHET_SCHEMA, stored)
    assert changed.field == "spec.size"
    assert changed.message == "Invalid value: 98: spec.size in body should be less than or equal to 10"
    (created,) = structural.schema_causes(custom({"lo": 1, "hi": 2, "size": 99}), RATCHET_SCHEMA)
    assert created.field == "spec.size"


def test_a_value_of_another_type_is_a_change() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}}
    assert structural.schema_causes(custom({"n": True}), schema, custom({"n": 1})) != []


def named_items(list_type: str | None) -> dict[str, Any]:
    items: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "v": {"type": "string", "maxLength": 2}},
    }
    schema: dict[str, Any] = {"type": "array", "items": items}
    if list_type:
        schema["x-kubernetes-list-type"] = list_type
    if list_type == "map":
        schema["x-kubernetes-list-map-keys"] = ["name"]
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": {"items": schema}}}}


@pytest.mark.parametrize(
    ("list_type", "reported"),
    [
        ("map", []),  # items correlate by key: "a" kept its value, whatever its position
        (None, ["spec.items[1].v"]),  # by index: item 1 was "b", now "a"
        ("set", ["spec.items[1].v"]),  # set items do not correlate, and the list changed
        ("atomic", ["spec.items[1].v"]),
    ],
)
def test_list_items_correlate_by_list_type(list_type: str | None, reported: list[str]) -> None:
    old = custom({"items": [{"name": "a", "v": "too long"}, {"name": "b", "v": "ok"}]})
    new = custom({"items": [{"name": "b", "v": "no"}, {"name": "a", "v": "too long"}]})
    assert [c.field for c in structural.schema_causes(new, named_items(list_type), old)] == reported


def test_unchanged_lists_ratchet_whatever_their_list_type() -> None:
    for list_type in ("map", None, "set", "atomic"):
        old = custom({"items": [{"name": "a", "v": "too long"}]})
        assert structural.schema_causes(copy.deepcopy(old), named_items(list_type), old) == []


def test_transition_rules_see_map_list_items_by_key() -> None:
    schema = named_items("map")
    item_schema = schema["properties"]["spec"]["properties"]["items"]["items"]
    item_schema["x-kubernetes-validations"] = [{"rule": "self.v == oldSelf.v", "message": "v is immutable"}]
    old = custom({"items": [{"name": "a", "v": "1"}, {"name": "b", "v": "2"}]})
    reordered = custom({"items": [{"name": "b", "v": "2"}, {"name": "a", "v": "1"}]})
    assert cel.cel_causes(reordered, old, schema) == []
    (changed,) = cel.cel_causes(custom({"items": [{"name": "b", "v": "3"}]}), old, schema)
    assert changed.field == "spec.items[0]"


@pytest.mark.parametrize(
    ("method", "named", "watch", "content_type", "verb"),
    [
        ("GET", True, False, "", "GET"),
        ("GET", False, False, "", "LIST"),
        ("GET", False, True, "", "WATCH"),
        ("GET", True, True, "", "WATCH"),
        ("POST", False, False, "application/json", "CREATE"),
        ("PUT", True, False, "application/json", "UPDATE"),
        ("PATCH", True, False, "application/merge-patch+json", "PATCH"),
        ("PATCH", True, False, "application/apply-patch+yaml", "APPLY"),
        ("DELETE", True, False, "", "DELETE"),
        ("DELETE", False, False, "", "DELETECOLLECTION"),
    ],
)
def test_request_verbs_are_named_like_the_real_apiserver(
    method: str, named: bool, watch: bool, content_type: str, verb: str
) -> None:
    assert metrics.verb(method, named, watch, content_type) == verb


def test_request_metrics_render_as_prometheus_text() -> None:
    recorded = metrics.RequestMetrics()
    key = ("stockpot.dev", "finetunes", "status", "PATCH", "v1alpha1")
    recorded.observe(key, 200, 0.003)
    recorded.observe(key, 200, 0.2)
    text = recorded.render()
    labels = 'group="stockpot.dev",resource="finetunes",subresource="status",verb="PATCH",version="v1alpha1"'
    assert f'apiserver_request_total{{code="200",{labels}}} 2\n' in text
    assert f'apiserver_request_duration_seconds_bucket{{{labels},le="0.005"}} 1\n' in text
    assert f'apiserver_request_duration_seconds_bucket{{{labels},le="+Inf"}} 2\n' in text
    assert f"apiserver_request_duration_seconds_count{{{labels}}} 2\n" in text
    assert "# TYPE apiserver_request_duration_seconds histogram\n" in text
