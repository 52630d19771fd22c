"""The validating webhook (loaded only when ``STOCKPOT_WEBHOOK_PORT`` is set: kopf refuses to start with
admission handlers but no webhook server)."""

from __future__ import annotations

from typing import Any

import kopf

from stockpot_operator.admission import finetune_problems
from stockpot_operator.api.kinds import GROUP, VERSION
from stockpot_operator.wiring import reconcilers


@kopf.on.validate(GROUP, VERSION, "finetunes", id="validate-finetune", operations=["CREATE", "UPDATE"])
def validate_finetune(body: kopf.Body, **kwargs: Any) -> None:
    """Refuse a FineTune with every problem at once (422), each naming its field."""
    namespace, old = str(body.metadata.namespace), kwargs.get("old")
    kube = reconcilers().finetune.kube
    problems = finetune_problems(dict(body), dict(old) if old else None, lambda s: kube.secret_exists(namespace, s))
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)
