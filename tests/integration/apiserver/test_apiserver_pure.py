"""Table tests for the API server's pure parts: selectors, JSONPath, patches, pruning, CEL, ages."""

from __future__ import annotations

from typing import Any

import pytest

from stockpot_local.apiserver import cel, jsonpath, patch, selectors, semantics, structural, table
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
