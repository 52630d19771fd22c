"""Row validation errors that name the file, the line and the field, collected for every bad row at once.

``RowProblem(path, line, field, problem)`` renders as ``path:line: field: problem``. Line is the 1-based line
for JSONL/CSV/.txt files and the 0-based row index for JSON arrays and Parquet. ``DataValidationError`` carries
all problems and lists up to ``MAX_LISTED`` of them, then "and N more".
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LISTED = 20


@dataclass(frozen=True)
class RowProblem:
    """One bad field in one row."""

    path: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.problem}"


class DataValidationError(ValueError):
    """The data has bad rows; ``problems`` lists every one of them."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = list(problems)
        super().__init__(format_problems(self.problems))


def format_problems(problems: list[RowProblem], limit: int = MAX_LISTED) -> str:
    """A multi-line message listing up to ``limit`` problems, then how many more there are."""
    lines = [f"{len(problems)} problem(s) in the data:"]
    lines += [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  and {len(problems) - limit} more")
    return "\n".join(lines)
