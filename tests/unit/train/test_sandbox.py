import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockpot_runtime.train.sandbox import RewardSandbox, SandboxError, is_dumpable

pytestmark = pytest.mark.unit

CODE = """
import os

def reward(prompt, completion, row):
    if completion == "raise":
        raise ValueError("no")
    if completion == "loop":
        while True:
            pass
    if completion == "memory":
        x = bytearray(10**10)
    if completion == "text":
        return "1.0"
    if completion == "print":
        print("{\\"id\\": 0, \\"value\\": 99}")
        os.write(1, b"garbage\\n")
    if completion == "secret":
        return float("AWS_SECRET_ACCESS_KEY" in os.environ or "PARENT_MARKER" in os.environ)
    if completion == "cwd":
        return float(len(os.listdir(".")))
    return len(completion) / 10 + row.get("bonus", 0)
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RewardSandbox]:
    with RewardSandbox(CODE, timeout_s=1.0, memory_mb=256) as box:
        yield box


def test_scores_a_batch(sandbox: RewardSandbox) -> None:
    items = [("p", "abc", {}), ("p", "abcde", {"bonus": 1}), ("p", "", {})]
    assert sandbox.score(items) == [pytest.approx(0.3), pytest.approx(1.5), 0.0]


def test_a_failing_call_is_none_and_the_rest_still_score(sandbox: RewardSandbox) -> None:
    assert sandbox.score([("p", "raise", {}), ("p", "text", {}), ("p", "ab", {})]) == [None, None, 0.2]


def test_an_endless_call_times_out_and_the_sandbox_recovers(sandbox: RewardSandbox) -> None:
    started = time.monotonic()
    assert sandbox.score([("p", "loop", {}), ("p", "a", {})]) == [None, pytest.approx(0.1)]
    assert time.monotonic() - started < 3.0
    assert sandbox.score([("p", "abcd", {})]) == [pytest.approx(0.4)]


def test_a_memory_bomb_fails(sandbox: RewardSandbox) -> None:
    assert sandbox.score([("p", "memory", {}), ("p", "a", {})]) == [None, pytest.approx(0.1)]


def test_print_does_not_break_the_protocol(sandbox: RewardSandbox) -> None:
    assert sandbox.score([("p", "print", {}), ("p", "abc", {})]) == [pytest.approx(0.5), pytest.approx(0.3)]


def test_parent_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("PARENT_MARKER", "1")
    with RewardSandbox(CODE, timeout_s=1.0, memory_mb=256) as box:
        assert box.score([("p", "secret", {})]) == [0.0]


def test_the_working_directory_is_fresh_and_empty(sandbox: RewardSandbox) -> None:
    assert sandbox.score([("p", "cwd", {})]) == [0.0]


def test_files_cannot_be_written(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    code = (
        f"def reward(p, c, r):\n    with open({str(target)!r}, 'w') as f:\n        f.write('x' * 100)\n    return 1.0\n"
    )
    with RewardSandbox(code, timeout_s=1.0, memory_mb=256) as box:
        assert box.score([("p", "c", {})]) == [None]
    assert not target.exists() or target.stat().st_size == 0


def test_the_worker_is_gone_after_close() -> None:
    box = RewardSandbox("def reward(p, c, r):\n    return 1\n", timeout_s=1.0, memory_mb=128)
    worker = box._worker
    assert worker is not None
    directory, pid = worker.directory, worker.process.pid
    box.close()
    assert not directory.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert box.score([("p", "c", {})]) == [1.0]  # a new worker starts on demand
    box.close()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def reward(p, c, r):\n    return (1\n\nx = 2\n", r"SyntaxError: .*\(line 2\)"),
        ("import os\n\n1 / 0\n", r"ZeroDivisionError: division by zero \(line 3\)"),
        ("def score(p, c, r):\n    return 1\n", "defines no function reward"),
        ("def reward(completion):\n    return 1\n", "three arguments"),
        ("while True:\n    pass\n", "did not load"),
    ],
)
def test_unusable_code_fails_at_construction(code: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setattr("stockpot_runtime.train.sandbox.STARTUP_GRACE_S", 0.5)
    with pytest.raises(SandboxError, match=message) as raised:
        RewardSandbox(code, timeout_s=0.5, memory_mb=128)
    assert "hunter2" not in str(raised.value)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RewardSandbox("def reward(p, c, r):\n    return 1\n", timeout_s=0, memory_mb=128)


def test_starting_a_sandbox_hides_the_trainers_environment_from_same_user_processes(sandbox: RewardSandbox) -> None:
    """Non-dumpable: /proc/<trainer>/environ (storage credentials) is unreadable to the non-root worker."""
    assert not is_dumpable()
