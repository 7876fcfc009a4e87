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
    "tests/test_httpx2.py",
]

VERSIONS = ("import importlib\n"
            "for name in ('requests', 'urllib3', 'aiohttp', 'httpx', 'httpx2', 'niquests', "
            "'openai', 'anthropic', 'wrapt'):\n"
            "    try:\n"
            "        print(name, importlib.import_module(name).__version__)\n"
            "    except ImportError:\n"
            "        pass\n")

# Each combination pins what it tests and leaves the rest at the newest release.
MATRIX = {
    "oldest": ["requests==2.26.0", "urllib3==1.26.20", "aiohttp==3.8.6", "httpx==0.23.3",
               "wrapt==1.14.1"],
    # httpx2's oldest needs h11>=0.16, which httpx 0.23 cannot have: its own combination
    "httpx2-2.0": ["httpx2==2.0.0", "requests", "aiohttp", "httpx", "urllib3", "wrapt"],
    "aiohttp-3.10": ["aiohttp==3.10.11", "requests", "httpx", "httpx2", "urllib3", "wrapt"],
    "urllib3-1.26": ["urllib3==1.26.20", "requests", "aiohttp", "httpx", "httpx2", "wrapt"],
    "wrapt-1.x": ["wrapt<2", "requests", "aiohttp", "httpx", "httpx2", "urllib3"],
    "latest": ["requests", "aiohttp", "httpx", "httpx2", "urllib3", "wrapt"],
}


@nox.session
@nox.parametrize("combo", list(MATRIX))
def matrix(session: nox.Session, combo: str) -> None:
    """Run the whole test suite against one combination of library versions."""
    session.install(".", *TEST_TOOLS, *MATRIX[combo])
    session.run("python", "-c", VERSIONS)
    session.run("pytest", "-q", "-p", "no:cacheprovider", *(session.posargs or INTEGRATION_TESTS))


# niquests depends on urllib3-future, which installs itself over the real `urllib3`: its own
# virtualenv, never the main test environment. Its oldest supported release and the newest.
NIQUESTS = {"oldest": ["niquests==3.6.0", "urllib3-future==2.7.904"], "latest": ["niquests"]}
NIQUESTS_TESTS = ["tests/test_niquests.py", "tests/test_integration_contract.py",
                  "-k", "niquests or urllib3 or requests"]


@nox.session
@nox.parametrize("release", list(NIQUESTS))
def niquests(session: nox.Session, release: str) -> None:
    """niquests sessions, and the urllib3 and requests integrations over urllib3-future."""
    # requests, aiohttp and httpx: test_responses.py (its server) imports them
    session.install(".", *TEST_TOOLS, *NIQUESTS[release], "requests", "aiohttp", "httpx")
    session.run("python", "-c", VERSIONS)
    session.run("pytest", "-q", "-p", "no:cacheprovider", *(session.posargs or NIQUESTS_TESTS))


@nox.session
def sdks(session: nox.Session) -> None:
    """The OpenAI and Anthropic SDKs (on httpx2) against a local server answering their API."""
    session.install(".", *TEST_TOOLS, "openai", "anthropic", "aiohttp")
    session.run("python", "-c", VERSIONS)
    session.run("pytest", "-q", "-p", "no:cacheprovider",
                *(session.posargs or ["tests/test_sdks.py"]))
