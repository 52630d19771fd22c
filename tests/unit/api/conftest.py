from collections.abc import Callable

import jsonschema
import pytest

from stockpot_operator.api import KINDS_BY_NAME
from stockpot_operator.builders.crd import crd


@pytest.fixture(scope="session")
def crd_validator() -> Callable[[str], jsonschema.Draft4Validator]:
    """The generated CRD's openAPIV3Schema as a validator (OpenAPI v3.0 bounds are Draft 4's)."""

    def make(kind: str) -> jsonschema.Draft4Validator:
        schema = crd(KINDS_BY_NAME[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        return jsonschema.Draft4Validator(schema)

    return make
