"""Training data: where it is, what shape its rows have, and how it becomes token sequences."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from pydantic import ConfigDict, Field

from .base import Problem, SpecModel, cel, cel_rules
from .model import Uri


class DataFormat(StrEnum):
    """Row formats. ``auto`` detects the format from the first rows' keys."""

    AUTO = "auto"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"
    CHATML = "chatml"
    DPO = "dpo"
    KTO = "kto"
    PLAINTEXT = "plaintext"
    TOOL_CALLING = "tool-calling"
    PRE_TOKENIZED = "pre-tokenized"


CONVERSATION_FORMATS = frozenset({DataFormat.ALPACA, DataFormat.SHAREGPT, DataFormat.CHATML, DataFormat.TOOL_CALLING})
NAMED_CHAT_TEMPLATES = ("chatml", "llama3", "qwen2.5", "mistral", "gemma", "phi")


class Packing(StrEnum):
    """How short examples share a sequence. Attention never crosses example boundaries."""

    NONE = "none"
    CONCAT = "concat"
    MULTIPACK = "multipack"


class DataSpec(SpecModel):
    """The training data and how it is tokenized."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!(has(self.eval) && has(self.valSplit))",
                "set either eval or valSplit, not both",
                ".valSplit",
            ),
            cel(
                "!has(self.chatTemplate) || !(self.format in ['plaintext', 'pre-tokenized'])",
                "this format has no conversations; remove chatTemplate",
                ".chatTemplate",
            ),
            cel(
                "self.packing == 'none' || !(self.format in ['dpo', 'kto'])",
                "packing applies to sft/pretrain data; set packing: none",
                ".packing",
            ),
        )
    )

    train: Uri = Field(
        description="Training data: a JSONL, JSON, CSV, Parquet or .txt file, or a prefix of such files."
    )
    eval: Uri | None = Field(
        default=None, description="Evaluation data; when absent, valSplit of the training rows is held out."
    )
    format: DataFormat = Field(default=DataFormat.AUTO, description="Row format; auto detects it from the rows.")
    val_split: float | None = Field(
        default=None,
        ge=0.0,
        le=0.5,
        description="Fraction of training rows held out for evaluation; default 0.1 when eval is not set.",
    )
    max_length: int = Field(default=2048, ge=64, le=1_048_576, description="Maximum sequence length in tokens.")
    chat_template: str | None = Field(
        default=None,
        max_length=65_536,
        description=(
            "Chat template: a name (chatml, llama3, qwen2.5, mistral, gemma, phi) or a Jinja string, rendered in a "
            "sandbox that cannot reach files. Unset: the tokenizer's own template."
        ),
    )
    train_on_responses_only: bool = Field(
        default=True,
        description="Compute the loss on assistant tokens only (token-exact masking of system, user and tool turns).",
    )
    packing: Packing = Field(
        default=Packing.NONE,
        description="none: one example per sequence; concat: greedy concatenation; multipack: as few bins as best-fit-decreasing and a minimum-bin-slack repack of its emptiest bins find.",
    )
    seed: int = Field(default=42, ge=0, le=2**32 - 1, description="Seed for the validation split and shuffling.")

    def problems(self) -> Iterator[Problem]:
        if self.eval is not None and self.val_split is not None:
            yield Problem(("valSplit",), "set either eval or valSplit, not both (valSplit holds out training rows)")
        if self.chat_template and self.format in (DataFormat.PLAINTEXT, DataFormat.PRE_TOKENIZED):
            yield Problem(("chatTemplate",), f"format {self.format} has no conversations; remove chatTemplate")
        if self.packing != Packing.NONE and self.format in (DataFormat.DPO, DataFormat.KTO):
            yield Problem(("packing",), f"packing applies to sft/pretrain data, not {self.format}; set packing: none")
        if self.chat_template and self.chat_template not in NAMED_CHAT_TEMPLATES and "{" not in self.chat_template:
            names = ", ".join(NAMED_CHAT_TEMPLATES)
            yield Problem(
                ("chatTemplate",),
                f"unknown template name {self.chat_template!r}; use one of {names} or Jinja",
            )

    @property
    def effective_val_split(self) -> float:
        """The held-out fraction actually used: none when an eval source is given, else valSplit or 0.1."""
        if self.eval is not None:
            return 0.0
        return 0.1 if self.val_split is None else self.val_split
