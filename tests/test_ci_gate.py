"""LEAKGUARD_EXITCODE, JSON Lines records, `leakguard report` and suppressions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import SERVER_SNIPPET, run_python

LEAK = SERVER_SNIPPET + '''
import requests, sys, atexit
atexit.register(lambda: print("other exit handler ran"))
def open_one():
    s = requests.Session()
    s.get(URL)
    return s
KEEP = open_one()
'''
LEAKGUARD_CLI = [sys.executable, "-m", "leakguard"]


def test_exitcode_applies_only_when_the_program_would_exit_zero() -> None:
    env = {"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "23"}
    assert run_python(LEAK, env=env).returncode == 23  # falls off the end
    r = run_python(LEAK + "sys.exit(0)\n", env=env)
    assert r.returncode == 23
    assert r.stdout == "other exit handler ran\n"  # every other handler still ran, once
    assert run_python(LEAK + "sys.exit(4)\n", env=env).returncode == 4
    assert run_python(LEAK + "raise RuntimeError('boom')\n", env=env).returncode == 1
    assert run_python(LEAK + "KEEP.close()\n", env=env).returncode == 0  # no leak
    assert run_python(LEAK, env={"LEAKGUARD": "1"}).returncode == 0  # not asked


def test_json_lines_records(tmp_path: Path) -> None:
    report = tmp_path / "leaks-%p.jsonl"
    code = LEAK + '''
def dropped():
    requests.Session().get(URL)
dropped()
print(__import__("os").getpid())
'''
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    pid = int(r.stdout.split()[0])
    path = tmp_path / f"leaks-{pid}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [rec["event"] for rec in records] == ["gc", "exit"]
    gc_rec = records[0]
    assert set(gc_rec) == {"event", "kind", "type", "pid", "thread", "task", "age_s",
                           "connections", "origins", "requests", "last_use", "stack", "site"}
    assert gc_rec["kind"] == "session"
    assert gc_rec["type"] == "requests.Session" and gc_rec["pid"] == pid
    assert gc_rec["thread"] == "MainThread" and gc_rec["task"] is None
    assert gc_rec["connections"] == 1 and gc_rec["origins"][0].startswith("http://127.0.0.1:")
    line = code.splitlines().index("    requests.Session().get(URL)") + 1
    assert gc_rec["stack"][-1] == {"file": gc_rec["stack"][-1]["file"], "line": line,
                                   "function": "dropped",
                                   "code": "requests.Session().get(URL)"}
    assert gc_rec["stack"][0]["function"] == "<module>"  # outermost first
    assert gc_rec["site"] == f"{gc_rec['stack'][-1]['file']}:{line} in dropped"
    assert isinstance(gc_rec["age_s"], float)


def test_unwritable_report_path_says_so_once_and_runs_on(tmp_path: Path) -> None:
    code = LEAK + "def d():\n    requests.Session()\nd()\nd()\n"
    r = run_python(code, env={"LEAKGUARD": "1",
                              "LEAKGUARD_REPORT": str(tmp_path / "missing" / "r.jsonl")})
    assert r.returncode == 0
    assert r.stderr.count("leakguard: cannot write the leak report") == 1
    assert r.stderr.count("garbage-collected without close()") >= 2


def test_many_processes_append_whole_lines(tmp_path: Path) -> None:
    report = tmp_path / "all.jsonl"
    code = '''
import requests
def leak():
    for _ in range(200):
        requests.Session()
leak()
'''
    script = tmp_path / "many.py"
    script.write_text(code)
    env = {**os.environ, "LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)}
    procs = [subprocess.Popen([sys.executable, str(script)], env=env,
                              stderr=subprocess.DEVNULL) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    lines = report.read_text().splitlines()
    assert len(lines) == 800
    assert all(json.loads(line)["type"] == "requests.Session" for line in lines)
    r = subprocess.run([*LEAKGUARD_CLI, "report", str(report)], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == ("leakguard: 800 leaked sessions (800 garbage-collected "
                                        "without close()) in 4 processes")
    assert r.stdout.splitlines()[1].startswith("  800 x requests.Session created at ")
    assert r.stdout.splitlines()[1].endswith("many.py:5 in leak")
    j = subprocess.run([*LEAKGUARD_CLI, "report", "--json", str(report)], capture_output=True,
                       text=True)
    data = json.loads(j.stdout)
    assert data["leaks"] == 800 and data["processes"] == 4
    assert data["groups"][0]["count"] == 800


def test_suppressions(tmp_path: Path) -> None:
    supp = tmp_path / "leakguard.supp"
    supp.write_text("# accepted leaks\n\nleak:open_one\nleak:*.NeverMatches\n")
    env = {"LEAKGUARD": "1", "LEAKGUARD_SUPPRESSIONS": str(supp), "LEAKGUARD_EXITCODE": "9"}
    r = run_python(LEAK + "def d():\n    requests.Session()\nd()\n", env=env)
    assert r.returncode == 9  # the unsuppressed one still counts
    assert r.stderr.count("leakguard: requests.Session ") == 1  # only the unsuppressed one
    assert "leakguard: 1 leaked session (1 garbage-collected without close()), 1 suppressed" \
        in r.stderr
    assert "Suppressions used:\n  1 leak:open_one" in r.stderr
    r = run_python(LEAK, env=env)
    assert r.returncode == 0  # suppressed leaks do not change the exit status
    assert "leakguard: 0 leaked sessions, 1 suppressed" in r.stderr


def test_suppression_by_class_module_and_file(tmp_path: Path) -> None:
    for rule in ("leak:requests.Session", "leak:requests.*", "leak:*app.py", "leak:__main__"):
        supp = tmp_path / "s.supp"
        supp.write_text(rule + "\n")
        r = run_python(LEAK, env={"LEAKGUARD": "1", "LEAKGUARD_SUPPRESSIONS": str(supp)})
        assert "still open at interpreter exit" not in r.stderr, rule
        assert "1 suppressed" in r.stderr, rule


def test_malformed_suppressions_file_names_file_and_line(tmp_path: Path) -> None:
    supp = tmp_path / "bad.supp"
    supp.write_text("leak:ok\nleek:typo\n")
    r = run_python(LEAK, env={"LEAKGUARD": "1", "LEAKGUARD_SUPPRESSIONS": str(supp)})
    assert r.returncode == 0
    assert f"leakguard: ignoring the suppressions file: {supp}:2: expected 'leak:PATTERN', " \
           "got 'leek:typo'" in r.stderr
    assert "still open at interpreter exit" in r.stderr  # runs on, without suppressions


def test_a_task_without_a_name_is_null_not_the_string_none(tmp_path: Path) -> None:
    # CPython 3.13.0's eager tasks answer get_name() with None once they have awaited; a
    # task factory whose tasks do the same stands for them on every Python
    report = tmp_path / "leaks.jsonl"
    code = SERVER_SNIPPET + '''
import asyncio, aiohttp, httpx
class Unnamed(asyncio.Task):
    def get_name(self):
        return None
KEEP = []
async def main():
    asyncio.get_running_loop().set_task_factory(
        lambda loop, coro, **kw: Unnamed(coro, loop=loop, **kw))
    async def made():
        KEEP.append(aiohttp.ClientSession())
        c = httpx.AsyncClient()
        KEEP.append(c)
        KEEP.append(await c.send(c.build_request("GET", URL), stream=True))
    await asyncio.create_task(made())
asyncio.run(main())
'''
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(rec["type"] for rec in records) == [
        "aiohttp.ClientSession", "httpx.AsyncClient", "httpx.Response"], r.stderr
    assert [rec["task"] for rec in records] == [None, None, None]
    assert "task None" not in r.stderr
    # "in thread MainThread" then ", process N" (a child of a process that ran leakguard
    # before) or the end of the clause: never ", task ..."
    assert len(re.findall(r"s ago in thread MainThread(?:, process \d+)?[;)]",
                          r.stderr)) == 3, r.stderr
