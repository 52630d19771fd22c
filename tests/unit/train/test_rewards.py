from typing import Any

import pytest

from stockpot_runtime.spec.method import GrpoConfig, Reward, RewardName
from stockpot_runtime.train.rewards import (
    MissingReferenceError,
    RewardScorer,
    UserRewardCodeNotAllowedError,
    accuracy_reward,
    format_reward,
    json_schema_reward,
    math_reward,
    reward_columns,
    schema_validator,
    score_completions,
)

pytestmark = pytest.mark.unit

CHAT_ROW = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<answer>4</answer>"}]}


@pytest.mark.parametrize(
    ("completion", "row", "expected"),
    [
        ("Paris", {"answer": "Paris"}, 1.0),
        ("  paris\n", {"answer": "PARIS"}, 1.0),
        ("<think>hmm</think><answer> New   York </answer>", {"answer": "new york"}, 1.0),
        ("<answer>Lyon</answer>", {"answer": "Paris"}, 0.0),
        ("The answer is Paris", {"answer": "Paris"}, 0.0),
        ("42", {"answer": 42}, 1.0),
        ("x", {"solution": "x"}, 1.0),
        ("x", {"answer": "x", "solution": "y"}, 1.0),
        ("4", CHAT_ROW, 1.0),
        ("5", CHAT_ROW, 0.0),
        ("4", {"messages": [{"role": "assistant", "content": [{"type": "text", "text": "4"}]}]}, 1.0),
    ],
)
def test_accuracy(completion: str, row: dict[str, Any], expected: float) -> None:
    assert accuracy_reward(completion, row) == expected


@pytest.mark.parametrize("row", [{}, {"question": "q"}, {"messages": [{"role": "user", "content": "q"}]}])
def test_a_row_without_reference_is_a_data_error(row: dict[str, Any]) -> None:
    with pytest.raises(MissingReferenceError, match="'answer' or 'solution'"):
        accuracy_reward("x", row)
    with pytest.raises(MissingReferenceError):
        math_reward("1", row)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>a</think><answer>b</answer>", 1.0),
        ("  <think>multi\nline</think>\n\n<answer>\nb\n</answer>\n", 1.0),
        ("<answer>b</answer>", 0.5),
        ("prefix <think>a</think><answer>b</answer>", 0.5),
        ("<think>a</think><answer>b</answer> trailing", 0.5),
        ("<think>a</think>", 0.0),
        ("<answer>unclosed", 0.0),
        ("", 0.0),
    ],
)
def test_format(completion: str, expected: float) -> None:
    assert format_reward(completion) == expected


@pytest.mark.parametrize(
    ("completion", "reference", "expected"),
    [
        ("The answer is 42.", "42", 1.0),
        ("It is 41, not 42 — no, 41", "42", 0.0),
        ("<answer>-3.50</answer>", "-3.5", 1.0),
        ("<answer>1,000</answer> (not 7)", "1000", 1.0),
        ("so \\boxed{1,234,567}. Check: 3", "1234567", 1.0),
        ("\\boxed{\\frac{3}{4}}", "0.75", 1.0),
        ("<answer>3/4</answer>", "0.75", 1.0),
        ("<answer>-1/3</answer>", "-0.333333333", 1.0),
        ("<answer>0.333</answer>", "1/3", 0.0),
        ("<answer>1000000.5</answer>", "1000000", 1.0),
        ("<answer>1000002</answer>", "1000000", 0.0),
        ("<answer>0</answer>", "0", 1.0),
        ("x-3 = 4", "4", 1.0),
        ("<answer>five</answer>", "5", 0.0),
        ("no numbers at all", "5", 0.0),
        ("<answer>1/0</answer>", "5", 0.0),
        ("<answer>" + "9" * 5000 + "</answer>", "5", 0.0),
        ("<answer>72</answer>", "Natalia sold 48 + 24 = 72 clips.\n#### 72", 1.0),
        ("__import__('os').system('true') or 7", "7", 1.0),
    ],
)
def test_math(completion: str, reference: str, expected: float) -> None:
    assert math_reward(completion, {"answer": reference}) == expected


def test_math_reads_the_reference_from_the_conversation() -> None:
    assert math_reward("\\boxed{4}", CHAT_ROW) == 1.0


def test_math_needs_a_numeric_reference() -> None:
    with pytest.raises(ValueError, match="numeric reference"):
        math_reward("4", {"answer": "four"})


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name"],
}


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ('{"name": "Ada", "age": 36}', 1.0),
        ('<think>x</think><answer>{"name": "Ada"}</answer>', 1.0),
        ('Here you go:\n```json\n{"name": "Ada"}\n```\nDone.', 1.0),
        ('```\n{"name": "Ada"}\n```', 1.0),
        ('{"age": 36}', 0.5),
        ('{"name": 3}', 0.5),
        ("[1, 2]", 0.5),
        ("{name: Ada}", 0.0),
        ("```json\nnot json\n```", 0.0),
        ("", 0.0),
        ("[" * 100_000, 0.0),
    ],
)
def test_json_schema(completion: str, expected: float) -> None:
    assert json_schema_reward(completion, schema_validator(SCHEMA)) == expected


def test_an_invalid_schema_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        schema_validator({"type": "no-such-type"})


def _config(*rewards: Reward, allow_code: bool = False) -> GrpoConfig:
    return GrpoConfig(rewards=list(rewards), allow_user_reward_code=allow_code)


def test_columns_are_unweighted_and_the_total_is_weighted() -> None:
    config = _config(Reward(name=RewardName.ACCURACY, weight=2.0), Reward(name=RewardName.FORMAT, weight=0.5))
    completions = ["<think>t</think><answer>4</answer>", "<answer>5</answer>", "4"]
    rows = [{"answer": "4"}] * 3
    with RewardScorer(config) as scorer:
        columns = scorer.columns(["p"] * 3, completions, rows)
        assert columns == {"accuracy": [1.0, 0.0, 1.0], "format": [1.0, 0.5, 0.0]}
        assert scorer.total(columns) == [2.5, 0.25, 2.0]
        assert scorer.score(["p"] * 3, completions, rows) == [2.5, 0.25, 2.0]


def test_one_shot_functions_take_rewards_apart_from_the_config() -> None:
    rewards = [
        Reward(name=RewardName.MATH),
        Reward(name=RewardName.JSON_SCHEMA, json_schema={"type": "integer"}, weight=-1.0),
        Reward(name=RewardName.JSON_SCHEMA, json_schema={"type": "string"}),
    ]
    completions, rows = ["3", '"x"'], [{"answer": "3"}, {"answer": "4"}]
    columns = reward_columns(rewards, GrpoConfig(), ["p", "p"], completions, rows)
    assert columns == {"math": [1.0, 0.0], "json-schema": [1.0, 0.5], "json-schema_2": [0.5, 1.0]}
    assert score_completions(rewards, GrpoConfig(), ["p", "p"], completions, rows) == [0.5, 0.5]


def test_batch_lengths_must_agree() -> None:
    with RewardScorer(GrpoConfig()) as scorer, pytest.raises(ValueError, match="differ"):
        scorer.columns(["p"], ["a", "b"], [{"answer": "a"}])


def test_code_rewards_need_permission() -> None:
    code = Reward(name=RewardName.CODE, code="def reward(p, c, r):\n    return 1.0\n")
    config = GrpoConfig.model_construct(rewards=[code], allow_user_reward_code=False)
    with pytest.raises(UserRewardCodeNotAllowedError, match="allowUserRewardCode: true"):
        RewardScorer(config)
    with pytest.raises(PermissionError):
        score_completions([code], GrpoConfig(), ["p"], ["c"], [{}])


def test_code_reward_results_are_clamped_and_failures_score_zero(caplog: pytest.LogCaptureFixture) -> None:
    source = (
        "def reward(prompt, completion, row):\n"
        "    return {'half': 0.5, 'big': 7, 'neg': -2, 'nan': float('nan'), 'str': 'x'}[completion]\n"
    )
    config = _config(Reward(name=RewardName.CODE, code=source, weight=2.0), allow_code=True)
    completions = ["half", "big", "neg", "nan", "str", "missing"]
    with RewardScorer(config) as scorer:
        columns = scorer.columns(["p"] * 6, completions, [{}] * 6)
        assert columns == {"code": [0.5, 1.0, 0.0, 0.0, 0.0, 0.0]}
        assert scorer.total(columns) == [1.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    assert "2 of 6 calls failed" in caplog.text
    assert "1 returned a non-finite number" in caplog.text
    assert "return {" not in caplog.text
