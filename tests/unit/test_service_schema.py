"""A bounded schemathesis run against the OpenAPI schema (slow set: ``pytest -m slow``).

Every operation gets 15 generated requests (with the API key; schemathesis also replays them
without it and expects 401): no 500, status codes, headers and bodies as the schema documents
them (the ``ErrorBody`` of each listed error).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402
from service_toys import KEY, decoded, engine  # noqa: E402

from speakerrpl.service.app import create_app  # noqa: E402

# the app is built at import (cheap: an empty registry); people are enrolled only when the
# slow test runs (fixture below), so collecting this module costs nothing
_ENGINE = engine(Path(tempfile.mkdtemp(prefix="st-")) / "reg.db", api_key=KEY,
                 max_upload_bytes=200_000)  # fmt: skip
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_ENGINE))


@schema.auth()
class _Key:
    """The configured key; schemathesis also checks that requests without it are refused."""

    def get(self, case: object, ctx: object) -> str:
        return KEY

    def set(self, case: object, data: str, ctx: object) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def enrolled() -> Iterator[None]:
    if not _ENGINE.speakers():
        for who in ("alice", "bob"):
            _ENGINE.enroll(who, [decoded(who, s) for s in range(2)])
    yield


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(enrolled: None, case: object) -> None:
    # every check but "schema-valid data is accepted": names and audio have rules no schema
    # can state (look-alike scripts, a decodable clip), refused with a documented 400/422
    case.call_and_validate(excluded_checks=[positive_data_acceptance])  # type: ignore[attr-defined]
