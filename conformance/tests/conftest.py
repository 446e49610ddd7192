"""Fixtures that point the reference vgi-rpc pytest suite at an external worker.

The suite (``vgi_rpc.conformance._pytest_suite``) only asks for fixtures; which
server answers is up to the runner.  These fixtures launch the worker named by
the environment, so the same tests that validate the Python implementation
validate ours.  ``cargo xtask conformance`` sets the variables below; running
pytest by hand works too::

    VGI_CONFORMANCE_WORKER=target/release/vgi-conformance-worker \\
        target/conformance-venv/bin/pytest conformance/tests

Environment:

``VGI_CONFORMANCE_WORKER``
    Command line of the worker, split with shell quoting rules.  Started with
    no extra arguments, it must serve the ConformanceService over stdin/stdout
    and exit when stdin closes; the Unix and HTTP fixtures add the flags of
    ``vgi-conformance-worker --help`` (``--unix PATH``, ``--http`` with
    ``--fake-storage``, caps, ``--token-key``, ``--auth reject-all``).
``VGI_CONFORMANCE_TRANSPORTS``
    Comma-separated transports that ``conformance_conn`` is parametrized over;
    the default is every transport in ``_CONNECTORS``.
``VGI_CONFORMANCE_REPORT``
    Optional path; per-test outcomes, tagged with their transport, are written
    there as JSON when the session ends (the xtask's input, see ``_Report``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vgi_rpc.conformance import ConformanceService
from vgi_rpc.http import http_connect
from vgi_rpc.log import Message
from vgi_rpc.rpc import RpcConnection, SubprocessTransport, connect, unix_connect

ConnFactory = Callable[..., contextlib.AbstractContextManager[Any]]
OnLog = Callable[[Message], None] | None


def _worker_cmd() -> list[str]:
    raw = os.environ.get("VGI_CONFORMANCE_WORKER", "").strip()
    if not raw:
        raise pytest.UsageError("set VGI_CONFORMANCE_WORKER to the conformance worker's command line")
    return shlex.split(raw)


# ---------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------


class _SharedTransport:
    """The session worker's pipes, minus the ability to close them.

    ``RpcConnection`` closes its transport on exit; the ``subprocess``
    transport deliberately reuses one worker for every test, so each
    connection gets this view whose ``close`` leaves the worker running.
    """

    def __init__(self, inner: SubprocessTransport) -> None:
        self._inner = inner

    @property
    def reader(self) -> Any:
        return self._inner.reader

    @property
    def writer(self) -> Any:
        return self._inner.writer

    def close(self) -> None:
        """Keep the shared worker alive for the next test."""


def _pipe(request: pytest.FixtureRequest) -> ConnFactory:
    """A fresh worker process per connection: every test starts from a clean server."""
    cmd = _worker_cmd()

    def factory(on_log: OnLog = None) -> contextlib.AbstractContextManager[Any]:
        return connect(ConformanceService, cmd, on_log=on_log)

    return factory


def _subprocess(request: pytest.FixtureRequest) -> ConnFactory:
    """One worker for the whole session: catches state leaking between calls."""
    worker: SubprocessTransport = request.getfixturevalue("conformance_subprocess")

    def factory(on_log: OnLog = None) -> contextlib.AbstractContextManager[Any]:
        code = worker.proc.poll()
        if code is not None:
            # Without this every later test fails with an opaque broken-pipe error.
            pytest.fail(f"the shared conformance worker exited earlier with status {code}")
        return RpcConnection(ConformanceService, _SharedTransport(worker), on_log=on_log)

    return factory


def _unix_connector(fixture: str) -> Callable[[pytest.FixtureRequest], ConnFactory]:
    """Connections to the session's worker listening on a Unix socket."""

    def build(request: pytest.FixtureRequest) -> ConnFactory:
        path: str = request.getfixturevalue(fixture)

        def factory(on_log: OnLog = None) -> contextlib.AbstractContextManager[Any]:
            return unix_connect(ConformanceService, path, on_log=on_log)

        return factory

    return build


def _http(request: pytest.FixtureRequest) -> ConnFactory:
    port: int = request.getfixturevalue("conformance_http_port")

    def factory(on_log: OnLog = None) -> contextlib.AbstractContextManager[Any]:
        return http_connect(ConformanceService, f"http://127.0.0.1:{port}", on_log=on_log)

    return factory


def _http_externalize_always(request: pytest.FixtureRequest) -> ConnFactory:
    port: int = request.getfixturevalue("conformance_http_externalize_always_port")

    def factory(on_log: OnLog = None) -> contextlib.AbstractContextManager[Any]:
        from vgi_rpc.external import ExternalLocationConfig

        # The fake storage hands out plain-http URLs; allow them.
        external = ExternalLocationConfig(url_validator=None)
        return http_connect(
            ConformanceService, f"http://127.0.0.1:{port}", on_log=on_log, external_location=external
        )

    return factory


def _http_roundrobin(request: pytest.FixtureRequest) -> ConnFactory:
    """Every request goes to the other of two workers than the one before."""
    ports: tuple[int, int] = request.getfixturevalue("conformance_http_two_servers")

    @contextlib.contextmanager
    def factory(on_log: OnLog = None) -> Iterator[Any]:
        with _roundrobin_client(ports) as client, http_connect(ConformanceService, client=client, on_log=on_log) as proxy:
            yield proxy

    return factory


def _roundrobin_client(ports: tuple[int, int]) -> httpx.Client:
    counter = itertools.count()
    lock = threading.Lock()

    class _Alternate(httpx.BaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            with lock:
                port = ports[next(counter) % 2]
            request.url = request.url.copy_with(host="127.0.0.1", port=port)
            return self._inner.handle_request(request)

        def close(self) -> None:
            self._inner.close()

    # httpx wants a base URL; the transport rewrites host and port anyway.
    return httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", transport=_Alternate())


def _http_externalize_always_s3(request: pytest.FixtureRequest) -> ConnFactory:
    port: int = request.getfixturevalue("conformance_http_externalize_always_s3_port")

    def factory(on_log: OnLog = None) -> contextlib.AbstractContextManager[Any]:
        from vgi_rpc.external import ExternalLocationConfig

        # The emulator's pre-signed URLs are plain http on loopback.
        external = ExternalLocationConfig(url_validator=None)
        return http_connect(
            ConformanceService, f"http://127.0.0.1:{port}", on_log=on_log, external_location=external
        )

    return factory


# Transport name (the conformance_conn parameter id) -> connection factory builder.
# Adding a transport means adding an entry here and, on the xtask side, a row
# in its transport table.
_CONNECTORS: dict[str, Callable[[pytest.FixtureRequest], ConnFactory]] = {
    "pipe": _pipe,
    "subprocess": _subprocess,
    "unix": _unix_connector("conformance_unix_path"),
    "unix_threaded": _unix_connector("conformance_unix_threaded_path"),
    "unix_launcher": _unix_connector("conformance_unix_launcher_path"),
    "http": _http,
    "http_externalize_always": _http_externalize_always,
    "http_externalize_always_s3": _http_externalize_always_s3,
    "http_roundrobin": _http_roundrobin,
}


def _selected_transports() -> list[str]:
    raw = os.environ.get("VGI_CONFORMANCE_TRANSPORTS", ",".join(_CONNECTORS))
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - set(_CONNECTORS))
    if unknown or not names:
        raise pytest.UsageError(
            f"VGI_CONFORMANCE_TRANSPORTS={raw!r}: choose from {', '.join(_CONNECTORS)} (unknown: {unknown})"
        )
    return names


def pytest_configure(config: pytest.Config) -> None:
    """Fail fast on a bad environment instead of erroring in every test."""
    _worker_cmd()
    _selected_transports()
    config.pluginmanager.register(_Report(os.environ.get("VGI_CONFORMANCE_REPORT")), "vgi-conformance-report")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``conformance_conn`` over the selected transports (the ids the suite checks)."""
    if "conformance_conn" in metafunc.fixturenames:
        metafunc.parametrize("conformance_conn", _selected_transports(), indirect=True)


@pytest.fixture
def conformance_conn(request: pytest.FixtureRequest) -> ConnFactory:
    """Factory of ``ConformanceService`` connections over ``request.param``."""
    return _CONNECTORS[request.param](request)


@pytest.fixture(scope="session")
def conformance_subprocess() -> Iterator[SubprocessTransport]:
    """The worker shared by every ``subprocess`` test."""
    transport = SubprocessTransport(_worker_cmd())
    try:
        yield transport
    finally:
        transport.close()


def _unix_socket_path(name: str) -> str:
    """A fresh, short socket path (AF_UNIX paths are limited to ~108 bytes)."""
    fd, path = tempfile.mkstemp(prefix=f"vgi-{name}-", suffix=".sock", dir="/tmp")
    os.close(fd)
    os.unlink(path)
    return path


def _start_unix_worker(name: str, *flags: str) -> Iterator[str]:
    """Run the worker on a Unix socket for the session; yield the socket path."""
    path = _unix_socket_path(name)
    proc = subprocess.Popen([*_worker_cmd(), "--unix", path, *flags], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line == f"UNIX:{path}", f"expected UNIX:{path} from the worker, got {line!r}"
        yield path
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def conformance_unix_path() -> Iterator[str]:
    """A sequential Unix-socket worker: one connection at a time."""
    yield from _start_unix_worker("conf", "--no-threaded")


@pytest.fixture(scope="session")
def conformance_unix_threaded_path() -> Iterator[str]:
    """A threaded Unix-socket worker: connections served concurrently."""
    yield from _start_unix_worker("cont", "--threaded")


@pytest.fixture(scope="session")
def conformance_unix_launcher_path() -> Iterator[str]:
    """A worker brought up by the reference launcher, proving its worker contract."""
    from vgi_rpc.launcher import LaunchConfig, launch

    state_dir = Path(tempfile.mkdtemp(prefix="vgi-launcher-"))
    config = LaunchConfig(
        worker_argv=tuple(_worker_cmd()),
        idle_timeout=600.0,
        connect_timeout=15.0,
        worker_startup_timeout=30.0,
        state_dir=str(state_dir),
    )
    path = launch(config)
    try:
        yield path
    finally:
        # The launched worker is detached; stop it through its socket's owner.
        subprocess.run(["pkill", "-TERM", "-f", f"unix {path}"], check=False)
        shutil.rmtree(state_dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# HTTP workers: the worker's --http flags mirror the reference's
# tests/serve_conformance_http*.py servers, so each fixture below is the
# reference fixture of the same name with our worker behind it.
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _http_worker(*flags: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run the worker as an HTTP server for the session; yield its port.

    The worker prints ``PORT:<n>`` only once it is listening, so no polling
    is needed before the first request.
    """
    proc = subprocess.Popen([*_worker_cmd(), "--http", *flags], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("PORT:"), f"expected PORT:<n> from the worker, got {line!r}"
        yield int(line.split(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def conformance_http_port() -> Iterator[int]:
    """A plain HTTP worker: no caps, no storage."""
    with _http_worker() as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_strict_cap_port() -> Iterator[int]:
    """An HTTP worker with 1 MiB wire and external caps (serve_conformance_http_strict.py)."""
    with _http_worker("--max-response-bytes", "1048576", "--max-externalized-response-bytes", "1048576") as port:
        yield port


@pytest.fixture(scope="session")
def conformance_fake_storage() -> Iterator[str]:
    """The reference's fake object storage, in this process; yields its base URL."""
    from vgi_rpc.conformance.fake_storage import serve_in_thread

    base_url, shutdown = serve_in_thread()
    try:
        yield base_url
    finally:
        shutdown()


@pytest.fixture(scope="session")
def conformance_http_with_storage_port(conformance_fake_storage: str) -> Iterator[int]:
    """An HTTP worker externalizing batches of 4 KiB and more into the fake storage."""
    with _http_worker("--fake-storage", conformance_fake_storage) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_externalize_always_port(conformance_fake_storage: str) -> Iterator[int]:
    """An HTTP worker externalizing every non-empty batch; requests stay inline up to 1 MiB."""
    with _http_worker(
        "--fake-storage",
        conformance_fake_storage,
        "--externalize-threshold",
        "1",
        "--max-request-bytes",
        "1048576",
    ) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_externalize_always_s3_port() -> Iterator[int]:
    """``conformance_http_externalize_always_port`` with S3 storage: the
    worker reads the emulator's endpoint, bucket and credentials from the
    AWS_* variables xtask sets."""
    with _http_worker(
        "--s3-storage",
        "--externalize-threshold",
        "1",
        "--max-request-bytes",
        "1048576",
    ) as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_with_zstd_storage_port(conformance_fake_storage: str) -> Iterator[int]:
    """Like ``conformance_http_with_storage_port``, with zstd-compressed uploads."""
    with _http_worker("--fake-storage", conformance_fake_storage, "--compression", "zstd") as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_auth_port() -> Iterator[int]:
    """An HTTP worker refusing every request but its health check."""
    with _http_worker("--auth", "reject-all") as port:
        yield port


@pytest.fixture(scope="session")
def conformance_http_two_servers() -> Iterator[tuple[int, int]]:
    """Two HTTP workers sharing one token key and one cancel-probe file.

    State lives in the sealed token, so either worker must continue a stream
    the other opened; the shared probe file lets cancellation tests count
    calls made on both.
    """
    probe_fd, probe_path = tempfile.mkstemp(prefix="vgi-cancel-probe-", suffix=".json")
    os.close(probe_fd)
    os.unlink(probe_path)
    env = {**os.environ, "VGI_RPC_CONFORMANCE_PROBE_FILE": probe_path}
    key = os.urandom(32).hex()
    try:
        with _http_worker("--token-key", key, env=env) as port_a, _http_worker("--token-key", key, env=env) as port_b:
            yield port_a, port_b
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe_path)


# ---------------------------------------------------------------------------
# Machine-readable outcomes
# ---------------------------------------------------------------------------


def _truncate(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Report:
    """Record one outcome per test and write them as JSON at session end.

    JUnit XML would lose the transport, which lives in the item's callspec, so
    each entry carries it explicitly: ``{"nodeid", "test", "transport",
    "outcome", "message"}`` where ``test`` is ``Class::function`` (the id
    known-failure entries match), ``transport`` is the ``conformance_conn``
    parameter or null for tests that do not take one, and ``outcome`` is
    ``passed``, ``failed`` or ``skipped``.  A failure in any phase (setup,
    call, teardown) makes the test failed; collection errors are failed
    entries too, so a broken import can never look like an empty pass.
    """

    def __init__(self, path: str | None) -> None:
        self._path = Path(path) if path else None
        self._items: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            callspec = getattr(item, "callspec", None)
            cls = getattr(item, "cls", None)
            name = getattr(item, "originalname", item.name)
            self._items[item.nodeid] = {
                "nodeid": item.nodeid,
                "test": f"{cls.__name__}::{name}" if cls is not None else name,
                "transport": callspec.params.get("conformance_conn") if callspec else None,
                "outcome": None,
                "message": None,
            }

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._items[report.nodeid] = {
                "nodeid": report.nodeid,
                "test": report.nodeid or "<collection>",
                "transport": None,
                "outcome": "failed",
                "message": _truncate(str(report.longrepr)),
            }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self._items.get(report.nodeid)
        if entry is None or entry["outcome"] == "failed":
            return
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            detail = crash.message if crash is not None else str(report.longrepr)
            entry["outcome"] = "failed"
            entry["message"] = _truncate(detail if report.when == "call" else f"{report.when}: {detail}")
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            entry["outcome"] = "skipped"
            entry["message"] = _truncate(reason.removeprefix("Skipped: "))
        elif report.when == "call" and entry["outcome"] is None:
            entry["outcome"] = "passed"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._path is None:
            return
        # Deselected (-k) items never ran; leave them out rather than inventing an outcome.
        tests = [entry for entry in self._items.values() if entry["outcome"] is not None]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.write_text(json.dumps({"tests": tests}, indent=1) + "\n")
