"""The plugin's garbage collections: none per test in warn mode, none when a holder proves
a session alive in fail mode, and every leak still pinned on the test that made it."""

from __future__ import annotations

import re

import pytest
from conftest import SERVER_SNIPPET, run_python

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
    out = r.stdout.str().split("leakguard: leaked sessions and responses")[1]
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
    out = r.stdout.str().split("leakguard: leaked sessions and responses")[1]
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


OWNERS_CONFTEST = '''
import pytest, requests

@pytest.fixture
def fn_leak():
    return requests.Session()

@pytest.fixture(scope="module")
def mod_leak():
    return requests.Session()

@pytest.fixture(scope="session")
def sess_leak():
    return requests.Session()
'''

OWNERS_TESTS = HEADER + '''
KEEP = []

def test_drops():
    requests.Session()

def test_keeps():
    KEEP.append(requests.Session())

def test_fn(fn_leak):
    pass

def test_mod(mod_leak, sess_leak):
    pass

@pytest.mark.parametrize("n", range(4))
def test_clean(n):
    pass
'''


def _site_tests(section: str) -> dict[str, str]:
    """creation site -> the `in ...` line under it, from the grouped summary."""
    lines = section.splitlines()
    sites = {}
    for n, line in enumerate(lines):
        found = re.match(r"\s+\d+ x requests\.Session created at \S+ in (\w+)$", line)
        if found:
            sites[found.group(1)] = lines[n + 1].strip()
    return sites


@pytest.mark.parametrize("how", ["warn", "warn, xdist", "LEAKGUARD=1, xdist"])
def test_every_pinned_leak_names_its_test(pytester: pytest.Pytester, how: str) -> None:
    pytester.makeconftest(OWNERS_CONFTEST)
    pytester.makepyfile(test_o=OWNERS_TESTS)
    args = ["-p", "no:randomly"]
    if "xdist" in how:  # one worker per file: the fixtures are torn down in known tests
        args += ["-p", "xdist", "-n", "2", "--dist", "loadfile"]
    with pytest.MonkeyPatch.context() as mp:
        if how.startswith("LEAKGUARD=1"):
            mp.setenv("LEAKGUARD", "1")
        else:
            args.append("--leakguard-mode=warn")
        r = _run(pytester, *args)
    r.assert_outcomes(passed=8)
    section = r.stdout.str().split("leakguard: leaked sessions and responses")[1]
    assert "in 4 tests" in section.splitlines()[1]
    last = "test_o.py::test_clean[3]"  # tears down the module and session fixtures
    assert _site_tests(section) == {
        "test_drops": "in test_o.py::test_drops", "test_keeps": "in test_o.py::test_keeps",
        "fn_leak": "in test_o.py::test_fn", "mod_leak": f"in {last}",
        "sess_leak": f"in {last}"}
    assert "outside any test" not in section
    assert "leakguard: fixture 'fn_leak' (function scope) leaked 1 session, torn down after " \
           "test test_o.py::test_fn" in section
    for name in ("mod_leak' (module", "sess_leak' (session"):
        assert f"leakguard: fixture '{name} scope) leaked 1 session, torn down after " \
               f"test {last}" in section


ALLOW_TESTS = HEADER + '''
@pytest.fixture(scope="module")
def never_closed():
    return requests.Session()

def test_uses_it(never_closed):
    pass

@pytest.mark.leakguard(allow=True)
def test_allowed_tears_it_down(never_closed):
    requests.Session()  # its own leak: exempt
'''


@pytest.mark.parametrize("xdist", [False, True])
def test_a_fixtures_leak_never_fails_an_allowed_test(pytester: pytest.Pytester,
                                                     xdist: bool) -> None:
    pytester.makepyfile(test_allow=ALLOW_TESTS)
    args = ["-p", "no:randomly", "--leakguard"]
    if xdist:  # a worker for the file: it tears the fixture down in the allowed test
        args += ["-p", "xdist", "-n", "2", "--dist", "loadfile"]
    r = _run(pytester, *args)
    r.assert_outcomes(passed=2)
    assert r.ret == 1  # the run still fails: the leak is shown in the summary
    out = r.stdout.str()
    assert "ERROR" not in out
    section = out.split("leakguard: leaked sessions and responses")[1]
    assert "leakguard: 1 leaked session (" in section
    assert "1 x requests.Session created at test_allow.py:" in section
    assert "leakguard: fixture 'never_closed' (module scope) leaked 1 session, torn down " \
           "after test test_allow.py::test_allowed_tears_it_down" in section
    assert "(marked allow=True: it passes)" in section
    assert "return requests.Session()" in section  # its full report: failed in no test


FOLDER_TESTS = HEADER + '''
import subprocess, sys

@pytest.mark.parametrize("n", range({leaks}))
def test_leaks(n):
    requests.Session()

def test_child():
    subprocess.run([sys.executable, "-c", "import requests; S = requests.Session()"],
                   check=True)

def test_clean():
    with requests.Session() as s:
        s.get(URL)
'''


@pytest.mark.parametrize("how", ["clean", "leaks", "many leaks, warn", "many leaks, report",
                                 "leaks, xdist", "many leaks, LEAKGUARD=1, xdist"])
def test_the_runs_private_folder_is_removed_unless_the_output_names_a_file_in_it(
        pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, how: str) -> None:
    tmp = tmp_path_factory.mktemp("tmpdir")
    leaks = 0 if how == "clean" else 25 if "many" in how else 2
    if how == "clean":
        pytester.makepyfile(test_f=HEADER + "def test_clean():\n    requests.get(URL)\n")
    else:
        pytester.makepyfile(test_f=FOLDER_TESTS.replace("{leaks}", str(leaks)))
    args = ["-p", "xdist", "-n", "2"] if "xdist" in how else []
    report = pytester.path / "report.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmp))  # the folder is made there
        if "report" in how:
            mp.setenv("LEAKGUARD_REPORT", str(report))
        if "LEAKGUARD=1" in how:
            mp.setenv("LEAKGUARD", "1")
        else:
            args.append("--leakguard-mode=warn" if "warn" in how or "report" in how
                        else "--leakguard")
        r = _run(pytester, *args)
    out = r.stdout.str()
    left = sorted(p.name for p in tmp.rglob("*"))
    named = re.findall(r"leakguard: every report, as JSON Lines: (\S+)", out)
    if how.startswith("many") and "report" not in how:
        # the output names the file: it alone stays
        assert len(named) == 1 and named[0].startswith(str(tmp)), out
        assert left == [named[0].split("/")[-2], "leaks.jsonl"], left
        assert len(open(named[0]).read().splitlines()) == leaks + 1  # and the child's
    else:
        assert left == [], (left, out)
        if "report" in how:
            assert named == [str(report)]
            assert len(report.read_text().splitlines()) == leaks + 1


def test_looking_for_holders_reads_no_attribute_of_a_module() -> None:
    r = run_python('''
        import importlib.util, os, sys, types
        import requests
        import leakguard
        from leakguard import _settle
        from leakguard._tracker import TRACKER

        with open("lazy_target.py", "w") as f:
            f.write("open('loaded.txt', 'w').write('loaded')\\n")
        sys.path.insert(0, os.getcwd())
        spec = importlib.util.find_spec("lazy_target")
        spec.loader = importlib.util.LazyLoader(spec.loader)
        lazy = importlib.util.module_from_spec(spec)
        sys.modules["lazy_target"] = lazy  # loads itself when an attribute is read
        spec.loader.exec_module(lazy)
        del lazy

        leakguard.enable()
        holder = types.ModuleType("holder")
        sys.modules["holder"] = holder
        holder.KEEP = [requests.Session()]
        holder.TABLE = [{"n": n} for n in range(5000)]  # too big to look into: skipped
        holder.TABLE.append(requests.Session())
        kept, in_table = TRACKER.live_records()
        print("held", _settle.held([kept, in_table]) == {kept.key})
        print("lazy", os.path.exists("loaded.txt"))
        holder.KEEP[0].close(); holder.TABLE[-1].close()
    ''')
    assert r.stdout.split() == ["held", "True", "lazy", "False"], (r.stdout, r.stderr)
