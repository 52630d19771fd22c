"""Request metrics of the embedded API server, served as Prometheus text at ``GET /metrics``.

Named and labelled like the real kube-apiserver's (without its ``component``, ``scope`` and ``dry_run``
labels): ``apiserver_request_total{code,group,resource,subresource,verb,version}`` and the histogram
``apiserver_request_duration_seconds{group,resource,subresource,verb,version}``. Only requests for
resources are counted; a watch is counted when it ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

APPLY_PATCH = "application/apply-patch+yaml"
BUCKETS = (0.005, 0.025, 0.1, 0.4, 1.0, 5.0, 60.0)  # seconds; a subset of the real apiserver's
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
_LABELS = ("group", "resource", "subresource", "verb", "version")  # sorted, as Prometheus' Go client writes them

Key = tuple[str, str, str, str, str]  # the values of _LABELS


def verb(method: str, named: bool, watch: bool, content_type: str = "") -> str:
    """The verb the real apiserver reports for a request (its ``cleanVerb``)."""
    if method == "GET":
        return "WATCH" if watch else "GET" if named else "LIST"
    if method == "DELETE" and not named:
        return "DELETECOLLECTION"
    if method == "PATCH" and content_type == APPLY_PATCH:
        return "APPLY"
    return {"POST": "CREATE", "PUT": "UPDATE"}.get(method, method)


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
        self.total += seconds
        self.count += 1


@dataclass
class RequestMetrics:
    requests: Counter[tuple[Key, int]] = field(default_factory=Counter)
    durations: dict[Key, _Histogram] = field(default_factory=dict)

    def observe(self, key: Key, code: int, seconds: float) -> None:
        """Count one finished request; ``key`` holds group, resource, subresource, verb and version."""
        self.requests[key, code] += 1
        self.durations.setdefault(key, _Histogram()).observe(seconds)

    def render(self) -> str:
        lines = [
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, "
            "version, resource, subresource, and HTTP response code.",
            "# TYPE apiserver_request_total counter",
        ]
        for (key, code), count in sorted(self.requests.items()):
            lines.append(f"apiserver_request_total{_labels(key, code=str(code))} {count}")
        lines += [
            "# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, "
            "group, version, resource and subresource.",
            "# TYPE apiserver_request_duration_seconds histogram",
        ]
        name = "apiserver_request_duration_seconds"
        for key, histogram in sorted(self.durations.items()):
            for bound, count in zip(BUCKETS, histogram.buckets, strict=True):
                lines.append(f"{name}_bucket{_labels(key, le=f'{bound:g}')} {count}")
            lines.append(f"{name}_bucket{_labels(key, le='+Inf')} {histogram.count}")
            lines.append(f"{name}_sum{_labels(key)} {histogram.total!r}")
            lines.append(f"{name}_count{_labels(key)} {histogram.count}")
        return "\n".join(lines) + "\n"


def _labels(key: Key, code: str = "", le: str = "") -> str:
    """``{name="value",...}`` in name order, ``le`` last, as Prometheus' Go client writes them."""
    pairs = [("code", code)] if code else []
    pairs += zip(_LABELS, key, strict=True)
    pairs += [("le", le)] if le else []
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")
