"""Admission checks for FineTunes: the same models as everywhere, plus what CEL cannot see.

``finetune_problems(document, old, secret_exists)`` returns every problem at once, each naming its field:
- every error of the pydantic models (types, ranges, cross-field rules, method ↔ data format, GPU needs);
- referenced Secrets must exist in the namespace (``credentials.s3Secret``, ``credentials.huggingFaceSecret``);
- resource sanity: the memory-backed ``/dev/shm`` counts against the memory limit, so it must fit in it;
- after the run started (its status has a phase past Pending), only ``spec.suspend`` may change.
The kopf webhook (``handlers.finetune``) refuses the request with these messages; with the webhook off, the
reconciler marks the resource Invalid with the model errors instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from stockpot_operator.api.document import DocumentError, parse_spec
from stockpot_operator.api.finetune import FineTuneSpec

_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1), "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "P": Decimal(10**15), "E": Decimal(10**18), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
    "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60), "m": Decimal("0.001"),
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
STARTED_PHASES = frozenset({"Queued", "Running", "Suspended", "Succeeded", "Failed"})


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("8Gi", "500M", "1.5") in base units."""
    match = _QUANTITY.match(text.strip())
    if match is None or match.group(2) not in _SUFFIX:
        raise ValueError(f"not a quantity: {text!r}")
    return Decimal(match.group(1)) * _SUFFIX[match.group(2)]


def _without_suspend(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (spec or {}).items() if k != "suspend"}


def finetune_problems(
    document: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    secret_exists: Callable[[str], bool],
) -> list[str]:
    """Every reason to refuse ``document`` (an empty list admits it)."""
    try:
        spec = parse_spec(document)
    except DocumentError as error:
        return [str(e) for e in error.errors]
    assert isinstance(spec, FineTuneSpec)
    problems: list[str] = []
    for field, secret in (
        ("spec.credentials.s3Secret", spec.credentials.s3_secret),
        ("spec.credentials.huggingFaceSecret", spec.credentials.hugging_face_secret),
    ):
        if secret and not secret_exists(secret):
            problems.append(f"{field}: Secret {secret!r} does not exist in this namespace — create it first")
    memory = spec.resources.memory
    if memory and quantity(spec.resources.shm_size) > quantity(memory):
        problems.append(
            f"spec.resources.shmSize: {spec.resources.shm_size} of memory-backed /dev/shm exceeds the pod's memory "
            f"limit {memory} — lower shmSize or raise memory"
        )
    if old is not None:
        started = ((old.get("status") or {}).get("phase")) in STARTED_PHASES
        if started and _without_suspend(old.get("spec")) != _without_suspend(document.get("spec")):
            problems.append(
                "spec: immutable once the run has started (only spec.suspend may change) — create a new FineTune"
            )
    return problems
