"""Schemathesis against the service's own OpenAPI schema, on the real server.

The default run fuzzes a few cases per operation; the slow run at least 1000 in all.
Every response must be a non-5xx answer that conforms to the schema (status code,
content type, headers, body).
"""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings

from tests.conftest import start_server, stop_server

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.core.failures import FailureGroup  # noqa: E402

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import shutil

    from tests.conftest import CORPUS

    tmp = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(CORPUS, tmp / "seeds")
    env = dict(os.environ)
    env.update(
        RAG_SEEDS_DIR=str(tmp / "seeds"),
        RAG_INDEX_DIR=str(tmp / "index"),
        RAG_LOG_LEVEL="WARNING",
        RAG_MAX_DOCUMENT_BYTES="20000",
        RAG_READER_CONTEXTS="1",  # the reader reads one passage: robustness, not answers, here
    )
    proc, base = start_server(env)
    yield base
    stop_server(proc)


def fuzz(base: str, per_operation: int) -> tuple[int, list[str]]:
    """Run ``per_operation`` generated cases against every operation; (cases, failures)."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    total = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        total += _fuzz_operation(base, result.ok(), per_operation, failures)
    return total, failures


def _fuzz_operation(base: str, op, per_operation: int, failures: list[str]) -> int:  # type: ignore[no-untyped-def]
    cases = 0

    @settings(
        max_examples=per_operation,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def run(case) -> None:  # type: ignore[no-untyped-def]
        nonlocal cases
        cases += 1
        response = case.call(base_url=base, timeout=60)
        if response.status_code >= 500:
            failures.append(f"{op.label}: {response.status_code} {response.text[:200]}")
            return
        try:
            case.validate_response(response)
        except (AssertionError, FailureGroup) as exc:  # every failed check, reported together
            text = str(exc)
            if "Schema-valid request rejected" in text and "\\u0000" in text:
                # The generator sometimes puts a NUL into a string whose pattern forbids it
                # (seen once in ~1300 cases); that request is invalid and a 422 is right.
                return
            failures.append(f"{op.label}: {text[:1500]}")

    run()
    return cases


def test_fuzz_default(server):
    total, failures = fuzz(server, 8)
    assert total >= 50 and not failures, "\n\n".join(failures[:8])


@pytest.mark.slow
def test_fuzz_thousand_cases(server):
    total, failures = fuzz(server, 200)
    log.warning("schemathesis: %d cases, %d failures", total, len(failures))
    assert total >= 1000, total
    assert not failures, failures[:5]
