"""`leakguard run`, subprocess chains and multiprocessing workers: each process reports its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LEAKGUARD_CLI = [sys.executable, "-m", "leakguard"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "LEAKGUARD" not in k}
    env.update(extra)
    return env


def _records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_sanitizes_a_subprocess_chain_two_deep(tmp_path: Path) -> None:
    level = textwrap.dedent('''
        import os, subprocess, sys, requests
        depth = int(sys.argv[1])
        KEEP = requests.Session()
        print(f"level {depth} pid {os.getpid()}", flush=True)
        if depth < 2:
            subprocess.run([sys.executable, __file__, str(depth + 1)], check=True)
    ''')
    script = tmp_path / "chain.py"
    script.write_text(level)
    report = tmp_path / "r.jsonl"
    r = subprocess.run([*LEAKGUARD_CLI, "run", "--report", str(report), "--",
                        sys.executable, str(script), "0"],
                       env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    pids = [int(line.split()[3]) for line in r.stdout.splitlines()]
    assert len(pids) == 3
    recs = _records(report)
    assert sorted(int(str(rec["pid"])) for rec in recs) == sorted(pids)  # once per level
    assert r.stderr.count("still open at interpreter exit") == 3
    for child in pids[1:]:
        assert f"in thread MainThread, process {child}; " in r.stderr
    assert r.stderr.count("leakguard: 1 leaked session (1 still open at exit)") == 3


def test_run_exit_status(tmp_path: Path) -> None:
    leak = [sys.executable, "-c", "import requests; K = requests.Session()"]
    clean = [sys.executable, "-c", "import sys; sys.exit(5)"]
    env = _clean_env()
    assert subprocess.run([*LEAKGUARD_CLI, "run", "--exitcode", "7", *leak], env=env,
                          capture_output=True).returncode == 7
    assert subprocess.run([*LEAKGUARD_CLI, "run", *leak], env=env,
                          capture_output=True).returncode == 0
    assert subprocess.run([*LEAKGUARD_CLI, "run", "--exitcode", "7", *clean], env=env,
                          capture_output=True).returncode == 5
    missing = subprocess.run([*LEAKGUARD_CLI, "run", "no-such-command-xyz"], env=env,
                             capture_output=True, text=True)
    assert missing.returncode == 127
    assert missing.stderr == "leakguard run: no-such-command-xyz: command not found\n"
    bad = subprocess.run([*LEAKGUARD_CLI, "run", "--log", "loud", *leak], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "accepted values are warning, debug" in bad.stderr


WORKER = '''
import json, multiprocessing as mp, os, sys, time
import requests

HELD = []

def leaky_worker(_=None):
    s = requests.Session()  # LEAK-IN-WORKER
    HELD.append(requests.Session())  # HELD-IN-WORKER: still open when the worker exits
    return os.getpid()

def main(method):
    KEEP = requests.Session()  # parent's own session, closed below: never reported
    if method == "pool-executor":
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(1) as ex:
            pid = ex.submit(leaky_worker).result()
    else:
        ctx = mp.get_context(method)
        with ctx.Pool(1) as pool:
            pid = pool.apply(leaky_worker)
        p = ctx.Process(target=leaky_worker)
        p.start(); p.join()
        assert p.exitcode == 0
        pid = p.pid
    KEEP.close()
    print(os.getpid(), pid)

if __name__ == "__main__":
    main(sys.argv[1])
'''


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver", "pool-executor"])
def test_multiprocessing_workers_report_their_own_leaks(tmp_path: Path, method: str) -> None:
    if method != "pool-executor" and method not in __import__("multiprocessing") \
            .get_all_start_methods():
        pytest.skip(f"{method} is not available on this platform")
    script = tmp_path / "workers.py"
    script.write_text(WORKER)
    report = tmp_path / "r.jsonl"
    r = subprocess.run([sys.executable, str(script), method],
                       env=_clean_env(LEAKGUARD="1", LEAKGUARD_REPORT=str(report)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    parent = [rec for rec in _records(report) if "main" in json.dumps(rec["stack"])
              and "leaky_worker" not in json.dumps(rec["stack"])]
    assert parent == []  # the parent's session was closed; forked children never report it
    worker_leaks = [rec for rec in _records(report)
                    if rec["stack"][-1]["code"] == "s = requests.Session()  # LEAK-IN-WORKER"]
    parent_pid, worker_pid = map(int, r.stdout.split())
    pids = {rec["pid"] for rec in worker_leaks}
    assert worker_pid in pids, r.stderr  # the worker that leaked said so, with its own pid
    assert parent_pid not in pids
    # every leak once: no record repeated for the same worker and stack
    keys = [(rec["pid"], rec["event"], json.dumps(rec["stack"])) for rec in worker_leaks]
    assert len(keys) == len(set(keys))
    assert "LEAK-IN-WORKER" in r.stderr
    held = [rec for rec in _records(report)
            if rec["stack"][-1]["code"].endswith("# HELD-IN-WORKER: still open when the worker "
                                                 "exits")]
    assert worker_pid in {rec["pid"] for rec in held}, r.stderr
    assert all(rec["event"] == "exit" for rec in held)
