"""The training method: which objective, and the hyperparameters that belong to it.

Names and defaults follow Soup where Soup has them (dpo_beta → preference.beta, num_generations →
grpo.numGenerations, …). Each method family has its own block; a block is accepted only with its tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import Field

from .base import Problem, SpecModel
from .data import DataFormat
from .model import ModelSource


class Task(StrEnum):
    SFT = "sft"
    PRETRAIN = "pretrain"
    DPO = "dpo"
    IPO = "ipo"
    SIMPO = "simpo"
    ORPO = "orpo"
    KTO = "kto"
    BCO = "bco"
    GRPO = "grpo"
    REWARD_MODEL = "reward_model"
    DISTILL = "distill"


PREFERENCE_TASKS = frozenset({Task.DPO, Task.IPO, Task.SIMPO, Task.ORPO, Task.BCO})
UNPAIRED_TASKS = frozenset({Task.KTO})

FORMATS_BY_TASK: dict[Task, frozenset[DataFormat]] = {
    Task.SFT: frozenset(
        {
            DataFormat.ALPACA,
            DataFormat.SHAREGPT,
            DataFormat.CHATML,
            DataFormat.TOOL_CALLING,
            DataFormat.PRE_TOKENIZED,
        }
    ),
    Task.PRETRAIN: frozenset({DataFormat.PLAINTEXT, DataFormat.PRE_TOKENIZED}),
    **{task: frozenset({DataFormat.DPO}) for task in PREFERENCE_TASKS},
    Task.REWARD_MODEL: frozenset({DataFormat.DPO}),
    Task.KTO: frozenset({DataFormat.KTO}),
    Task.GRPO: frozenset({DataFormat.ALPACA, DataFormat.CHATML, DataFormat.SHAREGPT}),
    Task.DISTILL: frozenset({DataFormat.ALPACA, DataFormat.SHAREGPT, DataFormat.CHATML, DataFormat.PLAINTEXT}),
}
"""Which row formats each task can train on (``auto`` is checked once the rows are read)."""


class PreferenceConfig(SpecModel):
    """Hyperparameters of the paired preference losses (dpo, ipo, simpo, orpo, bco)."""

    beta: float = Field(
        default=0.1,
        gt=0,
        description="DPO/BCO beta (KL strength), IPO tau, ORPO lambda (odds-ratio weight) or SimPO beta.",
    )
    simpo_gamma: float = Field(default=0.5, ge=0, description="SimPO target reward margin (simpo only).")
    cpo_alpha: float = Field(default=1.0, ge=0, description="Weight of the NLL term added to SimPO (simpo only).")
    label_smoothing: float = Field(
        default=0.0,
        ge=0.0,
        lt=0.5,
        description="Conservative-DPO label smoothing: assumed rate of flipped labels.",
    )
    max_prompt_length: int | None = Field(default=None, ge=1, description="Truncate prompts to this many tokens.")


class KtoConfig(SpecModel):
    """Hyperparameters of KTO (unpaired desirable/undesirable completions)."""

    beta: float = Field(default=0.1, gt=0, description="KTO beta — KL penalty coefficient.")
    desirable_weight: float = Field(default=1.0, gt=0, description="Loss weight of desirable (label true) completions.")
    undesirable_weight: float = Field(
        default=1.0, gt=0, description="Loss weight of undesirable (label false) completions."
    )


class RewardName(StrEnum):
    ACCURACY = "accuracy"
    FORMAT = "format"
    MATH = "math"
    JSON_SCHEMA = "json-schema"
    CODE = "code"


class Reward(SpecModel):
    """One reward function for GRPO; the total reward is the weighted sum."""

    name: RewardName = Field(
        description=(
            "accuracy: completion matches the row's answer; format: follows <think>…</think><answer>…</answer>; "
            "math: verifiable numeric answer; json-schema: output is JSON valid against schema; code: user Python "
            "code (needs allowUserRewardCode)."
        )
    )
    weight: float = Field(default=1.0, description="Weight of this reward in the sum.")
    json_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema the completion must satisfy (json-schema reward only).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    code: str | None = Field(
        default=None,
        max_length=65_536,
        description=(
            "Python source defining reward(prompt: str, completion: str, row: dict) -> float; run in a sandboxed "
            "subprocess with time and memory limits (code reward only)."
        ),
    )

    def problems(self) -> Iterator[Problem]:
        if (self.name == RewardName.JSON_SCHEMA) != (self.json_schema is not None):
            yield Problem(("jsonSchema",), "jsonSchema is required by, and only allowed with, the json-schema reward")
        if (self.name == RewardName.CODE) != (self.code is not None):
            yield Problem(("code",), "code is required by, and only allowed with, the code reward")


class GrpoConfig(SpecModel):
    """Hyperparameters of GRPO (group-relative policy optimisation with verifiable rewards)."""

    num_generations: int = Field(default=4, ge=2, le=64, description="Completions sampled per prompt.")
    beta: float = Field(default=0.1, ge=0.0, description="KL penalty towards the reference model; 0 disables it.")
    max_completion_length: int = Field(default=256, ge=1, description="Maximum tokens per sampled completion.")
    temperature: float = Field(default=1.0, gt=0.0, le=2.0, description="Sampling temperature for completions.")
    rewards: list[Reward] = Field(
        default_factory=lambda: [Reward(name=RewardName.ACCURACY)],
        min_length=1,
        description="Reward functions, summed with their weights.",
    )
    allow_user_reward_code: bool = Field(
        default=False,
        description="Permit rewards of kind code. Off by default: user code is a security decision.",
    )
    reward_timeout_seconds: float = Field(
        default=5.0, gt=0, le=300, description="Wall-clock limit per code reward call."
    )
    reward_memory_mb: int = Field(default=512, ge=64, le=65_536, description="Memory limit of the code reward sandbox.")

    def problems(self) -> Iterator[Problem]:
        for index, reward in enumerate(self.rewards):
            if reward.name == RewardName.CODE and not self.allow_user_reward_code:
                yield Problem(
                    ("rewards", index, "name"),
                    "code rewards run user code: set allowUserRewardCode: true to permit them",
                )


class Divergence(StrEnum):
    FORWARD_KL = "forward_kl"
    REVERSE_KL = "reverse_kl"
    JS = "js"


class DistillConfig(SpecModel):
    """Knowledge distillation from a frozen teacher."""

    teacher: ModelSource = Field(description="The teacher model (shares the student's tokenizer).")
    temperature: float = Field(
        default=2.0, ge=0.05, le=100.0, description="Softmax temperature on teacher and student logits."
    )
    alpha: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the distillation loss; 1 - alpha weighs the usual LM loss.",
    )
    divergence: Divergence = Field(default=Divergence.FORWARD_KL, description="forward_kl, reverse_kl or js.")


FAMILY_BLOCKS: dict[str, frozenset[Task]] = {
    "preference": PREFERENCE_TASKS,
    "kto": UNPAIRED_TASKS,
    "grpo": frozenset({Task.GRPO}),
    "distill": frozenset({Task.DISTILL}),
}


class MethodSpec(SpecModel):
    """The training objective and its hyperparameters."""

    task: Task = Field(default=Task.SFT, description="Objective: " + ", ".join(t.value for t in Task) + ".")
    preference: PreferenceConfig | None = Field(default=None, description="dpo, ipo, simpo, orpo and bco settings.")
    kto: KtoConfig | None = Field(default=None, description="kto settings.")
    grpo: GrpoConfig | None = Field(default=None, description="grpo settings.")
    distill: DistillConfig | None = Field(default=None, description="distill settings (teacher required).")

    def problems(self) -> Iterator[Problem]:
        for block, tasks in FAMILY_BLOCKS.items():
            if getattr(self, block) is not None and self.task not in tasks:
                allowed = ", ".join(sorted(t.value for t in tasks))
                yield Problem((block,), f"only valid with task {allowed}; task is {self.task}")
        if self.task == Task.DISTILL and self.distill is None:
            yield Problem(("distill",), "task distill needs distill.teacher")

    def resolved_preference(self) -> PreferenceConfig:
        return self.preference or PreferenceConfig()

    def resolved_kto(self) -> KtoConfig:
        return self.kto or KtoConfig()

    def resolved_grpo(self) -> GrpoConfig:
        return self.grpo or GrpoConfig()
