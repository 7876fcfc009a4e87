"""The pytest plugin, on small generated test suites run in their own process."""

from __future__ import annotations

import pytest
from conftest import SERVER_SNIPPET

HEADER = SERVER_SNIPPET + "import pytest, requests\n"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args)


def _details(r: pytest.RunResult) -> str:
    # the error sections only: the short summary repeats each message (in full when CI=true)
    return r.stdout.str().split("short test summary info")[0]


def test_leaking_test_fails_with_the_report_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=HEADER + '''
def test_leaks():
    s = requests.Session()
    s.get(URL)

def test_clean():
    with requests.Session() as s:
        s.get(URL)
''')
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=2, errors=1)
    out = r.stdout.str()
    assert "ERROR at teardown of test_leaks" in out
    assert "leakguard: test test_one.py::test_leaks leaked 1 session" in out
    assert "leakguard: requests.Session garbage-collected without close() (1 open connection " \
           "to http://127.0.0.1:" in out
    assert "    s = requests.Session()" in out
    assert "_pytest" not in out.split("leaked 1 session")[1].split("short test summary")[0]
    assert r.ret == 1


def test_clean_suite_passes_and_plugin_is_inert_without_the_option(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=HEADER + '''
def test_a():
    requests.get(URL)

def test_leaks_but_not_checked():
    requests.Session()
''')
    r = _run(pytester)
    r.assert_outcomes(passed=2)
    assert "leakguard" not in r.stdout.str()
    pytester.makepyfile(test_one=HEADER + "def test_a():\n    requests.get(URL)\n")
    _run(pytester, "--leakguard").assert_outcomes(passed=1)


def test_fixtures_of_every_scope(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
import pytest, requests

@pytest.fixture(scope="session")
def session_client():
    s = requests.Session()
    yield s
    s.close()

@pytest.fixture(scope="module")
def module_client():
    with requests.Session() as s:
        yield s

@pytest.fixture(scope="class")
def class_client():
    s = requests.Session()
    yield s
    s.close()

@pytest.fixture
def function_client():
    s = requests.Session()
    yield s
    s.close()

@pytest.fixture(scope="module")
def never_closed():
    return requests.Session()
''')
    pytester.makepyfile(test_a=HEADER + '''
class TestGroup:
    def test_1(self, class_client, session_client, module_client, function_client):
        class_client.get(URL); session_client.get(URL); module_client.get(URL)
        function_client.get(URL)

    def test_2(self, class_client, session_client, module_client):
        class_client.get(URL)

def test_3(session_client, function_client):
    session_client.get(URL)
''', test_b=HEADER + '''
def test_4(never_closed):
    never_closed.get(URL)

def test_5(never_closed, session_client):
    pass
''')
    r = _run(pytester, "--leakguard")
    out = _details(r)
    r.assert_outcomes(passed=5, errors=1)
    assert out.count("leakguard: fixture 'never_closed' (module scope) leaked 1 session") == 1
    assert "ERROR at teardown of test_5" in out
    assert "still open after its owner's teardown" in out


def test_allow_marker_and_warn_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=HEADER + '''
@pytest.mark.leakguard(allow=True)
def test_allowed():
    requests.Session()

def test_leaky():
    KEEP.append(requests.Session())

KEEP = []
''')
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=2, errors=1)
    assert "test_allowed" not in r.stdout.str().split("short test summary")[0] \
        .split("ERRORS")[1]
    w = _run(pytester, "--leakguard-mode=warn")
    w.assert_outcomes(passed=2)
    assert w.ret == 0
    assert "leakguard: leaked sessions and responses" in w.stdout.str()
    assert "leakguard: test test_one.py::test_leaky leaked 1 session" in w.stdout.str()


def test_ini_option_and_suppressions(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nleakguard = true\n")
    pytester.makepyfile(test_one=HEADER + '''
def make_accepted():
    return requests.Session()

def test_suppressed():
    make_accepted()

def test_leaky():
    requests.Session()
''')
    supp = pytester.path / "accepted.supp"
    supp.write_text("leak:make_accepted\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEAKGUARD_SUPPRESSIONS", str(supp))
        r = _run(pytester)
    r.assert_outcomes(passed=2, errors=1)
    assert "ERROR at teardown of test_leaky" in r.stdout.str()


def test_async_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_async=HEADER + '''
import aiohttp, httpx, pytest_asyncio

@pytest_asyncio.fixture
async def client():
    async with httpx.AsyncClient() as c:
        yield c

@pytest.mark.asyncio
async def test_clean(client):
    await client.get(URL)

@pytest.mark.asyncio
async def test_leaky():
    s = aiohttp.ClientSession()
    async with s.get(URL) as r:
        await r.read()
''')
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=2, errors=1)
    assert "leakguard: test test_async.py::test_leaky leaked 1 session" in r.stdout.str()
    assert "aiohttp.ClientSession" in r.stdout.str()


def test_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=HEADER + '''
import pytest

@pytest.mark.parametrize("n", range(6))
def test_many(n):
    if n % 3 == 0:
        requests.Session()
    else:
        requests.get(URL)
''')
    r = _run(pytester, "-p", "xdist", "-n", "2", "--leakguard")
    r.assert_outcomes(passed=6, errors=2)
    out = _details(r)
    assert out.count("leaked 1 session") == 2
    assert "test_many[0] leaked" in out and "test_many[3] leaked" in out
