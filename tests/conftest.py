"""Shared test configuration: every test declares which suite it belongs to."""

from pathlib import Path

import pytest

pytest_plugins = ["stockpot_local.pytest_plugin"]  # s3, s3_bucket, local_cluster, prometheus

REPO = Path(__file__).resolve().parent.parent
SUITES = ("unit", "integration", "runtime", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(s) for s in SUITES)]
    if unmarked:
        raise pytest.UsageError(f"tests without a suite marker ({', '.join(SUITES)}): {unmarked[:10]}")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
