"""GRPO's rewards: verifiable checks of a completion against its row, and sandboxed user code.

API:

- ``RewardScorer(config, rewards=None)``: checks the rewards once (schemas, permission, code loads) and owns the
  code sandboxes. ``columns(prompts, completions, rows) -> dict[str, list[float]]`` gives each reward's
  unweighted scores, keyed by reward name (``json-schema_2`` for the second reward of a name);
  ``total(columns) -> list[float]`` their weighted sum per completion; ``score(...)`` both in one;
  ``close()`` stops the sandboxes (also a context manager).
- ``reward_columns(rewards, config, prompts, completions, rows)`` and ``score_completions(...)``: one-shot
  versions (a code reward starts and stops its sandbox per call).
- The built-in rewards as functions: ``accuracy_reward``, ``format_reward``, ``math_reward``,
  ``json_schema_reward``.

Every reward scores in [0, 1]:

- ``accuracy``: the answer (inside ``<answer>…</answer>`` when present, else the whole completion) equals the
  reference answer, ignoring case and runs of whitespace.
- ``format``: 1 for ``<think>…</think> <answer>…</answer>`` (nothing around), 0.5 for an ``<answer>`` block
  alone, else 0.
- ``math``: the final number (in ``<answer>``, else in the last ``\\boxed{…}``, else the last in the text)
  equals the reference's within a relative 1e-6: integers, decimals, negatives, ``1,000``, ``3/4`` and
  ``\\frac{3}{4}``, parsed into exact fractions, never evaluated.
- ``json-schema``: the answer (a fenced ```json block in it is unwrapped) is JSON valid against the schema
  (Draft 2020-12): 1; JSON but invalid: 0.5; not JSON: 0.
- ``code``: the user's ``reward(prompt, completion, row)`` in ``sandbox.RewardSandbox`` (needs
  ``allowUserRewardCode``), clamped to [0, 1]; a call that fails, times out or returns a non-finite number
  scores 0 and is counted in a warning.

The reference answer is the row's ``answer``, else ``solution``, else the content of its last assistant
message; a row without one is a data error (``MissingReferenceError``).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from stockpot_runtime.spec.method import GrpoConfig, Reward, RewardName

from .sandbox import RewardSandbox

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
Column = Callable[[Sequence[str], Sequence[str], Sequence[Row]], list[float]]
"""Scores of one reward for a batch: ``(prompts, completions, rows) -> [score per completion]``."""

REFERENCE_KEYS = ("answer", "solution")
RELATIVE_TOLERANCE = Fraction(1, 10**6)

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK_ANSWER = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_FENCE = re.compile(r"```(?:json)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_FRAC = re.compile(r"\\[dt]?frac\{\s*(-?[\d.,]+)\s*\}\{\s*(-?[\d.,]+)\s*\}")
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+)?")
_BOXED = "\\boxed{"


class MissingReferenceError(ValueError):
    """A row has no reference answer (``answer``, ``solution`` or an assistant message) for a reward to check."""


class UserRewardCodeNotAllowedError(PermissionError):
    """A code reward is configured but ``allowUserRewardCode`` is not set."""


# --- Reading completions and rows ---


def answer_text(text: str) -> str:
    """The content of the last ``<answer>…</answer>`` block, else the whole text; stripped."""
    found = _ANSWER.findall(text)
    return (found[-1] if found else text).strip()


def reference_answer(row: Row) -> str:
    """The row's reference answer: ``answer``, else ``solution``, else its last assistant message's content."""
    for key in REFERENCE_KEYS:
        if row.get(key) is not None:
            return str(row[key])
    messages = row.get("messages")
    if isinstance(messages, Sequence):
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "assistant":
                return _content_text(message.get("content"))
    raise MissingReferenceError(
        f"row has no reference answer: it needs an 'answer' or 'solution' key, or 'messages' ending in an "
        f"assistant turn (it has keys: {sorted(map(str, row))})"
    )


def _content_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def boxed_text(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` (nested braces allowed), or None."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, begin = 1, start + len(_BOXED)
    for index in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[begin:index]
    return None


def final_number(text: str) -> Fraction | None:
    """The final number of an answer as an exact fraction: in ``<answer>``, else ``\\boxed{}``, else the text."""
    tagged = _ANSWER.findall(text)
    source = tagged[-1] if tagged else boxed_text(text)
    source = _FRAC.sub(r"\1/\2", text if source is None else source)
    found = _NUMBER.findall(source)
    if not found:
        return None
    try:
        return Fraction(found[-1].replace(",", ""))
    except (ValueError, ZeroDivisionError):  # x/0, or more digits than int() takes
        return None


# --- The built-in rewards ---


def accuracy_reward(completion: str, row: Row) -> float:
    """1.0 when the completion's answer equals the reference answer (case and whitespace aside), else 0.0."""
    expected = answer_text(reference_answer(row))
    return float(_normal(answer_text(completion)) == _normal(expected))


def format_reward(completion: str) -> float:
    """1.0 for ``<think>…</think> <answer>…</answer>``, 0.5 for an ``<answer>`` block alone, else 0.0."""
    text = completion.strip()
    if _THINK_ANSWER.fullmatch(text):
        return 1.0
    return 0.5 if _ANSWER.search(text) else 0.0


def math_reward(completion: str, row: Row) -> float:
    """1.0 when the completion's final number equals the reference's (relative tolerance 1e-6), else 0.0."""
    reference = reference_answer(row)
    expected = final_number(reference)
    if expected is None:
        raise ValueError(f"the math reward needs a numeric reference answer, got {reference[:80]!r}")
    got = final_number(completion)
    if got is None:
        return 0.0
    return float(abs(got - expected) <= RELATIVE_TOLERANCE * max(abs(got), abs(expected)))


def json_schema_reward(completion: str, validator: Draft202012Validator) -> float:
    """1.0 for JSON valid against the schema, 0.5 for JSON that is not, 0.0 for no JSON."""
    text = answer_text(completion)
    fence = _FENCE.search(text)
    try:
        value = json.loads(fence.group(1) if fence else text)
    except (ValueError, RecursionError):
        return 0.0
    try:
        return 1.0 if validator.is_valid(value) else 0.5
    except RecursionError:
        return 0.5


def schema_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator for ``schema``, which is checked first (ValueError when it is not a schema)."""
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ValueError(f"jsonSchema is not a valid JSON Schema (draft 2020-12): {error.message}") from error
    return Draft202012Validator(schema)


# --- Scoring batches ---


def _per_completion(score: Callable[[str, Row], float]) -> Column:
    def column(prompts: Sequence[str], completions: Sequence[str], rows: Sequence[Row]) -> list[float]:
        return [score(completion, row) for completion, row in zip(completions, rows, strict=True)]

    return column


class _CodeColumn:
    """A code reward: the sandbox's results clamped to [0, 1], failures scored 0 and counted in a warning."""

    def __init__(self, name: str, sandbox: RewardSandbox) -> None:
        self.name, self.sandbox = name, sandbox

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], rows: Sequence[Row]) -> list[float]:
        results = self.sandbox.score(list(zip(prompts, completions, rows, strict=True)))
        failed = sum(value is None for value in results)
        non_finite = sum(value is not None and not math.isfinite(value) for value in results)
        if failed or non_finite:
            log.warning(
                "reward %s: %d of %d calls failed (raised, timed out, exceeded a limit or returned no number) "
                "and %d returned a non-finite number; they score 0",
                self.name,
                failed,
                len(results),
                non_finite,
            )
        return [_unit(value) for value in results]


def _unit(value: float | None) -> float:
    if value is None or not math.isfinite(value):
        return 0.0
    return min(1.0, max(0.0, value))


class RewardScorer:
    """Scores completions with a set of rewards; owns the sandboxes of code rewards."""

    def __init__(self, config: GrpoConfig, rewards: Sequence[Reward] | None = None) -> None:
        self.config = config
        self.rewards = list(config.rewards if rewards is None else rewards)
        for index, reward in enumerate(self.rewards):
            if RewardName(reward.name) == RewardName.CODE and not config.allow_user_reward_code:
                raise UserRewardCodeNotAllowedError(
                    f"rewards[{index}] is user code: set allowUserRewardCode: true in method.grpo to permit it"
                )
        self.names = _column_names(RewardName(reward.name) for reward in self.rewards)
        self._sandboxes: list[RewardSandbox] = []
        try:
            self._columns = [self._column(name, reward) for name, reward in zip(self.names, self.rewards, strict=True)]
        except BaseException:
            self.close()
            raise

    def columns(
        self, prompts: Sequence[str], completions: Sequence[str], rows: Sequence[Row]
    ) -> dict[str, list[float]]:
        """Each reward's unweighted scores, one per completion, keyed by column name."""
        if not len(prompts) == len(completions) == len(rows):
            raise ValueError(f"{len(prompts)} prompts, {len(completions)} completions and {len(rows)} rows differ")
        return {
            name: column(prompts, completions, rows) for name, column in zip(self.names, self._columns, strict=True)
        }

    def total(self, columns: Mapping[str, Sequence[float]]) -> list[float]:
        """The weighted sum of the columns per completion."""
        weighted = [
            [reward.weight * score for score in columns[name]]
            for name, reward in zip(self.names, self.rewards, strict=True)
        ]
        return [sum(scores) for scores in zip(*weighted, strict=True)]

    def score(self, prompts: Sequence[str], completions: Sequence[str], rows: Sequence[Row]) -> list[float]:
        """The weighted total reward per completion."""
        return self.total(self.columns(prompts, completions, rows))

    def close(self) -> None:
        """Stop the code sandboxes."""
        for sandbox in self._sandboxes:
            sandbox.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _column(self, name: str, reward: Reward) -> Column:
        kind = RewardName(reward.name)
        if kind == RewardName.ACCURACY:
            return _per_completion(accuracy_reward)
        if kind == RewardName.FORMAT:
            return _per_completion(lambda completion, _row: format_reward(completion))
        if kind == RewardName.MATH:
            return _per_completion(math_reward)
        if kind == RewardName.JSON_SCHEMA:
            if reward.json_schema is None:
                raise ValueError(f"reward {name} needs jsonSchema")
            validator = schema_validator(reward.json_schema)
            return _per_completion(lambda completion, _row: json_schema_reward(completion, validator))
        if reward.code is None:
            raise ValueError(f"reward {name} needs code")
        sandbox = RewardSandbox(reward.code, self.config.reward_timeout_seconds, self.config.reward_memory_mb)
        self._sandboxes.append(sandbox)
        return _CodeColumn(name, sandbox)


def _column_names(kinds: Iterable[RewardName]) -> list[str]:
    """Reward names, with ``_2``, ``_3``… on the second and later rewards of a name."""
    names: list[str] = []
    seen: Counter[str] = Counter()
    for kind in kinds:
        seen[kind.value] += 1
        names.append(kind.value if seen[kind.value] == 1 else f"{kind.value}_{seen[kind.value]}")
    return names


def reward_columns(
    rewards: Sequence[Reward],
    config: GrpoConfig,
    prompts: Sequence[str],
    completions: Sequence[str],
    rows: Sequence[Row],
) -> dict[str, list[float]]:
    """Each reward's unweighted scores (see ``RewardScorer.columns``), with a scorer made for this call."""
    with RewardScorer(config, rewards) as scorer:
        return scorer.columns(prompts, completions, rows)


def score_completions(
    rewards: Sequence[Reward],
    config: GrpoConfig,
    prompts: Sequence[str],
    completions: Sequence[str],
    rows: Sequence[Row],
) -> list[float]:
    """The weighted total reward per completion, with a scorer made for this call."""
    with RewardScorer(config, rewards) as scorer:
        return scorer.score(prompts, completions, rows)
