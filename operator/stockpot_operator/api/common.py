"""Pieces shared by the four kinds: references, resources, credentials, output, status basics."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from stockpot_runtime.spec import Problem, SpecModel
from stockpot_runtime.spec.base import cel, cel_rules
from stockpot_runtime.spec.model import Uri

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=64)]
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ObjectName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]

OUTPUT_URI_PATTERN = r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?|pvc://[a-z0-9][a-z0-9\-]*(/\S*)?)$"


class ModelRef(SpecModel):
    """Exactly one of: a FineTune's artifact, an Export's artifact, or a URI."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "[has(self.fineTuneRef), has(self.exportRef), has(self.uri)].filter(x, x).size() == 1",
                "set exactly one of fineTuneRef, exportRef, uri",
            )
        )
    )

    fine_tune_ref: ObjectName | None = Field(default=None, description="Name of a FineTune in this namespace.")
    export_ref: ObjectName | None = Field(default=None, description="Name of an Export in this namespace.")
    uri: Uri | None = Field(default=None, description="A model location (hf://, s3://, pvc:// or a path).")
    trust_remote_code: bool = Field(default=False, description="Run code shipped with the model (uri only).")

    def problems(self) -> Iterator[Problem]:
        given = [
            n
            for n, v in (
                ("fineTuneRef", self.fine_tune_ref),
                ("exportRef", self.export_ref),
                ("uri", self.uri),
            )
            if v
        ]
        if len(given) != 1:
            yield Problem((), f"set exactly one of fineTuneRef, exportRef, uri (got {', '.join(given) or 'none'})")


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class Toleration(SpecModel):
    """A Kubernetes toleration, passed through to the pods."""

    key: str | None = Field(default=None, max_length=316, description="Taint key; empty with Exists matches all.")
    operator: TolerationOperator = Field(default=TolerationOperator.EQUAL, description="Exists or Equal.")
    value: str | None = Field(default=None, max_length=63, description="Taint value (Equal).")
    effect: TaintEffect | None = Field(
        default=None, description="NoSchedule, PreferNoSchedule or NoExecute; empty: all."
    )
    toleration_seconds: int | None = Field(default=None, description="How long a NoExecute taint is tolerated.")


class Resources(SpecModel):
    """What each pod asks of the cluster."""

    gpus: int = Field(default=1, ge=0, le=16, description="GPUs per pod (per node for multi-node runs); 0 runs on CPU.")
    gpu_resource: str = Field(
        default="nvidia.com/gpu",
        max_length=253,
        description="Extended resource name GPUs are requested under.",
    )
    cpu: Quantity | None = Field(default=None, description="CPU request and limit, e.g. '8'.")
    memory: Quantity | None = Field(default=None, description="Memory request and limit, e.g. '64Gi'.")
    shm_size: Quantity = Field(default="8Gi", description="Size of the memory-backed /dev/shm.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the pods must match.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Tolerations for tainted (GPU) nodes.")
    image: str | None = Field(
        default=None,
        max_length=512,
        description="Runtime image override; default: the operator's runtime image.",
    )


class Credentials(SpecModel):
    """Secrets the runtime reads credentials from; their values never enter the spec, status, logs or events."""

    s3_secret: ObjectName | None = Field(
        default=None,
        description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for s3:// locations.",
    )
    hugging_face_secret: ObjectName | None = Field(default=None, description="Secret with HF_TOKEN for hf:// models.")


class Output(SpecModel):
    """Where artifacts go: <uri>/<namespace>/<kind>/<name>/<uid>/."""

    uri: Annotated[str, StringConstraints(pattern=OUTPUT_URI_PATTERN, max_length=1024)] = Field(
        description="s3://bucket[/prefix] or pvc://claim[/path]."
    )
