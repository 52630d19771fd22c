from typing import Any

import pytest

from stockpot_runtime.toy.model import build_tokenizer


@pytest.fixture(scope="session")
def toy_tokenizer() -> Any:
    return build_tokenizer()
