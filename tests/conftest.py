"""Shared fixtures: a real local HTTP server, leakguard switched on per test, subprocess runs."""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator

import pytest

from leakguard import _guard

pytest_plugins = ["pytester"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--stress", action="store_true",
                     help="run the load tests at full size (minutes, not seconds)")


@pytest.fixture
def stress(request: pytest.FixtureRequest) -> bool:
    """Whether the load tests run at full size."""
    return bool(request.config.getoption("--stress"))

def _serving(snippet: str, url: str, server: str) -> Iterator[str]:
    """Run a server snippet in this process; its URL (named `url`) until the fixture ends."""
    namespace: dict[str, object] = {}
    exec(snippet, namespace)
    yield str(namespace[url])
    running = namespace[server]
    assert isinstance(running, http.server.ThreadingHTTPServer)
    running.shutdown()
    running.server_close()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A real HTTP/1.1 keep-alive server on 127.0.0.1 (SERVER_SNIPPET's), shared by the run."""
    yield from _serving(SERVER_SNIPPET, "URL", "_srv")


@pytest.fixture(scope="module")
def big_url() -> Iterator[str]:
    """A server with a 1 MiB body at /big and `Connection: close` at /close (BIG_SERVER's)."""
    from test_responses import BIG_SERVER

    yield from _serving(BIG_SERVER, "BIG", "_big")


@pytest.fixture(autouse=True)
def internal_errors_fail(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """leakguard swallows its own errors for the host; in our tests they are failures."""
    errors: list[str] = []
    _guard.on_error = lambda where, exc: errors.append(f"{where}: {exc!r}")
    yield errors
    _guard.on_error = None
    _guard._said.clear()
    if "allow_internal_errors" not in request.keywords:
        assert not errors, f"leakguard swallowed internal errors: {errors}"

class Reports(logging.Handler):
    """Collects what the `leakguard` logger says."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]

    def debug(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == logging.DEBUG]

@pytest.fixture
def reports() -> Iterator[Reports]:
    """leakguard switched on for one test; its log records collected."""
    import leakguard

    handler = Reports()
    logger = logging.getLogger("leakguard")
    logger.addHandler(handler)
    leakguard.enable()
    try:
        yield handler
    finally:
        leakguard.disable()
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)

def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60,
               args: list[str] | None = None,
               python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """Run a snippet as app.py, in its own folder, in a fresh interpreter of this environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD")}
    full_env.update(env or {})
    folder = tempfile.mkdtemp(prefix="leakguard-test-")
    with open(os.path.join(folder, "app.py"), "w") as f:
        f.write(textwrap.dedent(code))
    return subprocess.run([python, *(args or []), "app.py"], cwd=folder,
                          env=full_env, capture_output=True, text=True, timeout=timeout)

def line_of(path: str, marker: str) -> int:
    """The number of the line of `path` that holds `marker` (outside a line_of/_line call)."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if marker in line and "_line(" not in line and "line_of(" not in line:
                return n
    raise AssertionError(marker)

SERVER_SNIPPET = '''
import http.server, threading
class _H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
threading.Thread(target=_srv.serve_forever, daemon=True).start()
URL = "http://127.0.0.1:%d/" % _srv.server_address[1]
'''
