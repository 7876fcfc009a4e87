"""LEAKGUARD_SIGTERM: the exit report when SIGTERM ends a program without a handler of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Holds two sessions, says "ready", then waits to be ended.
SERVER = textwrap.dedent('''
    import os, signal, sys, time, requests
    {before}
    KEPT = [requests.Session() for _ in range(2)]
    {after}
    print("ready", os.getpid(), flush=True)
    time.sleep(60)
    print("not killed", flush=True)
''')


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD")}
    env.update(extra)
    return env


def _terminate(argv: list[str], env: dict[str, str], cwd: Path,
               wait_for: str = "ready") -> tuple[int, str, str]:
    """Start argv, wait for its ready line, send SIGTERM, return (status, stdout, stderr)."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith(wait_for), (first, proc.stderr.read() if proc.stderr else "")
    pid = int(first.split()[1])
    os.kill(pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, first + out, err


def _script(tmp_path: Path, before: str = "", after: str = "") -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER.format(before=before, after=after))
    return path


def test_sigterm_writes_the_exit_report_then_dies_of_sigterm(tmp_path: Path) -> None:
    report = tmp_path / "r.jsonl"
    status, out, err = _terminate([sys.executable, str(_script(tmp_path))],
                                  _env(LEAKGUARD="1", LEAKGUARD_REPORT=str(report)), tmp_path)
    assert status == -signal.SIGTERM
    assert "not killed" not in out
    assert err.count("requests.Session still open at interpreter exit") == 2
    assert "leakguard: 2 leaked sessions (2 still open at exit)" in err
    assert "  2 x requests.Session created at server.py:4 in <" in err
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["event"] for r in records] == ["exit", "exit"]


def test_status_seen_by_a_shell_is_143(tmp_path: Path) -> None:
    script = _script(tmp_path)
    r = subprocess.run(["sh", "-c", f'"{sys.executable}" "{script}" > out.txt & pid=$!; '
                        "until grep -q ready out.txt; do sleep 0.1; done; "
                        'kill -TERM $pid; wait $pid; echo "status $?"'],
                       env=_env(LEAKGUARD="1"), cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert "status 143" in r.stdout, (r.stdout, r.stderr)
    assert "leakguard: 2 leaked sessions (2 still open at exit)" in r.stderr


def test_the_programs_own_handler_runs_and_decides(tmp_path: Path) -> None:
    # installed after leakguard started (LEAKGUARD=1): it replaces ours, and exits 0
    after = "signal.signal(signal.SIGTERM, lambda *a: (print('own handler', flush=True), " \
            "sys.exit(0)))"
    status, out, err = _terminate([sys.executable, str(_script(tmp_path, after=after))],
                                  _env(LEAKGUARD="1"), tmp_path)
    assert status == 0
    assert "own handler" in out
    # the process then exits normally: the ordinary exit report, once
    assert err.count("leakguard: 2 leaked sessions (2 still open at exit)") == 1


def test_a_handler_installed_before_enable_is_never_replaced(tmp_path: Path) -> None:
    before = textwrap.dedent('''
        def own(signum, frame):
            print("own handler", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, own)
        import leakguard
        leakguard.enable()
        assert signal.getsignal(signal.SIGTERM) is own
    ''')
    status, out, err = _terminate([sys.executable, str(_script(tmp_path, before=before))],
                                  _env(), tmp_path)
    assert status == 3
    assert "own handler" in out
    assert err.count("leakguard: 2 leaked sessions (2 still open at exit)") == 1


def test_ignored_sigterm_stays_ignored(tmp_path: Path) -> None:
    before = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nimport leakguard\n" \
             "leakguard.enable()\nassert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN"
    script = _script(tmp_path, before=before)
    proc = subprocess.Popen([sys.executable, str(script)], env=_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("ready")
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    proc.kill()
    proc.communicate()


def test_leakguard_sigterm_0_leaves_sigterm_alone(tmp_path: Path) -> None:
    status, _, err = _terminate([sys.executable, str(_script(tmp_path))],
                                _env(LEAKGUARD="1", LEAKGUARD_SIGTERM="0"), tmp_path)
    assert status == -signal.SIGTERM
    assert err == ""


def test_disable_puts_the_default_back() -> None:
    import leakguard

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    leakguard.enable()
    try:
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        leakguard.disable()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_run_exitcode_counts_a_terminated_childs_leaks(tmp_path: Path) -> None:
    # the child is ended by SIGTERM: its report is written, run exits as a shell would (143)
    script = _script(tmp_path)
    status, _, err = _terminate(
        [sys.executable, "-m", "leakguard", "run", "--exitcode", "7", "--",
         sys.executable, str(script)], _env(), tmp_path)
    assert status == 128 + signal.SIGTERM
    assert "leakguard: 2 leaked sessions (2 still open at exit)" in err


@pytest.mark.parametrize("exported", ["", "1"])
def test_run_passes_its_sigterm_on_to_the_command(tmp_path: Path, exported: str) -> None:
    # docker stop signals `leakguard run` (process 1 of the container), not its child; also
    # with LEAKGUARD=1 exported, which makes leakguard active in `run` itself
    script = _script(tmp_path)
    env = _env(LEAKGUARD=exported) if exported else _env()
    proc = subprocess.Popen([sys.executable, "-m", "leakguard", "run", "--", sys.executable,
                             str(script)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("ready")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "leakguard: 2 leaked sessions (2 still open at exit)" in err


TESTS_THEN_WAIT = '''
import os, time, requests

def test_leaks():
    requests.Session()

def test_zwaits():
    with open(os.environ["READY_FILE"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
'''


@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]])
def test_pytest_killed_by_sigterm_leaves_no_private_folder(tmp_path: Path,
                                                           xdist: list[str]) -> None:
    """The run's private folder (leaks.jsonl) goes even when SIGTERM ends the run."""
    import time

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp_path / "test_sig.py").write_text(TESTS_THEN_WAIT)
    ready = tmp_path / "ready"
    env = _env(TMPDIR=str(tmp), READY_FILE=str(ready))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--leakguard",
         "--leakguard-mode=warn", *xdist, "test_sig.py"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), proc.communicate()
    time.sleep(0.3)
    folders = list(tmp.glob("leakguard-pytest-*"))
    assert folders and (folders[0] / "leaks.jsonl").exists()  # the leak was pinned
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, (out, err)
    time.sleep(0.5)  # xdist's workers end with it
    assert list(tmp.glob("leakguard-pytest-*")) == [], (out, err)


# SIGTERM lands in the main thread while it holds a lock the report needs: the tracker's
# (inside leakguard's own code, as at every session created), or a logging handler's
IN_A_LOCK = {
    "tracker": textwrap.dedent('''
        from leakguard._tracker import TRACKER
        real = TRACKER.sites
        class Sites:
            def __getattr__(self, name):
                return getattr(real, name)
            def opened(self, record):  # called by the tracker with its lock held
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100000):  # the handler runs in here
                    pass
                return real.opened(record)
        TRACKER.sites = Sites()
        KEPT.append(requests.Session())
    '''),
    "logging": textwrap.dedent('''
        import logging
        class Handler(logging.StreamHandler):
            def emit(self, record):  # called by logging with the handler's lock held
                if record.getMessage() == "term":
                    os.kill(os.getpid(), signal.SIGTERM)
                    for _ in range(100000):  # the handler runs in here
                        pass
                super().emit(record)
        logging.getLogger().addHandler(Handler())
        logging.getLogger().warning("term")
    '''),
}


@pytest.mark.parametrize("lock", sorted(IN_A_LOCK))
def test_sigterm_while_the_main_thread_holds_a_lock_the_report_needs(tmp_path: Path,
                                                                     lock: str) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER.format(before="", after=IN_A_LOCK[lock]))
    started = time.monotonic()
    r = subprocess.run([sys.executable, str(script)], env=_env(LEAKGUARD="1"), cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert r.returncode == -signal.SIGTERM, (r.stdout, r.stderr)
    # the main thread runs on (it prints "ready") while the report is written, then dies
    assert "not killed" not in r.stdout
    sessions = 3 if lock == "tracker" else 2
    assert f"{sessions} leaked sessions ({sessions} still open at exit)" in r.stderr, r.stderr
    assert took < 8, took  # not the 10 s that the report may take before the process dies
