"""The version matrix: the test suite against the client-library versions people run.

    pip install nox && nox            # every combination
    nox -s "matrix(oldest)"           # one of them
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False

TEST_TOOLS = ["pytest>=7", "pytest-asyncio>=0.21"]
# the tests that exercise the client libraries (the rest do not depend on their versions)
INTEGRATION_TESTS = [
    "tests/test_integration_contract.py",
    "tests/test_more_clients.py",
    "tests/test_leak_shapes.py",
    "tests/test_no_false_positives.py",
    "tests/test_check_api.py",
    "tests/test_ci_gate.py",
]

# Each combination pins what it tests and leaves the rest at the newest release.
MATRIX = {
    "oldest": ["requests==2.26.0", "urllib3==1.26.20", "aiohttp==3.8.6", "httpx==0.23.3",
               "wrapt==1.14.1"],
    "aiohttp-3.10": ["aiohttp==3.10.11", "requests", "httpx", "urllib3", "wrapt"],
    "urllib3-1.26": ["urllib3==1.26.20", "requests", "aiohttp", "httpx", "wrapt"],
    "wrapt-1.x": ["wrapt<2", "requests", "aiohttp", "httpx", "urllib3"],
    "latest": ["requests", "aiohttp", "httpx", "urllib3", "wrapt"],
}


@nox.session
@nox.parametrize("combo", list(MATRIX))
def matrix(session: nox.Session, combo: str) -> None:
    """Run the whole test suite against one combination of library versions."""
    session.install(".", *TEST_TOOLS, *MATRIX[combo])
    session.run("python", "-c", "import requests, urllib3, aiohttp, httpx, wrapt; "
                "print('versions:', 'requests', requests.__version__, 'urllib3', "
                "urllib3.__version__, 'aiohttp', aiohttp.__version__, 'httpx', "
                "httpx.__version__, 'wrapt', wrapt.__version__)")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *(session.posargs or INTEGRATION_TESTS))
