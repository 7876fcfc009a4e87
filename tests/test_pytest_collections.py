"""The plugin's garbage collections: none per test in warn mode, none when a holder proves
a session alive in fail mode, and every leak still pinned on the test that made it."""

from __future__ import annotations

import re

import pytest
from conftest import SERVER_SNIPPET

HEADER = SERVER_SNIPPET + "import gc, pytest, requests\n"

FULL_COUNTER = '''
import gc, pytest
FULL = []
def _count(phase, info):
    if phase == "start" and info["generation"] == 2:
        FULL.append(1)
gc.disable()  # only explicit collections (the plugin's, a test's) happen
gc.callbacks.append(_count)

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"FULL-GC={len(FULL)}")
'''

SUITE = HEADER + '''
KEEP = []

class Holder:
    def __init__(self, closes):
        self.me = self
        self.closes = closes
        self.session = requests.Session()

    def __del__(self):
        if self.closes:
            self.session.close()

def _old_garbage(closes):
    # a cycle that young collections cannot free: it is in the oldest generation
    h = Holder(closes)
    gc.collect(1)
    del h

def test_keeps_1():
    KEEP.append(requests.Session())

def test_keeps_2():
    KEEP.append(requests.Session())

def test_old_cycle_closed_by_its_finalizer():
    _old_garbage(True)

def test_old_cycle_never_closed():
    _old_garbage(False)

@pytest.mark.parametrize("n", range(5))
def test_clean(n):
    with requests.Session() as s:
        s.get(URL)
'''


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args)


def _full(r: pytest.RunResult) -> int:
    found = re.findall(r"FULL-GC=(\d+)", r.stdout.str())
    assert found, r.stdout.str()
    return int(found[-1])


@pytest.mark.parametrize("how", ["--leakguard-mode=warn", "LEAKGUARD=1"])
def test_warn_mode_runs_one_full_collection_for_the_whole_run(
        pytester: pytest.Pytester, how: str) -> None:
    pytester.makeconftest(FULL_COUNTER)
    pytester.makepyfile(test_s=SUITE)
    with pytest.MonkeyPatch.context() as mp:
        if how == "LEAKGUARD=1":
            mp.setenv("LEAKGUARD", "1")
            r = _run(pytester)
        else:
            r = _run(pytester, how)
    r.assert_outcomes(passed=9)
    assert _full(r) == 1  # at the end, for every suspect at once; none per test
    out = r.stdout.str().split("leakguard: leaked sessions")[1]
    assert "3 leaked sessions (1 garbage-collected without close(), 2 still open after " \
           "its test or fixture) in 3 tests" in out
    for name in ("test_keeps_1", "test_keeps_2", "test_old_cycle_never_closed"):
        assert f"leakguard: test test_s.py::{name} leaked 1 session" in out
    assert "closed_by_its_finalizer" not in out and "test_clean" not in out


def test_warn_mode_judges_suspects_after_the_interpreters_own_full_collection(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FULL_COUNTER)
    pytester.makepyfile(test_s=SUITE + '''
def test_zz_collects():
    gc.collect()  # the program's own: the suspects are judged after it, at no cost

def test_zz_after():
    pass
''')
    r = _run(pytester, "--leakguard-mode=warn", "-p", "no:randomly")
    r.assert_outcomes(passed=11)
    assert _full(r) == 1  # the test's own; none left for the end
    out = r.stdout.str().split("leakguard: leaked sessions")[1]
    assert "in 3 tests" in out
    for name in ("test_keeps_1", "test_keeps_2", "test_old_cycle_never_closed"):
        assert f"leakguard: test test_s.py::{name} leaked 1 session" in out
    assert "test_zz" not in out


def test_fail_mode_needs_no_full_collection_for_a_session_a_module_holds(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FULL_COUNTER)
    pytester.makepyfile(test_s=SUITE)
    r = _run(pytester, "--leakguard")
    r.assert_outcomes(passed=9, errors=3)
    # only the old cycles need one; the kept sessions are held by the module's KEEP
    assert _full(r) == 2
    out = r.stdout.str().split("short test summary info")[0]
    for name in ("test_keeps_1", "test_keeps_2", "test_old_cycle_never_closed"):
        assert f"ERROR at teardown of {name}" in out
        assert f"leakguard: test test_s.py::{name} leaked 1 session" in out
    assert "ERROR at teardown of test_old_cycle_closed_by_its_finalizer" not in out
