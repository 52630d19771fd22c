"""Status writes as merge patches: only what changed, removed fields as null."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def status_patch(old: Obj, new: Obj) -> Obj:
    """The top-level merge patch turning status `old` into `new`; empty when nothing changed."""
    patch: Obj = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch
