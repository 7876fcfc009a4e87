"""The pytest plugin on whole runs: its cost, children, factories, output and options."""

from __future__ import annotations

import json
import re

import pytest
from conftest import SERVER_SNIPPET

HEADER = SERVER_SNIPPET + "import pytest, requests\n"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args)


def _details(r: pytest.RunResult) -> str:
    return r.stdout.str().split("short test summary info")[0]


GC_COUNTER = '''
import gc, pytest
COUNT = [0]
def _count(phase, info):
    if phase == "start":
        COUNT[0] += 1
gc.disable()  # only explicit collections (ours) are counted
gc.callbacks.append(_count)

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"GC-COUNT={COUNT[0]}")
'''


def _gc_count(r: pytest.RunResult) -> int:
    found = re.findall(r"GC-COUNT=(\d+)", r.stdout.str())
    assert found, r.stdout.str()
    return int(found[-1])


def test_tests_that_leak_nothing_cost_no_garbage_collection(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(GC_COUNTER + '''
@pytest.fixture
def one():
    return {"a": [1, 2]}

@pytest.fixture
def client():
    with requests.Session() as s:
        yield s

import requests
''')
    pytester.makepyfile(test_many=HEADER + '''
@pytest.mark.parametrize("n", range(40))
def test_plain(n, one):
    assert one["a"]

@pytest.mark.parametrize("n", range(5))
def test_with_sessions(n, client):
    client.get(URL)
    with requests.Session() as s:
        s.get(URL)
''')
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=45)
    assert _gc_count(r) == 0


def test_a_leaking_test_in_a_reference_cycle_is_still_caught(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(GC_COUNTER)
    pytester.makepyfile(test_cycle=HEADER + '''
class Holder:
    def __init__(self):
        self.me = self
        self.session = requests.Session()
        self.session.get(URL)

def test_before():
    pass

def test_cycle():
    Holder()

def test_after():
    pass
''')
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=3, errors=1)
    out = _details(r)
    assert "ERROR at teardown of test_cycle" in out
    assert "leakguard: test test_cycle.py::test_cycle leaked 1 session" in out
    assert "requests.Session garbage-collected without close()" in out
    assert 1 <= _gc_count(r) <= 3  # young generations first, for that test only


def test_child_processes_leaks_are_pinned_on_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_children=HEADER + '''
import multiprocessing, os, subprocess, sys

def work(url):
    s = requests.Session()
    s.get(url)
    return os.getpid()

def test_pool():
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pid = pool.apply(work, (URL,))
    with open("pool.pid", "w") as f:
        f.write(str(pid))

def test_subprocess():
    code = ("import os, requests; S = requests.Session(); "
            "open('sub.pid', 'w').write(str(os.getpid()))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # the child says nothing

def test_clean_after():
    pass
''')
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=3, errors=2)
    out = _details(r)
    pool_pid = (pytester.path / "pool.pid").read_text()
    sub_pid = (pytester.path / "sub.pid").read_text()
    pool_part = out.split("ERROR at teardown of test_pool")[1].split("ERROR at teardown")[0]
    assert f"leakguard: child process {pool_pid} leaked 1 session during test " \
           "test_children.py::test_pool" in pool_part
    assert "garbage-collected without close() (1 open connection to http://127.0.0.1:" \
           in pool_part and f"in thread MainThread, process {pool_pid}" in pool_part
    sub_part = out.split("ERROR at teardown of test_subprocess")[1]
    assert f"leakguard: child process {sub_pid} leaked 1 session" in sub_part
    assert "still open at interpreter exit (0 open connections; created" in sub_part
    assert f"in thread MainThread, process {sub_pid}" in sub_part
    assert "test_clean_after" not in out


def test_factory_fixture_owns_the_sessions_it_makes(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
import pytest, requests

@pytest.fixture(scope="module")
def make_client():
    made = []
    def make():
        s = requests.Session()
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()

@pytest.fixture(scope="module")
def make_forgotten():
    def make():
        return requests.Session()
    kept = []
    yield lambda: kept.append(make())
''')
    pytester.makepyfile(test_a=HEADER + '''
@pytest.mark.parametrize("n", range(3))
def test_uses_factory(n, make_client):
    make_client().get(URL)
''', test_b=HEADER + '''
def test_forgets_1(make_forgotten):
    make_forgotten()

def test_forgets_2(make_forgotten):
    make_forgotten()
''')
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=5, errors=1)
    out = _details(r)
    assert "test_uses_factory" not in out
    assert "leakguard: fixture 'make_forgotten' (module scope) leaked 2 sessions, torn down " \
           "after test test_b.py::test_forgets_2" in out
    assert out.count("ERROR at teardown") == 1


def test_leakguard_1_without_the_flag_shows_reports_in_the_terminal(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=HEADER + '''
def test_leaks():
    requests.Session().get(URL)

def test_clean():
    with requests.Session() as s:
        s.get(URL)
''')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEAKGUARD", "1")
        r = _run(pytester)
    r.assert_outcomes(passed=2)
    assert r.ret == 0
    out = r.stdout.str()
    section = out.split("leakguard: leaked sessions and responses")[1]
    assert "leakguard: 1 leaked session (1 garbage-collected without close()) in 1 test" \
           in section
    assert "leakguard: test test_one.py::test_leaks leaked 1 session" in section
    assert "    requests.Session().get(URL)" in section
    assert "0 leaked" not in r.stderr.str()


def test_grouped_summary_capped_output_and_json_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_many=HEADER + '''
@pytest.mark.parametrize("n", range(25))
def test_leaky(n):
    requests.Session()

def make_accepted():
    return requests.Session()

def test_suppressed():
    make_accepted()

def test_other_site():
    s = requests.Session()
''')
    report = pytester.path / "leaks.jsonl"
    supp = pytester.path / "accepted.supp"
    supp.write_text("leak:make_accepted\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEAKGUARD_REPORT", str(report))
        mp.setenv("LEAKGUARD_SUPPRESSIONS", str(supp))
        r = _run(pytester, "--leakguard-mode=warn")
    r.assert_outcomes(passed=27)
    out = r.stdout.str().split("leakguard: leaked sessions and responses")[1]
    lines = out.splitlines()
    assert lines[1] == ("leakguard: 26 leaked sessions (26 garbage-collected without close()) "
                        "in 26 tests, 1 suppressed")
    assert re.match(r"  25 x requests.Session created at test_many.py:\d+ in test_leaky$",
                    lines[2])
    assert lines[3] == ("       in test_many.py::test_leaky[0], test_many.py::test_leaky[1], "
                        "test_many.py::test_leaky[2] and 22 more")
    assert re.match(r"   1 x requests.Session created at test_many.py:\d+ in test_other_site$",
                    lines[4])
    assert out.count("garbage-collected without close() (0 open connections") == 20
    assert "leakguard: 6 more reports not shown" in out
    assert f"leakguard: every report, as JSON Lines: {report}" in out
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(records) == 26
    assert {rec["test"] for rec in records} == {
        *(f"test_many.py::test_leaky[{n}]" for n in range(25)), "test_many.py::test_other_site"}
    assert all(rec["event"] == "gc" and rec["type"] == "requests.Session" for rec in records)
    assert "0 leaked" not in r.stderr.str() and "suppressed" not in r.stderr.str()


def test_flag_mode_ini_and_marker_keywords(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=HEADER + '''
def test_leaks():
    requests.Session()
''')
    _run(pytester, "--leakguard", "test_one.py").assert_outcomes(passed=1, errors=1)
    pytester.makeini("[pytest]\nleakguard = warn\n")
    w = _run(pytester, "test_one.py")
    w.assert_outcomes(passed=1)
    assert "leakguard: leaked sessions and responses" in w.stdout.str()
    _run(pytester, "--leakguard-mode=fail").assert_outcomes(passed=1, errors=1)
    pytester.makeini("[pytest]\nleakguard = maybe\n")
    bad = _run(pytester)
    assert bad.ret == 4
    assert "leakguard = 'maybe': accepted values are true, warn, false" in bad.stderr.str()
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_one=HEADER + '''
@pytest.mark.leakguard(alow=True)
def test_typo():
    requests.Session()
''')
    typo = _run(pytester, "--leakguard")
    assert typo.ret == 4
    assert "test_one.py::test_typo: @pytest.mark.leakguard takes only allow=True|False, " \
           "not unknown keyword 'alow'" in typo.stderr.str()


def _outcomes(r: pytest.RunResult) -> list[tuple[str, str]]:
    return [(name, status) for status, name in
            re.findall(r"^(PASSED|FAILED|ERROR) (test_w\.py::\S+)", r.stdout.str(), re.M)]


def test_collections_do_not_move_other_warnings(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_w=HEADER + '''
import asyncio, aiohttp

async def never():
    pass

class Cycle:
    def __init__(self):
        self.me = self
        self.coroutine = never()

def test_drops_a_coroutine():
    never()

def test_drops_a_coroutine_in_a_cycle():
    Cycle()

@pytest.mark.parametrize("n", range(5))
def test_clean(n):
    with requests.Session() as s:
        s.get(URL)

def test_unclosed_aiohttp_made_at_import():
    assert AIO is not None

async def _make():
    return aiohttp.ClientSession()

AIO = asyncio.run(_make())

KEEP = []

def test_leaky():
    KEEP.append(requests.Session())

@pytest.mark.parametrize("n", range(5))
def test_after(n):
    assert [str(i) for i in range(1000)]
''')
    plain = _run(pytester, "-rA", "-p", "no:asyncio", "-p", "no:leakguard")
    checked = _run(pytester, "-rA", "-p", "no:asyncio", "--leakguard")
    without = [o for o in _outcomes(plain) if "test_leaky" not in o[0]]
    with_lg = [o for o in _outcomes(checked) if "test_leaky" not in o[0]]
    assert without == with_lg, (plain.stdout.str(), checked.stdout.str())
    assert ("test_w.py::test_drops_a_coroutine", "FAILED") in without
    assert ("test_w.py::test_leaky", "ERROR") in _outcomes(checked)
    # the collection that judged test_leaky ran the cycle's finalizer: its warning is shown
    # there, with the leak, not in a later test
    leaky = _details(checked).split("ERROR at teardown of test_leaky")[1]
    assert "coroutine 'never' was never awaited" in leaky
    assert "leakguard: test test_w.py::test_leaky leaked 1 session" in leaky


def test_xdist_warn_mode_summary_in_the_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=HEADER + '''
@pytest.mark.parametrize("n", range(4))
def test_many(n):
    if n % 2 == 0:
        requests.Session()
''')
    r = _run(pytester, "-p", "xdist", "-n", "2", "--leakguard-mode=warn")
    r.assert_outcomes(passed=4)
    out = r.stdout.str().split("leakguard: leaked sessions and responses")[1]
    assert "leakguard: 2 leaked sessions (2 garbage-collected without close()) in 2 tests" \
           in out
    assert "leakguard: test test_x.py::test_many[0] leaked 1 session" in out
    assert "leakguard: test test_x.py::test_many[2] leaked 1 session" in out


def test_leaks_shown_in_warn_mode_count_for_the_exit_code(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=HEADER + '''
def test_leaks():
    requests.Session()
''')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEAKGUARD_EXITCODE", "3")
        r = _run(pytester, "--leakguard-mode=warn")
        clean = _run(pytester, "--leakguard-mode=warn", "-k", "nothing")
    r.assert_outcomes(passed=1)
    assert r.ret == 3
    assert clean.ret == 5  # no test ran: pytest's own status, untouched


def test_reports_start_at_the_test_not_at_the_pytest_script(pytester: pytest.Pytester) -> None:
    """Run by the `pytest` console script: its frame is runner noise, not the user's code."""
    import os
    import subprocess
    import sys

    pytester.makepyfile(test_script=HEADER + '''
def test_leaks():
    s = requests.Session()
    s.get(URL)

def test_streams():
    r = requests.get(URL, stream=True)
    assert r.status_code == 200
''')
    script = os.path.join(os.path.dirname(sys.executable), "pytest")
    out = subprocess.run([script, "-p", "no:cacheprovider", "-q", "--leakguard"],
                         cwd=str(pytester.path), capture_output=True, text=True,
                         timeout=120).stdout
    for created in ("Session created at", "Response created at"):
        stack = out.split(created)[1].split("leakguard:")[0]
        first_frame = stack.splitlines()[1]
        assert "test_script.py" in first_frame, out
    assert "_console_main" not in out, out
    head = out.split("leakguard: leaked sessions and responses")[1].splitlines()[1]
    assert head.startswith("leakguard: 1 leaked session (") and "; 1 leaked response" in head, out


@pytest.mark.parametrize("mode", ["--leakguard", "--leakguard-mode=warn"])
def test_exitcode_never_replaces_a_failing_run(pytester: pytest.Pytester, mode: str) -> None:
    """LEAKGUARD_EXITCODE applies only to a run that would have exited 0."""
    pytester.makepyfile(test_one=HEADER + '''
def test_fails():
    assert False

def test_leaks():
    requests.Session()
''')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEAKGUARD_EXITCODE", "3")
        r = _run(pytester, mode)
    assert r.ret == 1, r.stdout.str()
