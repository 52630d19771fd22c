"""EvalGate: score a model on suites against thresholds and a baseline; the verdict gates promotion."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import ConfigDict, Field

from stockpot_runtime.spec import Problem, RootSpec, SpecModel, StorageSpec, Suite, Threshold
from stockpot_runtime.spec.base import cel, cel_rules

from .common import Credentials, ModelRef, Output, Resources
from .status import ArtifactRef, StatusBase


class Baseline(SpecModel):
    """What regressions are measured against: another model (scored in the same run) or recorded scores."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel("has(self.model) != has(self.scores)", "set exactly one of model, scores"),
        )
    )

    model: ModelRef | None = Field(default=None, description="A model scored on the same suites in the same run.")
    scores: dict[str, float] | None = Field(default=None, description="Recorded scores by metric, e.g. qa/accuracy.")

    def problems(self) -> Iterator[Problem]:
        if (self.model is None) == (self.scores is None):
            yield Problem((), "set exactly one of model, scores")


class EvalResources(Resources):
    """Pod resources of an evaluation; CPU by default."""

    gpus: int = Field(default=0, ge=0, le=16, description="GPUs for the evaluation pod.")


class EvalGateSpec(RootSpec):
    """The model to judge, the suites, and the bar it must clear."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.thresholds) || self.thresholds.all(t, self.suites.exists(s, t.metric.startsWith(s.name + '/')))",
                "every threshold metric must start with a suite name: <suite>/<metric>",
                ".thresholds",
            ),
            cel(
                "has(self.baseline) || !has(self.thresholds) || self.thresholds.all(t, !has(t.maxRegression))",
                "maxRegression needs a baseline",
                ".thresholds",
            ),
            cel(
                "self.suites.all(s, self.suites.exists_one(o, o.name == s.name))",
                "suite names must be unique",
                ".suites",
            ),
        )
    )

    model: ModelRef = Field(description="The model under evaluation.")
    baseline: Baseline | None = Field(default=None, description="What maxRegression is measured against.")
    suites: list[Suite] = Field(min_length=1, max_length=64, description="Evaluation suites.")
    thresholds: list[Threshold] = Field(default_factory=list, max_length=256, description="Bounds the verdict checks.")
    output: Output = Field(description="Where the evaluation report is written.")
    storage: StorageSpec = Field(default_factory=StorageSpec, description="S3 endpoint settings.")
    credentials: Credentials = Field(default_factory=Credentials, description="Storage and hub credentials.")
    resources: EvalResources = Field(default_factory=EvalResources, description="Pod resources.")

    def problems(self) -> Iterator[Problem]:
        names = [suite.name for suite in self.suites]
        for index, name in enumerate(names):
            if names.index(name) != index:
                yield Problem(("suites", index, "name"), f"suite name {name!r} is used twice")
        for index, threshold in enumerate(self.thresholds):
            suite = threshold.metric.split("/", 1)[0]
            if suite not in names:
                yield Problem(("thresholds", index, "metric"), f"no suite named {suite!r}; suites: {', '.join(names)}")
            if threshold.max_regression is not None and self.baseline is None:
                yield Problem(("thresholds", index, "maxRegression"), "maxRegression needs a baseline")


class Verdict(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"


class EvalGatePhase(StrEnum):
    PENDING = "Pending"
    WAITING = "Waiting"
    RUNNING = "Running"
    PASSED = "Passed"
    FAILED = "Failed"
    ERROR = "Error"
    INVALID = "Invalid"


class ThresholdResult(SpecModel):
    """How one threshold fared."""

    metric: str = Field(description="<suite>/<metric>.")
    value: float | None = Field(default=None, description="The model's score.")
    baseline: float | None = Field(default=None, description="The baseline's score.")
    passed: bool = Field(description="Whether the bound held.")
    reason: str = Field(default="", description="Why it failed, if it did.")


class EvalGateStatus(StatusBase):
    """Observed state of an EvalGate."""

    verdict: Verdict | None = Field(default=None, description="Passed or Failed once evaluated.")
    scores: dict[str, float] = Field(default_factory=dict, description="Scores by <suite>/<metric>.")
    baseline_scores: dict[str, float] = Field(default_factory=dict, description="Baseline scores by metric.")
    thresholds: list[ThresholdResult] = Field(default_factory=list, description="Per-threshold outcome.")
    evaluated_model: ArtifactRef | None = Field(default=None, description="The model artifact the verdict is about.")
    report: ArtifactRef | None = Field(default=None, description="The committed evaluation report.")
