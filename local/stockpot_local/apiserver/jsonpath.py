"""The JSONPath subset printer columns use: ``.a.b[0].c``, ``[*]`` and ``[?(@.type=="Ready")]`` (pure)."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z0-9_\-$/]+)"""
    r"""|\[(?P<index>-?\d+|\*)\]"""
    r"""|\[\?\(@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*(?P<fval>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\]"""
    r"""|\['(?P<qname>[^']+)'\]"""
)


def _lookup_dotted(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _step(values: list[Any], m: re.Match[str]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        name = m.group("name") or m.group("qname")
        if name is not None:
            if isinstance(value, dict) and name in value:
                out.append(value[name])
        elif m.group("index") is not None:
            if isinstance(value, list):
                if m.group("index") == "*":
                    out.extend(value)
                elif -len(value) <= int(m.group("index")) < len(value):
                    out.append(value[int(m.group("index"))])
        else:
            wanted = m.group("fval").strip("\"'")
            for item in value if isinstance(value, list) else []:
                got = _lookup_dotted(item, m.group("fpath"))
                text = str(got).lower() if isinstance(got, bool) else str(got)
                if (got is not None and text == wanted) == (m.group("op") == "=="):
                    out.append(item)
    return out


def evaluate(obj: Any, path: str) -> list[Any]:
    """All values ``path`` selects in ``obj`` (an invalid path selects nothing)."""
    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    if expr.startswith("$"):
        expr = expr[1:]
    values = [obj]
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            return []
        values = _step(values, m)
        pos = m.end()
    return values
