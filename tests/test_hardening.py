"""Hardening: load, faults, fork safety, hostile input, secrets and files written safely."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import json
import os
import random
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest
import urllib3
from conftest import SERVER_SNIPPET, Reports, run_python
from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard import _config, _suppress, _tracker


def _count_leaks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the sequence number of every record the tracker hands to the reporter."""
    seen: list[int] = []
    original = _tracker.TRACKER.on_leaks
    assert original is not None

    def counting(items: list[tuple[_tracker.Record, str]]) -> None:
        seen.extend(r.seq for r, _ in items)
        original(items)

    monkeypatch.setattr(_tracker.TRACKER, "on_leaks", counting)
    return seen


def test_threads_with_gc_firing_everywhere(reports: Reports, monkeypatch: pytest.MonkeyPatch,
                                           stress: bool) -> None:
    threads, per_thread = 32, (10_000 if stress else 150)
    seen = _count_leaks(monkeypatch)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for i in range(per_thread):
                pm = urllib3.PoolManager()
                if i % 2 == 0:
                    pm.clear()
                if rnd.random() < 0.05:
                    gc.collect()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    old = gc.get_threshold()
    gc.set_threshold(1)  # collections fire inside leakguard's own code, too
    # the watchdog: a deadlock ends the run with every thread's traceback
    faulthandler.dump_traceback_later(7200 if stress else 300, exit=True)
    try:
        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        faulthandler.cancel_dump_traceback_later()
        gc.set_threshold(*old)
    gc.collect()
    _tracker.TRACKER.drain()
    assert errors == []
    dropped = threads * per_thread // 2
    assert len(seen) == dropped  # exactly the dropped ones
    assert len(set(seen)) == len(seen)  # each once
    assert len(_tracker.TRACKER) == 0  # nothing retained
    assert len(reports.warnings()) == dropped


def test_asyncio_tasks_each_named(reports: Reports, server_url: str, stress: bool) -> None:
    tasks = 1000 if stress else 300

    async def one(n: int) -> None:
        s = aiohttp.ClientSession()
        async with s.get(server_url) as r:
            await r.read()
        if n % 10:
            await s.close()

    async def main() -> None:
        limit = asyncio.Semaphore(100)

        async def bounded(n: int) -> None:
            async with limit:
                await one(n)

        await asyncio.gather(*(asyncio.create_task(bounded(n), name=f"worker-{n}")
                               for n in range(tasks)))

    asyncio.run(main())
    gc.collect()
    # 100 sessions open at once from one line: also the max-open warning (not a leak)
    texts = [t for t in reports.warnings() if " open at once, " not in t]
    assert len(texts) == tasks // 10
    named = sorted(int(t.split(", task worker-")[1].split(";")[0].split(")")[0]) for t in texts)
    assert named == list(range(0, tasks, 10))


def test_fork_while_another_thread_holds_the_lock(tmp_path: Path) -> None:
    code = '''
import os, threading, time, sys
import leakguard, urllib3
leakguard.enable()
from leakguard._tracker import TRACKER
KEEP = urllib3.PoolManager()        # the parent's: never reported by the child
held = threading.Event()
def hold():
    with TRACKER._lock:
        held.set()
        time.sleep(2)
threading.Thread(target=hold, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    pm = urllib3.PoolManager(); pm.clear()   # would deadlock on an inherited held lock
    LEAK = urllib3.PoolManager()
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print("child", pid, os.waitstatus_to_exitcode(status))
KEEP.clear()
'''
    report = tmp_path / "r.jsonl"
    r = run_python(code, env={"LEAKGUARD_REPORT": str(report)}, timeout=60)
    assert r.returncode == 0, r.stderr
    _, child, status = r.stdout.split()
    assert status == "0"
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(rec["pid"], rec["stack"][-1]["code"]) for rec in records] == \
        [(int(child), "LEAK = urllib3.PoolManager()")]


# -- faults -------------------------------------------------------------------------------

FAULT_PROGRAM = SERVER_SNIPPET + '''
import requests, sys
def dropped():
    requests.Session().get(URL)
dropped()
KEEP = requests.Session()
print("program output")
'''


def _same_program_behaviour(r: subprocess.CompletedProcess[str], code: int = 0) -> None:
    assert r.stdout == "program output\n"
    assert r.returncode == code


def test_fault_logging_handler_raises() -> None:
    code = FAULT_PROGRAM.replace("import requests, sys", '''import requests, sys, logging
class Broken(logging.Handler):
    def emit(self, record):
        raise RuntimeError("handler is broken")
    def handle(self, record):
        self.emit(record)
logging.getLogger().addHandler(Broken())''')
    r = run_python(code, env={"LEAKGUARD": "1"})
    _same_program_behaviour(r)
    assert r.stderr.count("leakguard: internal error in logging a report") == 1
    assert "garbage-collected without close()" in r.stderr  # the report went to stderr
    assert "still open at interpreter exit" in r.stderr


def test_fault_stderr_closed() -> None:
    code = FAULT_PROGRAM + "sys.stderr.close()\nsys.exit(3)\n"
    r = run_python(code, env={"LEAKGUARD": "1"})
    _same_program_behaviour(r, 3)


def test_fault_report_file_unwritable(tmp_path: Path) -> None:
    for path in ("/dev/null/not-a-dir/r.jsonl", str(tmp_path / "missing" / "r.jsonl")):
        r = run_python(FAULT_PROGRAM, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": path})
        _same_program_behaviour(r)
        assert r.stderr.count("leakguard: cannot write the leak report") == 1


def test_fault_disk_full(tmp_path: Path) -> None:
    code = FAULT_PROGRAM.replace("import requests, sys", '''import requests, sys, os, errno
_write = os.write
def full(fd, data):
    if fd > 2:
        raise OSError(errno.ENOSPC, "No space left on device")
    return _write(fd, data)
os.write = full''')
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(tmp_path / "r")})
    _same_program_behaviour(r)
    assert r.stderr.count("No space left on device") == 1


def test_fault_finalizers_during_interpreter_shutdown() -> None:
    code = FAULT_PROGRAM + '''
class Cycle:
    pass
c = Cycle(); c.me = c; c.session = requests.Session()
import gc; gc.disable()   # the cycle survives until the interpreter's final collection
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    _same_program_behaviour(r)
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("still open at interpreter exit") == 2  # KEEP and the cycle's


def test_fault_library_internals_not_as_expected(reports: Reports, server_url: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 internal_errors_fail: list[str]) -> None:
    import requests

    from leakguard.integrations.aiohttp import AiohttpIntegration
    from leakguard.integrations.requests import RequestsIntegration

    def missing(self: object, obj: object) -> object:
        raise AttributeError("'Session' object has no attribute 'adapters'")

    monkeypatch.setattr(RequestsIntegration, "resources", missing)
    monkeypatch.setattr(AiohttpIntegration, "is_closed", missing)
    s = requests.Session()
    assert s.get(server_url).status_code == 200
    s.close()

    async def main() -> None:
        async with aiohttp.ClientSession() as a:
            async with a.get(server_url) as resp:
                assert resp.status == 200

    asyncio.run(main())
    assert internal_errors_fail  # said, swallowed; the program did not notice


test_fault_library_internals_not_as_expected = pytest.mark.allow_internal_errors(
    test_fault_library_internals_not_as_expected)


# -- hostile input --------------------------------------------------------------------------

hostile = st.one_of(st.text(max_size=300), st.binary(max_size=100).map(
    lambda b: b.decode("latin-1")), st.just("%p" * 500), st.just("9" * 5000),
    st.just("\u202e1"), st.just("1\x00"))


@settings(max_examples=300, deadline=None)
@given(variable=st.sampled_from(["LEAKGUARD", *_config._VARIABLES]), value=hostile)
def test_any_variable_value_gives_at_most_one_line(variable: str, value: str) -> None:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        if variable == "LEAKGUARD":
            result = _config.switch_from_env({variable: value})
            assert result in (True, False)
        else:
            _config.options_from_env({variable: value})
    lines = err.getvalue().splitlines()
    assert len(lines) <= 1
    if lines:
        assert lines[0].startswith(f"leakguard: ignoring {variable}=")
        assert "accepted values" in lines[0]


def test_hostile_environment_in_a_real_process() -> None:
    env = {"LEAKGUARD": "1", "LEAKGUARD_LOG": "\u202edebug", "LEAKGUARD_STACK_DEPTH": "9" * 5000,
           "LEAKGUARD_EXITCODE": "%p" * 100, "LEAKGUARD_TARGETS": ",,,", "LEAKGUARD_REPORT":
           "/tmp/%p%p%p-leakguard-hostile.jsonl", "LEAKGUARD_SUPPRESSIONS": "/nonexistent"}
    r = run_python("print('ran')", env=env)
    assert r.stdout == "ran\n" and r.returncode == 0
    assert len(r.stderr.splitlines()) == 5, r.stderr  # one line per bad value


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=500))
def test_any_suppressions_text_parses_or_names_the_line(text: str) -> None:
    try:
        rules = _suppress.Suppressions.parse(text, "f.supp")
    except _suppress.SuppressionError as exc:
        assert str(exc).startswith("f.supp:")
        line = int(str(exc).split(":")[1])
        assert 1 <= line <= len(text.splitlines())
    else:
        assert all(rule for rule in rules.rules)


@settings(max_examples=500, deadline=None)
@given(pattern=st.text(alphabet="ab*?", max_size=12), text=st.text(alphabet="ab", max_size=12))
def test_glob_agrees_with_fnmatch(pattern: str, text: str) -> None:
    import fnmatch

    assert _suppress.glob_match(pattern, text) == fnmatch.fnmatchcase(text, pattern)


def test_glob_time_grows_linearly() -> None:
    def timed(n: int) -> float:
        pattern, text = "*a" * n + "*b", "a" * (10 * n)
        start = time.perf_counter()
        for _ in range(5):
            assert not _suppress.glob_match(pattern, text)
        return time.perf_counter() - start

    small, big = timed(200), timed(2000)
    assert big < 0.5  # a backtracking matcher takes ages here
    assert big / max(small, 1e-6) < 300  # 10x input: nowhere near 100x+ work


# -- secrets ----------------------------------------------------------------------------------

SECRETS = ("alice", "hunter2", "s3cr3t-token", "Bearer-xyz", "cookie-value-42")


def test_secrets_never_reach_any_report(tmp_path: Path) -> None:
    code = SERVER_SNIPPET + '''
import os, asyncio, requests, httpx, urllib3, aiohttp
USER, PASSWORD, TOKEN, BEARER, COOKIE = os.environ["SECRETS"].split(",")
host = URL.split("//")[1]
with_creds = "http://" + USER + ":" + PASSWORD + "@" + host + "?token=" + TOKEN
headers = {"Authorization": BEARER, "Cookie": "sid=" + COOKIE}
proxy = "http://" + USER + ":" + PASSWORD + "@" + host
def leak_all():
    s = requests.Session()
    s.auth = (USER, PASSWORD)
    s.headers.update(headers)
    s.get(with_creds, headers=headers, cookies={"sid": COOKIE})
    p = requests.Session()
    p.proxies = {"http": proxy}
    p.get(URL + "?token=" + TOKEN)
    h = httpx.Client(auth=(USER, PASSWORD), headers=headers, cookies={"sid": COOKIE})
    h.get(with_creds)
    u = urllib3.PoolManager(headers=headers)
    u.request("GET", with_creds)
    pm = urllib3.ProxyManager(proxy, proxy_headers=headers)
    async def a():
        c = aiohttp.ClientSession(headers={"Cookie": "sid=" + COOKIE, "X-Token": BEARER},
                                  cookies={"sid": COOKIE})
        async with c.get(URL + "?token=" + TOKEN) as r:
            await r.read()
    asyncio.run(a())
leak_all()
'''
    report = tmp_path / "r.jsonl"
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_LOG": "debug",
                              "LEAKGUARD_REPORT": str(report), "SECRETS": ",".join(SECRETS)})
    assert r.returncode == 0, r.stderr
    ours = "\n".join(line for line in r.stderr.splitlines()
                     if not line.startswith(("Unclosed", "client_session", "connector",
                                             "connections")))
    assert ours.count("garbage-collected without close()") >= 6
    text = ours + report.read_text()
    for secret in SECRETS:
        assert secret not in text, secret
    for rec in map(json.loads, report.read_text().splitlines()):
        for origin in rec["origins"]:
            assert origin.count(":") == 2 and "@" not in origin and "?" not in origin


# -- files written safely -----------------------------------------------------------------------

def test_report_file_uses_umask_and_never_follows_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "r.jsonl"
    link.symlink_to(victim)
    r = run_python(FAULT_PROGRAM, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(link)})
    _same_program_behaviour(r)
    assert victim.read_text() == "precious\n"
    assert r.stderr.count("leakguard: cannot write the leak report") == 1
    fresh = tmp_path / "fresh.jsonl"
    run_python("import os; os.umask(0o077)\n" + FAULT_PROGRAM,
               env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(fresh)})
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_install_refuses_a_planted_symlink_and_uses_the_umask(tmp_path: Path) -> None:
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")],
                   check=True)
    python = str(tmp_path / "env" / "bin" / "python")
    [site] = (tmp_path / "env").glob("lib/python3.*/site-packages")
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if "LEAKGUARD" not in k}
    victim = tmp_path / "victim.py"
    victim.write_text("precious = True\n")
    (site / "sitecustomize.py").symlink_to(victim)
    r = subprocess.run([python, "-m", "leakguard", "install"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 1 and "symbolic link" in r.stderr
    assert victim.read_text() == "precious = True\n"
    (site / "sitecustomize.py").unlink()
    before = set(os.listdir(site))
    r = subprocess.run([python, "-c", "import os, sys; os.umask(0o077); "
                        "from leakguard.cli import main; sys.exit(main(['install']))"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert set(os.listdir(site)) - before == {"sitecustomize.py"}  # nothing else written
    assert stat.S_IMODE((site / "sitecustomize.py").stat().st_mode) == 0o600
