"""Evaluation suites, scoring rules and thresholds: what decides whether a model is good enough."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import ConfigDict, Field

from .base import Problem, SpecModel, cel, cel_rules
from .model import Uri


class Scoring(StrEnum):
    EXACT = "exact"
    CONTAINS = "contains"
    REGEX = "regex"
    JSON_SCHEMA = "json-schema"
    TOOL_CALL = "tool-call"


class SuiteType(StrEnum):
    JSONL = "jsonl"
    BENCHMARK = "benchmark"
    JUDGE = "judge"


class JudgeConfig(SpecModel):
    """An OpenAI-compatible endpoint that grades answers against a rubric (score 1–10)."""

    endpoint: str = Field(pattern=r"^https?://\S+$", max_length=512, description="Base URL of the judge's /v1 API.")
    model: str = Field(max_length=255, description="Model name at the judge endpoint.")
    rubric: str = Field(
        default="Score the answer's correctness and helpfulness from 1 to 10.",
        max_length=8192,
        description="Instructions the judge grades by.",
    )
    api_key_secret: str | None = Field(
        default=None, max_length=253, description="Secret (key api-key) holding the judge's API key."
    )


class Suite(SpecModel):
    """One evaluation suite; its metrics are named <suite name>/<metric>."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel("self.type != 'jsonl' || has(self.uri)", "a jsonl suite needs uri", ".uri"),
            cel(
                "self.type != 'benchmark' || has(self.benchmark)",
                "a benchmark suite needs benchmark",
                ".benchmark",
            ),
            cel(
                "self.type != 'judge' || (has(self.judge) && has(self.uri))",
                "a judge suite needs judge and uri",
                ".judge",
            ),
        )
    )

    name: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9_\-]*[a-z0-9])?$",
        max_length=63,
        description="Suite name (a metric prefix).",
    )
    type: SuiteType = Field(default=SuiteType.JSONL, description="jsonl tasks, an lm-eval benchmark, or an LLM judge.")
    uri: Uri | None = Field(
        default=None,
        description="JSONL tasks: {prompt|messages, expected|schema|tool_call} per line (jsonl, judge).",
    )
    scoring: Scoring = Field(default=Scoring.EXACT, description="How a jsonl answer is scored against the expectation.")
    benchmark: str | None = Field(default=None, max_length=128, description="lm-eval task name (benchmark suites).")
    num_fewshot: int = Field(default=0, ge=0, le=64, description="Few-shot examples (benchmark suites).")
    limit: int | None = Field(default=None, ge=1, description="Evaluate at most this many tasks.")
    max_new_tokens: int = Field(default=128, ge=1, le=32_768, description="Generation budget per task.")
    judge: JudgeConfig | None = Field(default=None, description="Judge endpoint (judge suites).")

    def problems(self) -> Iterator[Problem]:
        if self.type == SuiteType.JSONL and self.uri is None:
            yield Problem(("uri",), "a jsonl suite needs uri")
        if self.type == SuiteType.BENCHMARK and self.benchmark is None:
            yield Problem(("benchmark",), "a benchmark suite needs benchmark (an lm-eval task name)")
        if self.type == SuiteType.JUDGE and (self.judge is None or self.uri is None):
            yield Problem(("judge",), "a judge suite needs judge and uri")


class Threshold(SpecModel):
    """A bound on one metric: an absolute minimum and/or the largest allowed drop below the baseline."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel("has(self.min) || has(self.maxRegression)", "set min, maxRegression or both", ".min")
        )
    )

    metric: str = Field(
        pattern=r"^[a-z0-9_\-]+/[a-z0-9_\-]+$",
        max_length=128,
        description="<suite>/<metric>, e.g. qa/accuracy.",
    )
    min: float | None = Field(default=None, description="The metric must be at least this.")
    max_regression: float | None = Field(
        default=None, ge=0.0, description="The metric may fall at most this much below the baseline's."
    )

    def problems(self) -> Iterator[Problem]:
        if self.min is None and self.max_regression is None:
            yield Problem(("min",), "set min, maxRegression or both")
