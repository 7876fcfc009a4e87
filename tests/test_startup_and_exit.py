"""Activation by environment and the exit report, in real subprocesses."""

from __future__ import annotations

from conftest import SERVER_SNIPPET, run_python

GLOBAL_LEAK = SERVER_SNIPPET + '''
import requests
KEEP = requests.Session()  # LINE-GLOBAL
KEEP.get(URL)
'''


def test_leakguard_1_reports_a_global_session_once_at_exit() -> None:
    r = run_python(GLOBAL_LEAK, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # never prints to stdout
    assert r.stderr.count("still open at interpreter exit") == 1
    assert "leakguard: requests.Session still open at interpreter exit (1 open connection to " \
           "http://127.0.0.1:" in r.stderr
    assert "KEEP = requests.Session()  # LINE-GLOBAL" in r.stderr
    assert "leakguard: 1 leaked session (1 still open at exit)\n" in r.stderr
    assert "  1 x requests.Session created at app.py:" in r.stderr


def test_unset_or_falsy_leaves_it_dormant() -> None:
    for env in ({}, {"LEAKGUARD": "0"}, {"LEAKGUARD": "off"}, {"LEAKGUARD": ""}):
        r = run_python(GLOBAL_LEAK + "import sys; print(sorted(m for m in sys.modules "
                       "if m.startswith(('leakguard', 'wrapt'))))", env=env)
        assert r.returncode == 0
        assert r.stderr == ""
        assert r.stdout.strip() == "[]", env


def test_dormant_hook_imports_nothing() -> None:
    r = run_python("import sys; print(len(sys.modules), sorted(m for m in sys.modules "
                   "if 'leakguard' in m))")
    baseline = run_python("import sys; print(len(sys.modules))", args=["-S"])
    assert r.stdout.split(" ", 1)[1].strip() == "[]"
    assert r.stderr == ""
    assert int(baseline.stdout) <= int(r.stdout.split()[0])


def test_loop_of_leaks_gives_one_summary_group() -> None:
    code = SERVER_SNIPPET + '''
import requests
def fetch_all():
    for _ in range(4):
        s = requests.Session()
        s.get(URL)
fetch_all()
'''
    r = run_python(code, env={"LEAKGUARD": "yes"})
    assert r.stderr.count("garbage-collected without close()") == 4 + 1  # 4 reports + summary
    assert "leakguard: 4 leaked sessions (4 garbage-collected without close())" in r.stderr
    assert "  4 x requests.Session created at app.py:" in r.stderr
    assert " in fetch_all\n" in r.stderr


def test_exit_report_reaches_stderr_after_logging_shutdown() -> None:
    code = GLOBAL_LEAK + '''
import logging, sys
logging.basicConfig(stream=sys.stderr, format="LOGGED %(message)s")
logging.shutdown()
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0
    assert "still open at interpreter exit" in r.stderr
    assert "KEEP = requests.Session()" in r.stderr


def test_exit_report_goes_through_configured_logging() -> None:
    code = GLOBAL_LEAK + '''
import logging, sys
logging.basicConfig(stream=sys.stderr, format="LOGGED %(levelname)s %(name)s %(message)s")
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert "LOGGED WARNING leakguard requests.Session still open at interpreter " \
           "exit" in r.stderr
    assert "LOGGED WARNING leakguard 1 leaked session" in r.stderr


def test_debug_logging_shows_creation_and_close() -> None:
    code = SERVER_SNIPPET + '''
import requests
with requests.Session() as s:  # LINE-DEBUG
    s.get(URL)
'''
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_LOG": "debug"})
    assert "leakguard: requests.Session created in thread MainThread" in r.stderr
    assert "with requests.Session() as s:  # LINE-DEBUG" in r.stderr
    assert "leakguard: requests.Session closed after " in r.stderr
    assert "leaked" not in r.stderr


def test_bad_values_get_one_line_and_the_program_runs_on() -> None:
    r = run_python("import sys; print('ran'); sys.exit(3)",
                   env={"LEAKGUARD": "1", "LEAKGUARD_LOG": "loud",
                        "LEAKGUARD_STACK_DEPTH": "-4", "LEAKGUARD_TARGETS": "requests,curl"})
    assert r.stdout == "ran\n"
    assert r.returncode == 3
    lines = r.stderr.splitlines()
    assert len(lines) == 3
    assert lines[0] == ("leakguard: ignoring LEAKGUARD_LOG='loud': accepted values are "
                        "warning, debug")
    assert lines[1].startswith("leakguard: ignoring LEAKGUARD_STACK_DEPTH='-4': accepted")
    assert lines[2].startswith("leakguard: ignoring LEAKGUARD_TARGETS='requests,curl': "
                               "accepted values are comma lists of requests,aiohttp,")
    r = run_python("print('ran')", env={"LEAKGUARD": "maybe"})
    assert r.stdout == "ran\n" and r.returncode == 0
    assert r.stderr.startswith("leakguard: ignoring LEAKGUARD='maybe': accepted values are 1")
    assert len(r.stderr.splitlines()) == 1


def test_a_misspelt_variable_gets_one_line() -> None:
    r = run_python("import sys; print('ran'); sys.exit(5)",
                   env={"LEAKGUARD": "1", "LEAKGUARD_EXITCOD": "3"})
    assert r.stdout == "ran\n" and r.returncode == 5
    assert r.stderr.splitlines() == [
        "leakguard: ignoring LEAKGUARD_EXITCOD='3': not a leakguard variable; they are "
        "LEAKGUARD, LEAKGUARD_LOG, LEAKGUARD_STACK_DEPTH, LEAKGUARD_EXITCODE, LEAKGUARD_REPORT, "
        "LEAKGUARD_SUPPRESSIONS, LEAKGUARD_TARGETS, LEAKGUARD_RESPONSES, LEAKGUARD_MAX_OPEN, "
        "LEAKGUARD_INTERVAL, LEAKGUARD_SIGTERM, LEAKGUARD_METRICS"]


def test_targets_limit_what_is_patched() -> None:
    r = run_python(GLOBAL_LEAK, env={"LEAKGUARD": "1", "LEAKGUARD_TARGETS": "aiohttp"})
    assert r.stderr == ""


def test_stack_depth_limits_frames() -> None:
    code = GLOBAL_LEAK.replace("KEEP = requests.Session()  # LINE-GLOBAL", '''
def a(): return b()
def b(): return c()
def c(): return requests.Session()
KEEP = a()''')
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_STACK_DEPTH": "2"})
    assert "in c\n" in r.stderr and "in b\n" in r.stderr
    assert "in a\n" not in r.stderr


def test_import_leakguard_auto_switches_it_on() -> None:
    r = run_python("import leakguard.auto\n" + GLOBAL_LEAK)
    assert "still open at interpreter exit" in r.stderr
    r = run_python("import leakguard.auto\n" + GLOBAL_LEAK, env={"LEAKGUARD": "0"})
    assert r.stderr == ""


def test_aiohttp_leak_at_exit_is_reported_once() -> None:
    code = SERVER_SNIPPET + '''
import asyncio, aiohttp
KEEP = []
async def main():
    s = aiohttp.ClientSession()
    async with s.get(URL) as r:
        await r.read()
    KEEP.append(s)
asyncio.run(main())
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.stderr.count("leakguard: aiohttp.ClientSession ") == 1
    assert "leakguard: 1 leaked session" in r.stderr


def test_activation_happens_once_per_process() -> None:
    code = '''
import leakguard._startup as startup
startup.run(); startup.run()          # a .pth seen twice on sys.path
import leakguard.auto                 # and a sitecustomize line as well
import requests
KEEP = requests.Session()
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.stderr.count("still open at interpreter exit") == 1
    assert r.stderr.count("leakguard: 1 leaked session") == 1


def test_unsupported_library_version_is_skipped_and_named_when_asked_for() -> None:
    code = '''
import logging, requests
requests.__version__ = "2.0.0"        # pretend an old release is installed
import leakguard
leakguard.enable(targets=TARGETS)
KEEP = requests.Session()
print("ran")
'''
    explicit = run_python(code.replace("TARGETS", "['requests']"))
    assert explicit.stdout == "ran\n" and explicit.returncode == 0
    assert "leakguard: not tracking requests 2.0.0: supported versions are >=2.26" in \
        explicit.stderr
    assert "still open" not in explicit.stderr
    implicit = run_python(code.replace("TARGETS", "None"))
    assert implicit.stdout == "ran\n" and implicit.returncode == 0
    assert "not tracking" not in implicit.stderr  # a DEBUG line only
    debug = run_python(code.replace("TARGETS", "None").replace(
        "leakguard.enable(targets=None)", "leakguard.enable(targets=None, log='debug')"))
    assert "leakguard: not tracking requests 2.0.0" in debug.stderr
