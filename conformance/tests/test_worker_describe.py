"""`__describe__` of the worker under test, judged by the reference rules.

The reference suite's own describe tests introspect an in-process Python
server; these ask the external worker instead, so its introspection output is
what gets validated.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vgi_rpc.conformance._runner import run_describe_conformance
from vgi_rpc.introspect import DESCRIBE_VERSION, ServiceDescription, introspect
from vgi_rpc.rpc import SubprocessTransport

from conftest import _worker_cmd


@pytest.fixture(scope="module")
def worker_description() -> Iterator[ServiceDescription]:
    transport = SubprocessTransport(_worker_cmd())
    try:
        yield introspect(transport)
    finally:
        transport.close()


class TestWorkerDescribe:
    """Introspection of the worker named by ``VGI_CONFORMANCE_WORKER``."""

    def test_run_describe_conformance(self, worker_description: ServiceDescription) -> None:
        suite = run_describe_conformance(worker_description)
        failures = "\n".join(f"  {r.name}: {r.error}" for r in suite.results if not r.passed)
        assert suite.success, f"{suite.failed}/{suite.total} describe tests failed:\n{failures}"

    def test_lists_every_method_with_schemas(self, worker_description: ServiceDescription) -> None:
        assert worker_description.describe_version == DESCRIBE_VERSION
        assert len(worker_description.methods) == 81
        echo = worker_description.methods["echo_string"]
        assert echo.params_schema.names == ["value"]
        assert echo.result_schema.names == ["result"]
