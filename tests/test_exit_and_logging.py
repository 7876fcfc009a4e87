"""Issue 10 items 4, 7, 9 and 14: verdicts at exit, what logging shows, run's exit status."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from conftest import SERVER_SNIPPET, run_python

# -- item 4: a session that the program's own atexit handler closes is not a leak ----------

# Each order puts the program's handler, `import logging` and leakguard's switch-on in a
# different sequence; one real leak (KEPT) must still be reported through logging, intact.
ORDERS = {
    "leakguard at startup, then logging, then the handler": ("", '''
import atexit, logging, sys
logging.basicConfig(stream=sys.stderr, format="LOGGED %(levelname)s %(name)s %(message)s")
atexit.register(close_it)
'''),
    "handler, then logging, then enable()": ('''
import atexit
atexit.register(close_it)
import logging, sys
logging.basicConfig(stream=sys.stderr, format="LOGGED %(levelname)s %(name)s %(message)s")
import leakguard
leakguard.enable(exitcode=3)
''', ""),
    "logging, then handler, then enable()": ('''
import atexit, logging, sys
logging.basicConfig(stream=sys.stderr, format="LOGGED %(levelname)s %(name)s %(message)s")
atexit.register(close_it)
import leakguard
leakguard.enable(exitcode=3)
''', ""),
    "leakguard at startup, handler before logging is configured": ("", '''
import atexit
atexit.register(close_it)
import logging, sys
logging.basicConfig(stream=sys.stderr, format="LOGGED %(levelname)s %(name)s %(message)s")
'''),
}


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_atexit_close_is_not_a_leak(order: str, client: str) -> None:
    before, after = ORDERS[order]
    make = "requests.Session()" if client == "requests" else "httpx.Client()"
    code = SERVER_SNIPPET + '''
HOLDER = []
def close_it():
    HOLDER[0].close()
''' + before + f'''
import requests, httpx
HOLDER.append({make})
HOLDER[0].get(URL)
KEPT = requests.Session()  # KEPT-LINE
KEPT.get(URL)
''' + after
    env = {"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "3"} if not before else {}
    r = run_python(code, env=env)
    assert r.returncode == 3, r.stderr
    assert r.stderr.count("still open at interpreter exit") == 1, r.stderr
    assert "LOGGED WARNING leakguard requests.Session still open at interpreter exit " \
           "(1 open connection to http://127.0.0.1:" in r.stderr
    assert "KEPT = requests.Session()  # KEPT-LINE" in r.stderr
    assert "LOGGED WARNING leakguard 1 leaked session (1 still open at exit)" in r.stderr
    assert "Traceback" not in r.stderr and "Logging error" not in r.stderr


def test_atexit_close_alone_exits_zero() -> None:
    code = SERVER_SNIPPET + '''
import atexit, requests, httpx
S = requests.Session(); S.get(URL)
C = httpx.Client(); C.get(URL)
atexit.register(S.close)
atexit.register(C.close)
'''
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "3"})
    assert (r.returncode, r.stderr) == (0, "")


def test_every_exit_handler_runs_once() -> None:
    code = '''
import atexit
atexit.register(print, "registered before leakguard")
import leakguard, requests
leakguard.enable(exitcode=3)
atexit.register(print, "registered after")
KEEP = requests.Session()
'''
    r = run_python(code)
    assert r.returncode == 3
    assert r.stdout.splitlines() == ["registered after", "registered before leakguard"]


# -- item 7: the program's logging configuration ----------------------------------------------

DROPPED = SERVER_SNIPPET + '''
import requests
def dropped():
    requests.Session().get(URL)
'''


def test_root_at_error_still_shows_leak_warnings() -> None:
    code = '''
import logging
logging.basicConfig(level=logging.ERROR)
''' + DROPPED + "dropped()\n"
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "3"})
    assert r.returncode == 3
    assert "WARNING:leakguard:requests.Session garbage-collected without close() " \
           "(1 open connection to http://127.0.0.1:" in r.stderr
    assert "WARNING:leakguard:1 leaked session (1 garbage-collected without close())" \
        in r.stderr
    assert "leakguard:leakguard:" not in r.stderr


def test_a_configured_leakguard_logger_is_obeyed() -> None:
    code = '''
import logging
logging.basicConfig(level=logging.DEBUG)
logging.getLogger("leakguard").setLevel(logging.ERROR)
''' + DROPPED + "dropped()\n"
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0
    assert "leakguard" not in r.stderr


def test_without_logging_set_up_stderr_keeps_the_prefix() -> None:
    r = run_python(DROPPED + "dropped()\n", env={"LEAKGUARD": "1"})
    assert r.stderr.startswith("leakguard: requests.Session garbage-collected without close()")
    assert "\nleakguard: 1 leaked session" in r.stderr


# -- item 14: a handler whose stream was closed -----------------------------------------------

def test_dead_handler_report_reaches_stderr_once() -> None:
    code = '''
import io, logging
stream = io.StringIO()
handler = logging.StreamHandler(stream)
logging.getLogger().addHandler(handler)
''' + DROPPED + '''
stream.close()  # as pytest's capture does to a handler a library left behind
dropped()
KEEP = requests.Session(); KEEP.get(URL)
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0
    assert "Logging error" not in r.stderr and "ValueError" not in r.stderr, r.stderr
    assert r.stderr.count("leakguard: requests.Session garbage-collected without close()") == 1
    assert r.stderr.count("leakguard: requests.Session still open at interpreter exit") == 1
    assert r.stderr.count("leakguard: 2 leaked sessions") == 1


def test_dead_handler_next_to_a_live_one() -> None:
    code = '''
import io, logging, sys
dead = io.StringIO()
logging.getLogger().addHandler(logging.StreamHandler(dead))
live = logging.StreamHandler(sys.stderr)
live.setFormatter(logging.Formatter("LIVE %(message)s"))
logging.getLogger().addHandler(live)
dead.close()
''' + DROPPED + "dropped()\n"
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert "Logging error" not in r.stderr, r.stderr
    assert r.stderr.count("requests.Session garbage-collected without close()") == 1
    assert r.stderr.count("LIVE 1 leaked session") == 1
    assert r.stderr.startswith("LIVE requests.Session garbage-collected without close()")


# -- item 9: leaks of Pool workers that are terminated count for `leakguard run` ---------------

POOL_APP = SERVER_SNIPPET + '''
import multiprocessing, requests

def work(n):
    requests.Session().get(URL)  # dropped: reported in the worker, at once
    return n

if __name__ == "__main__":
    with multiprocessing.Pool(2) as pool:  # leaving the block terminates the workers
        assert sorted(pool.map(work, range(4))) == [0, 1, 2, 3]
'''


def test_run_exitcode_counts_terminated_pool_workers() -> None:
    folder = tempfile.mkdtemp(prefix="leakguard-test-")
    with open(os.path.join(folder, "app.py"), "w") as f:
        f.write(textwrap.dedent(POOL_APP))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD")}
    # SIG_DFL, so terminate() kills the workers at once: what counts is the report they made
    # before (a SIGTERM report would be a second chance, tested with the SIGTERM option)
    env["LEAKGUARD_SIGTERM"] = "0"
    for attempt in range(4):
        r = subprocess.run([sys.executable, "-m", "leakguard", "run", "--exitcode", "3", "--",
                            sys.executable, "app.py"], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.stderr.count("garbage-collected without close()") >= 4, r.stderr
        assert r.returncode == 3, (attempt, r.stderr)


def test_the_314_path_judges_after_later_handlers() -> None:
    # From 3.14 atexit iterates a copy, so the verdict does not run the others itself: it
    # stays where enable() registered it. Forced here on any version.
    code = SERVER_SNIPPET + '''
import leakguard._exit
leakguard._exit._NESTED_RUN_SAFE = False
import atexit, leakguard, requests
leakguard.enable(exitcode=3)
S = requests.Session(); S.get(URL)
atexit.register(S.close)
KEPT = requests.Session(); KEPT.get(URL)
atexit.register(print, "program handler ran")
'''
    r = run_python(code)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "program handler ran\n"
    assert r.stderr.count("still open at interpreter exit") == 1
    assert "leakguard: requests.Session still open at interpreter exit (1 open connection" \
        in r.stderr
    assert "KEPT = requests.Session()" in r.stderr


MAIN_RETURNS = '''
import sys
import leakguard, requests
KEEP = []
def main():
    leakguard.enable(exitcode=3)
    KEEP.append(requests.Session())
    return {status}
{end}
'''


@pytest.mark.parametrize(("status", "end", "expected"), [
    (1, "sys.exit(main())", 1),  # sys.exit looked up before enable(): status unknown to it
    (1, "raise SystemExit(main())", 1),
    (0, "main()", 3),  # ran to its end: exits 0, so the leak status applies
    (0, "sys.exit(main())", 0),  # unknown status: never replaced
])
def test_enable_in_main_never_replaces_an_unknown_status(status: int, end: str,
                                                        expected: int) -> None:
    r = run_python(MAIN_RETURNS.format(status=status, end=end))
    assert r.returncode == expected, r.stderr
    assert "still open at interpreter exit" in r.stderr


@pytest.mark.parametrize(("end", "expected"), [
    ("raise SystemExit(1)", 1), ("raise SystemExit(0)", 0), ("sys.exit(1)", 1), ("pass", 3)])
def test_leakguard_at_startup_never_replaces_an_unseen_status(end: str, expected: int) -> None:
    r = run_python(f"import sys, requests\nKEEP = requests.Session()\n{end}\n",
                   env={"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "3"})
    assert r.returncode == expected, r.stderr
    assert "still open at interpreter exit" in r.stderr


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring: before 3.12 unseen")
@pytest.mark.parametrize("how", ["-c", "-m"])
@pytest.mark.parametrize(("end", "expected"), [
    ("raise SystemExit(1)", 1), ("raise SystemExit(0)", 0), ("sys.exit(1)", 1), ("pass", 3)])
def test_under_dash_m_and_c_an_unseen_status_is_never_replaced(tmp_path: Path, how: str,
                                                               end: str, expected: int) -> None:
    code = f"import sys, requests\nKEEP = requests.Session()\n{end}\n"
    (tmp_path / "leaky.py").write_text(code)
    argv = [sys.executable, "-c", code] if how == "-c" else [sys.executable, "-m", "leaky"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD")}
    env.update(LEAKGUARD="1", LEAKGUARD_EXITCODE="3")
    r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == expected, r.stderr
    assert "still open at interpreter exit" in r.stderr
