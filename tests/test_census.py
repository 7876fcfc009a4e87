"""Max-open warnings, census() and the LEAKGUARD_INTERVAL census report."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
import requests
from conftest import Reports, run_python

import leakguard
from leakguard import _api, _census


@pytest.fixture
def on(request: pytest.FixtureRequest) -> Callable[..., Reports]:
    """Switch leakguard on with options for one test; its log records are collected."""
    import logging

    def switch_on(**options: object) -> Reports:
        handler = Reports()
        logger = logging.getLogger("leakguard")
        logger.addHandler(handler)
        leakguard.enable(**options)
        request.addfinalizer(lambda: (leakguard.disable(), logger.removeHandler(handler)))
        return handler

    return switch_on


def make(kept: list[requests.Session]) -> None:
    kept.append(requests.Session())


def other_site() -> requests.Session:
    return requests.Session()


def _crowd(reports: Reports) -> list[str]:
    return [w for w in reports.warnings() if "open at once" in w]


def test_max_open_warns_once_at_the_limit(on: Callable[..., Reports]) -> None:
    enabled = on(max_open=5)
    kept: list[requests.Session] = []
    for _ in range(4):
        make(kept)
    assert _crowd(enabled) == []  # below the limit: nothing
    make(kept)
    [warning] = _crowd(enabled)
    head, *stack = warning.splitlines()
    assert head == ("5 requests.Session open at once, all created at "
                    f"{os.path.relpath(__file__)}:{make.__code__.co_firstlineno + 1} in make "
                    "\N{EM DASH} is a session made for every request?")
    assert stack[0] == "Session created at (most recent call last):"
    assert stack[-1] == "    kept.append(requests.Session())"
    for _ in range(20):  # once per site and process, even after going down and up again
        make(kept)
    for s in kept:
        s.close()
    kept.clear()
    for _ in range(6):
        make(kept)
    assert len(_crowd(enabled)) == 1
    for s in kept:
        s.close()


def test_max_open_counts_sessions_open_at_the_same_time(on: Callable[..., Reports]) -> None:
    enabled = on(max_open=3)
    for _ in range(10):  # ten sessions, never more than two at once
        a, b = requests.Session(), requests.Session()
        a.close()
        b.close()
    assert _crowd(enabled) == []


def test_max_open_counts_two_call_paths_to_one_site_together(on: Callable[..., Reports]) -> None:
    enabled = on(max_open=4)
    kept: list[requests.Session] = []

    def via_a() -> None:
        make(kept)

    def via_b() -> None:
        make(kept)

    via_a()
    via_b()
    via_a()
    assert _crowd(enabled) == []
    via_b()
    assert len(_crowd(enabled)) == 1
    for s in kept:
        s.close()


def test_max_open_0_is_off(on: Callable[..., Reports]) -> None:
    enabled = on(max_open=0)
    kept = [requests.Session() for _ in range(150)]
    assert _crowd(enabled) == []
    for s in kept:
        s.close()


def test_default_limit_is_100_and_reaches_the_json_report(tmp_path: Path) -> None:
    report = tmp_path / "r.jsonl"
    r = run_python('''
        import requests
        KEPT = []
        def handler():
            KEPT.append(requests.Session())
        for _ in range(120):
            handler()
        for s in KEPT:
            s.close()
    ''', env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    assert r.returncode == 0
    assert r.stderr.count("open at once") == 1
    assert ("leakguard: 100 requests.Session open at once, all created at app.py:5 in handler"
            in r.stderr)
    [record] = [json.loads(line) for line in report.read_text().splitlines()]
    assert record["event"] == "crowd" and record["open"] == 100 and record["limit"] == 100
    assert record["type"] == "requests.Session" and record["kind"] == "session"
    assert str(record["site"]).endswith("app.py:5 in handler")
    assert record["stack"][-1]["code"] == "KEPT.append(requests.Session())"


def test_census_values_across_two_sites(on: Callable[..., Reports]) -> None:
    on()
    import gc

    kept: list[requests.Session] = []
    for _ in range(3):
        make(kept)
    lone = other_site()
    dropped = other_site()
    time.sleep(0.05)
    make(kept)
    del dropped
    gc.collect()
    kept[0].close()
    rows = leakguard.census()
    here = __file__
    assert [(r["type"], r["site"], r["open"], r["created"], r["leaked"]) for r in rows] == [
        ("requests.Session", f"{here}:{make.__code__.co_firstlineno + 1} in make", 3, 4, 0),
        ("requests.Session", f"{here}:{other_site.__code__.co_firstlineno + 1} in other_site",
         1, 2, 1),
    ]
    assert all(r["kind"] == "session" for r in rows)
    assert 0.05 <= float(str(rows[0]["oldest_age_s"])) < 30
    for s in [*kept, lone]:
        s.close()
    assert leakguard.census() == []


def test_census_is_empty_when_off() -> None:
    assert leakguard.census() == []


def test_no_thread_without_the_interval() -> None:
    before = set(threading.enumerate())
    leakguard.enable()
    try:
        assert set(threading.enumerate()) == before
    finally:
        leakguard.disable()


def test_interval_thread_is_a_daemon_and_stops_with_disable() -> None:
    leakguard.enable(interval=60)
    ticker = _api._STATE.ticker
    assert ticker is not None and ticker.thread is not None
    thread = ticker.thread
    assert thread.daemon and thread.name == "leakguard-census"
    leakguard.disable()
    thread.join(5)
    assert not thread.is_alive()


def test_census_block_says_only_what_changed(on: Callable[..., Reports]) -> None:
    enabled = on(interval=3600)
    ticker = _api._STATE.ticker
    assert ticker is not None
    kept: list[requests.Session] = []
    for _ in range(3):
        make(kept)
    lone = other_site()
    text = ticker.tick()
    assert text is not None
    lines = text.splitlines()
    assert lines[0].startswith("leakguard: census after ")
    assert lines[0].endswith(" s: 4 open sessions; 0 leaks since the last census")
    path = os.path.relpath(__file__)
    assert lines[1] == (f"  3 x requests.Session open, created at {path}:"
                        f"{make.__code__.co_firstlineno + 1} in make "
                        "(+3 since the last census, oldest 0 s)")
    assert lines[2].startswith(f"  1 x requests.Session open, created at {path}:")
    assert lines[2].endswith(" in other_site (+1, oldest 0 s)")
    assert ticker.tick() is None  # nothing grew, nothing leaked: silent
    kept[0].close()
    assert ticker.tick() is None  # shrinking is not news
    make(kept)
    make(kept)
    text = ticker.tick()
    assert text is not None and "  4 x requests.Session open" in text
    assert "(+1 since the last census" in text and "(+0, oldest" in text
    import gc

    del lone
    gc.collect()
    text = ticker.tick()
    assert text is not None and "; 1 leak since the last census" in text
    assert "leakguard: " + enabled.warnings()[-1] == text  # the logger's name says it
    for s in kept:
        s.close()


def test_census_block_shows_at_most_ten_sites() -> None:
    leakguard.enable(interval=3600)
    try:
        ns: dict[str, object] = {"requests": requests}
        kept = []
        for i in range(12):
            exec(compile(f"def f{i}():\n    return requests.Session()\n", f"<site{i}>", "exec"),
                 ns)
            for _ in range(i + 1):
                kept.append(ns[f"f{i}"]())  # type: ignore[operator]
        ticker = _api._STATE.ticker
        assert ticker is not None
        text = ticker.tick()
        assert text is not None
        lines = text.splitlines()
        assert len(lines) == 1 + 10 + 1
        assert lines[1].startswith("  12 x requests.Session open, created at <site11>:2 in f11")
        assert lines[-1] == "  ... and 2 more sites"
        for s in kept:
            s.close()
    finally:
        leakguard.disable()


def test_age_text() -> None:
    assert _census.age_text(3) == "3 s"
    assert _census.age_text(59 * 60) == "59 min"
    assert _census.age_text(3 * 3600) == "3.0 h"


PILE_UP = '''
    import time, requests
    KEPT = []
    def handler():
        KEPT.append(requests.Session())
    for _ in range(6):
        for _ in range(5):
            handler()
        time.sleep(0.3)
    for s in KEPT:
        s.close()
'''


def test_interval_reports_while_sessions_pile_up(tmp_path: Path) -> None:
    report = tmp_path / "r.jsonl"
    r = run_python(PILE_UP, env={"LEAKGUARD": "1", "LEAKGUARD_INTERVAL": "0.5",
                        "LEAKGUARD_REPORT": str(report)}, timeout=120)
    assert r.returncode == 0, r.stderr
    blocks = [line for line in r.stderr.splitlines() if line.startswith("leakguard: census")]
    assert len(blocks) >= 2, r.stderr
    assert "x requests.Session open, created at app.py:5 in handler (+" in r.stderr
    records = [json.loads(line) for line in report.read_text().splitlines()]
    census = [rec for rec in records if rec["event"] == "census"]
    assert len(census) == len(blocks)
    assert census[-1]["open"]["session"] > census[0]["open"]["session"] > 0
    assert census[-1]["sites"][0]["site"].endswith("app.py:5 in handler")


def test_interval_is_silent_in_an_idle_process() -> None:
    r = run_python('''
        import time, requests
        KEPT = requests.Session()  # opened before the first census: +1 once
        time.sleep(2.5)
        KEPT.close()
    ''', env={"LEAKGUARD": "1", "LEAKGUARD_INTERVAL": "0.4"}, timeout=120)
    assert r.returncode == 0
    assert r.stderr.count("leakguard: census") == 1, r.stderr


def test_a_short_program_with_an_interval_exits_at_once() -> None:
    start = time.monotonic()
    r = run_python("import requests\nrequests.Session().close()\nprint('done')",
                   env={"LEAKGUARD": "1", "LEAKGUARD_INTERVAL": "3600"}, timeout=120)
    assert r.returncode == 0 and r.stdout == "done\n" and r.stderr == ""
    assert time.monotonic() - start < 30  # not 3600: the timer never keeps it alive


def test_a_forked_child_runs_one_timer_of_its_own() -> None:
    r = run_python('''
        import os, threading, time, requests
        def timers():
            return sum(t.name == "leakguard-census" for t in threading.enumerate())
        assert timers() == 1
        pid = os.fork()
        if pid == 0:
            n = timers()
            KEPT = [requests.Session() for _ in range(2)]
            time.sleep(1.5)
            print("child timers", n, flush=True)
            for s in KEPT:
                s.close()
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent timers", timers(), flush=True)
    ''', env={"LEAKGUARD": "1", "LEAKGUARD_INTERVAL": "0.5"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "child timers 1" in r.stdout and "parent timers 1" in r.stdout
    # the child's own census: its two sessions, said once by its one timer
    assert r.stderr.count("leakguard: census after") == 1, r.stderr
    assert "  2 x requests.Session open, created at app.py:9 in <listcomp>" in r.stderr \
        or "  2 x requests.Session open, created at app.py:9 in <module>" in r.stderr


def test_leakguard_report_does_not_count_crowd_and_census_records(tmp_path: Path) -> None:
    import subprocess
    import sys

    report = tmp_path / "r.jsonl"
    r = run_python(PILE_UP.replace("for s in KEPT:\n        s.close()", ""),
                   env={"LEAKGUARD": "1", "LEAKGUARD_INTERVAL": "0.5", "LEAKGUARD_MAX_OPEN": "10",
                        "LEAKGUARD_REPORT": str(report)}, timeout=120)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line)["event"] for line in report.read_text().splitlines()]
    assert "crowd" in events and "census" in events and events.count("exit") == 30
    out = subprocess.run([sys.executable, "-m", "leakguard", "report", str(report)],
                         capture_output=True, text=True, timeout=60)
    assert out.stderr == ""
    assert out.stdout.startswith("leakguard: 30 leaked sessions (30 still open at exit)")


def test_leakguard_report_shows_the_latest_census_of_each_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    report = tmp_path / "r.jsonl"
    env = {"LEAKGUARD": "1", "LEAKGUARD_INTERVAL": "0.5", "LEAKGUARD_REPORT": str(report)}
    for _ in range(2):  # two processes, one file
        assert run_python(PILE_UP, env=env, timeout=120).returncode == 0
    records = [json.loads(line) for line in report.read_text().splitlines()]
    pids = list(dict.fromkeys(rec["pid"] for rec in records if rec["event"] == "census"))
    assert len(pids) == 2
    out = subprocess.run([sys.executable, "-m", "leakguard", "report", str(report)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0] == "leakguard: no leaked sessions"
    assert lines[1] == "leakguard: latest census of 2 processes"
    latest = [rec for rec in records if rec["event"] == "census" and rec["pid"] == pids[0]][-1]
    n = latest["open"]["session"]
    assert lines[2].startswith(f"  process {pids[0]}, after ")
    assert lines[2].endswith(f" s: {n} open sessions")
    assert lines[3].startswith(f"    {n} x requests.Session open, created at ")
    assert "app.py:5 in handler (oldest " in lines[3]
    as_json = subprocess.run([sys.executable, "-m", "leakguard", "report", "--json",
                              str(report)], capture_output=True, text=True, timeout=60)
    data = json.loads(as_json.stdout)
    assert [c["pid"] for c in data["census"]] == pids


def test_no_thread_in_a_process_without_the_interval() -> None:
    r = run_python('''
        import threading, requests
        KEPT = [requests.Session() for _ in range(3)]
        print([t.name for t in threading.enumerate()])
        for s in KEPT:
            s.close()
    ''', env={"LEAKGUARD": "1"})
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == "['MainThread']\n"
