"""Runs the reference's OAuth token-proxy conformance test against our worker.

``cargo xtask conformance --transport oauth-token-proxy`` copies this file
next to ``test_oauth_token_proxy_conformance.py`` from the pinned vgi-rpc
source distribution.  That test is parametrized over implementations; our
worker stands in for the Go one (``GO_CONFORMANCE_WORKER``), so only the
parameter named by ``VGI_OAUTH_IMPL`` runs: the in-process Python case would
test the reference itself, and the TypeScript case needs a toolchain we do
not have.

``VGI_CONFORMANCE_REPORT``
    Where per-test outcomes go as JSON, in the form the xtask reads for the
    main suite: ``{"tests": [{"test", "outcome", "message"}]}`` with ``test``
    as ``Class::function``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_MESSAGE_LIMIT = 2000


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "..."


class _Outcomes:
    def __init__(self, path: str | None) -> None:
        self._path = Path(path) if path else None
        self._tests: dict[str, dict[str, Any]] = {}

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        wanted = os.environ.get("VGI_OAUTH_IMPL", "go")
        kept, dropped = [], []
        for item in items:
            callspec = getattr(item, "callspec", None)
            impl = callspec.params.get("impl_name") if callspec else None
            (kept if impl == wanted else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        for item in kept:
            cls = getattr(item, "cls", None)
            name = getattr(item, "originalname", item.name)
            self._tests[item.nodeid] = {
                "test": f"{cls.__name__}::{name}" if cls is not None else name,
                "outcome": None,
                "message": None,
            }

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._tests[report.nodeid] = {
                "test": report.nodeid or "<collection>",
                "outcome": "failed",
                "message": _short(str(report.longrepr)),
            }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self._tests.get(report.nodeid)
        if entry is None or entry["outcome"] == "failed":
            return
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            detail = crash.message if crash is not None else str(report.longrepr)
            entry["outcome"] = "failed"
            entry["message"] = _short(detail if report.when == "call" else f"{report.when}: {detail}")
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            entry["outcome"] = "skipped"
            entry["message"] = _short(reason.removeprefix("Skipped: "))
        elif report.when == "call" and entry["outcome"] is None:
            entry["outcome"] = "passed"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._path is None:
            return
        tests = [entry for entry in self._tests.values() if entry["outcome"] is not None]
        self._path.write_text(json.dumps({"tests": tests}, indent=1) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    """Checks the worker is there, and records outcomes."""
    worker = os.environ.get("GO_CONFORMANCE_WORKER", "")
    if not Path(worker).is_file():
        raise pytest.UsageError(f"GO_CONFORMANCE_WORKER={worker!r} is not a file")
    config.pluginmanager.register(_Outcomes(os.environ.get("VGI_CONFORMANCE_REPORT")), "vgi-oauth-outcomes")
