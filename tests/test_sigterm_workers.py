"""SIGTERM in multiprocessing workers: Pool.terminate() gets their report and never hangs."""

from __future__ import annotations

import collections
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

METHODS = [m for m in ("fork", "spawn", "forkserver")
           if m in multiprocessing.get_all_start_methods()]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD")}
    env.update(extra)
    return env


def _run(tmp_path: Path, code: str, *args: str, timeout: float = 120,
         **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pool.py").write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, "pool.py", *args], cwd=tmp_path, env=_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# Each task keeps a session in the worker: open when `with Pool()` terminates the workers.
HOLD = '''
    import multiprocessing, os, signal, sys, threading, requests

    KEPT = []

    def work(n):
        KEPT.append(requests.Session())
        watchers = [t.name for t in threading.enumerate() if t.name.startswith("leakguard")]
        return os.getpid(), watchers, signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        with ctx.Pool(2) as pool:
            seen = pool.map(work, range(8), chunksize=1)
            workers = list(pool._pool)
        print(json.dumps({"pids": sorted({pid for pid, _, _ in seen}),
                          "watchers": sorted({",".join(w) for _, w, _ in seen}),
                          "default": sorted({d for _, _, d in seen}),
                          "codes": [w.exitcode for w in workers]}))
'''.replace("import multiprocessing,", "import json, multiprocessing,")


@pytest.mark.parametrize("method", METHODS)
def test_terminated_workers_report_the_sessions_they_hold(tmp_path: Path, method: str) -> None:
    report = tmp_path / "r.jsonl"
    r = _run(tmp_path, HOLD, method, LEAKGUARD="1", LEAKGUARD_REPORT=str(report))
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["watchers"] == ["leakguard-sigterm-watch"], seen  # one thread, in workers only
    assert set(seen["codes"]) <= {-signal.SIGTERM, 0}, seen  # died of SIGTERM as they would
    records = _records(report)
    # every session a worker held is reported once, by that worker, in text and JSON
    assert [rec["event"] for rec in records] == ["exit"] * 8, (records, r.stderr)
    assert {rec["pid"] for rec in records} <= set(seen["pids"]), (records, seen)
    assert r.stderr.count("requests.Session still open at interpreter exit") == 8, r.stderr
    for pid in {rec["pid"] for rec in records}:
        assert f", process {pid}; no requests)" in r.stderr, r.stderr
    assert "created at pool.py:7 in work" in r.stderr, r.stderr


# The worker's main thread blocks for ever in a C-level wait that no signal interrupts (a
# BufferedWriter's lock, held by a thread stuck writing to a full pipe): a Python-level
# handler alone would never run, and terminate() would wait for ever.
STUCK = '''
    import multiprocessing, os, sys, threading, time, requests

    KEPT = []

    def stuck(n):
        KEPT.append(requests.Session())
        r, w = os.pipe()
        f = open(w, "wb", buffering=1 << 20)

        def fill():
            while True:
                f.write(b"x" * 65536)
                f.flush()

        threading.Thread(target=fill, daemon=True).start()
        time.sleep(0.3)
        print("stuck", os.getpid(), flush=True)
        f.write(b"y")  # waits for the writer's lock, in C, for ever

    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        pool = ctx.Pool(1)
        pool.map_async(stuck, [1])
        time.sleep(float(sys.argv[2]))
        worker = pool._pool[0]
        t = time.monotonic()
        pool.terminate()
        print("terminated", worker.pid, worker.exitcode, round(time.monotonic() - t, 1))
'''


@pytest.mark.parametrize("method", METHODS)
def test_a_worker_stuck_in_c_is_reported_and_dies_of_sigterm(tmp_path: Path,
                                                               method: str) -> None:
    report = tmp_path / "r.jsonl"
    r = _run(tmp_path, STUCK, method, "3" if method == "fork" else "5", timeout=60,
             LEAKGUARD="1", LEAKGUARD_REPORT=str(report))
    assert r.returncode == 0, r.stderr
    assert "stuck" in r.stdout, (r.stdout, r.stderr)
    pid, code, took = r.stdout.split("terminated")[1].split()
    assert int(code) == -signal.SIGTERM, r.stdout
    assert float(took) < 15, r.stdout
    records = _records(report)
    assert [(rec["event"], rec["pid"]) for rec in records] == [("exit", int(pid))], records
    assert "requests.Session still open at interpreter exit (0 open connections; created" \
           in r.stderr and f"process {pid}; no requests)" in r.stderr, r.stderr
    assert "leakguard: 1 leaked session (1 still open at exit)" in r.stderr


def test_run_exitcode_counts_what_terminated_workers_held(tmp_path: Path) -> None:
    # the workers only keep sessions: nothing leaks unless their report at SIGTERM counts
    (tmp_path / "pool.py").write_text(textwrap.dedent(HOLD))
    r = subprocess.run([sys.executable, "-m", "leakguard", "run", "--exitcode", "7", "--",
                        sys.executable, "pool.py", "fork"], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 7, (r.stdout, r.stderr)
    assert r.stderr.count("requests.Session still open at interpreter exit") == 8, r.stderr


OWN = '''
    import multiprocessing, os, signal, sys, threading, time, requests

    KEPT = []

    def own_handler():
        signal.signal(signal.SIGTERM, lambda *a: (print("own", os.getpid(), flush=True),
                                                  os._exit(5)))

    def work(n):
        KEPT.append(requests.Session())
        return [t.name for t in threading.enumerate() if t.name.startswith("leakguard")]

    def default(n):
        return signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def nap(n):
        time.sleep(30)

    if __name__ == "__main__":
        ctx = multiprocessing.get_context("fork")
        if sys.argv[1] == "wakeup":  # the program's own wakeup fd, inherited by the workers
            r, w = os.pipe()
            os.set_blocking(w, False)
            signal.set_wakeup_fd(w)
        with ctx.Pool(1, own_handler if sys.argv[1] == "handler" else None) as pool:
            print("threads", pool.map(work, [1])[0], flush=True)
            print("default", pool.apply(default, (1,)), flush=True)
            pool.map_async(nap, [1])
            time.sleep(1)
            worker = pool._pool[0]
        print("code", worker.exitcode, flush=True)
'''


def test_a_workers_own_sigterm_handler_is_left_alone(tmp_path: Path) -> None:
    r = _run(tmp_path, OWN, "handler", timeout=60, LEAKGUARD="1")
    assert r.returncode == 0, r.stderr
    assert "own " in r.stdout and "code 5" in r.stdout, (r.stdout, r.stderr)
    assert "still open at interpreter exit" not in r.stderr, r.stderr


def test_a_programs_own_wakeup_fd_is_kept_and_workers_keep_the_default(tmp_path: Path) -> None:
    r = _run(tmp_path, OWN, "wakeup", timeout=60, LEAKGUARD="1")
    assert r.returncode == 0, r.stderr
    assert "threads []" in r.stdout and "default True" in r.stdout, (r.stdout, r.stderr)
    assert f"code {-signal.SIGTERM}" in r.stdout, r.stdout


def test_no_watcher_thread_when_sigterm_handling_is_off(tmp_path: Path) -> None:
    r = _run(tmp_path, OWN, "plain", timeout=60, LEAKGUARD="1", LEAKGUARD_SIGTERM="0")
    assert r.returncode == 0, r.stderr
    assert "threads []" in r.stdout and "default True" in r.stdout, (r.stdout, r.stderr)
    assert r.stderr == ""


# Pools terminated over and over, their workers starting, idle on the task queue, between
# two tiny tasks, or busy: terminate() always returns, every worker dies of SIGTERM (or ends
# normally), and what a worker held before the last task it finished is reported.
STRESS = '''
    import json, multiprocessing, os, random, sys, time, requests

    KEPT = []

    def hold(n):
        KEPT.append(requests.Session())
        with open("notes", "a") as f:
            f.write("%d %d\\n" % (os.getpid(), n))
        return n

    def nap(n):
        hold(n)
        time.sleep(30)

    if __name__ == "__main__":
        random.seed(1)
        codes = []
        slowest = 0.0
        for method, rounds in [("fork", int(sys.argv[1])), ("forkserver", 8), ("spawn", 8)]:
            if method not in multiprocessing.get_all_start_methods():
                continue
            ctx = multiprocessing.get_context(method)
            for i in range(rounds):
                pool = ctx.Pool(2)
                state = i % 4
                if state == 1:  # moving from task to task: back to the task queue's lock
                    pool.map_async(hold, [1] * 200, chunksize=1)
                elif state == 2:  # busy in a task
                    pool.map_async(nap, [2, 2], chunksize=1)
                elif state == 3:  # its work done, blocked on the task queue
                    pool.map(hold, [3] * 4, chunksize=1)
                # state 0: still starting, or idle on the task queue from the start
                time.sleep(random.random() * 0.03)
                workers = list(pool._pool)
                t = time.monotonic()
                pool.terminate()
                slowest = max(slowest, time.monotonic() - t)
                codes.extend(w.exitcode for w in workers)
        print(json.dumps({"codes": codes, "slowest": slowest}))
'''


def test_terminating_pools_many_times_never_hangs(tmp_path: Path, stress: bool) -> None:
    report = tmp_path / "r.jsonl"
    rounds = "400" if stress else "120"
    r = _run(tmp_path, STRESS, rounds, timeout=300, LEAKGUARD="1", LEAKGUARD_REPORT=str(report))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "internal error" not in r.stderr, r.stderr[-3000:]
    result = json.loads(r.stdout)
    codes = collections.Counter(result["codes"])
    assert set(codes) <= {-signal.SIGTERM, 0}, codes  # never the fallback status 143
    assert codes[-signal.SIGTERM] > len(result["codes"]) // 2, codes
    assert result["slowest"] < 15, result  # no report ran into its time limit
    reported = collections.Counter(rec["pid"] for rec in _records(report)
                                   if rec["event"] == "exit")
    notes = [line.split() for line in (tmp_path / "notes").read_text().splitlines()]
    done = collections.Counter(pid for pid, n in notes if n == "3")
    # a worker whose work was done when it was terminated reports every session it held
    assert all(reported[int(pid)] >= n for pid, n in done.items()), (done, reported)
