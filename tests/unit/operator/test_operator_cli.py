"""`stockpot operator` loads the webhook's handlers only when a webhook port is configured."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import importlib, os, sys
from unittest import mock
import kopf
from stockpot_operator import cli
with mock.patch.object(kopf, "run") as run:
    cli.main(["operator", "--namespace", "x"])
registry = kopf.get_default_registry()
print(len(registry._webhooks.get_all_handlers()), run.call_args.kwargs["namespaces"])
"""


@pytest.mark.parametrize(("env", "handlers"), [({}, "0"), ({"STOCKPOT_WEBHOOK_PORT": "9443"}, "1")])
def test_webhook_handlers_only_with_a_webhook_server(env: dict[str, str], handlers: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [handlers, "['x']"]
