"""The pytest plugin's cost on a synthetic suite that looks like a real one.

`python benchmarks/pytest_suite.py [--quick] [--tests N] [--heap-mb M] [--rounds R]`

Generates a suite on the fly: N tests (2,000), each with two function-scoped fixtures; a
module holding a heap of ordinary objects (~200 MB of dicts, lists and unittest.mock.Mock
objects); 2 % of the tests create and close a session (one request to a local server),
0.5 % leak one (half dropped, half kept alive in a module list). Times `pytest`,
`pytest --leakguard` and `LEAKGUARD=1 pytest`, alternated round after round, prints the
ratios against the targets (<= 1.10 and <= 1.05) and checks that exactly the leaking tests
were flagged (from the LEAKGUARD_REPORT records). `--quick`: 200 tests and a 20 MB heap.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

CONFTEST = '''
import gc, http.server, linecache, os, sys, threading
import pytest
from unittest import mock

_FULL = [0, 0]  # full collections in the run: all, and those that leakguard ran

def _count(phase, info):
    if phase == "start" and info["generation"] == 2:
        _FULL[0] += 1
        # called by leakguard (not one the interpreter started while leakguard allocated)
        caller = sys._getframe(1)
        _FULL[1] += os.sep + "leakguard" + os.sep in caller.f_code.co_filename and \\
            "collect(" in linecache.getline(caller.f_code.co_filename, caller.f_lineno)

gc.callbacks.append(_count)

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("full collections: %d, leakguard's: %d" % tuple(_FULL))

class _H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass

_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
threading.Thread(target=_srv.serve_forever, daemon=True).start()
URL = "http://127.0.0.1:%d/" % _srv.server_address[1]

@pytest.fixture
def settings():
    return {"debug": False, "retries": [1, 2, 3], "name": "bench"}

@pytest.fixture
def client():
    c = mock.Mock()
    c.get.return_value.status_code = 200
    yield c
    c.reset_mock()
'''

HEAP = '''
"""About {mb} MB of ordinary objects, alive for the whole run."""
from unittest import mock

RECORDS = [{{"id": i, "name": "n%d" % i, "tags": [i, i + 1, str(i)], "meta": {{"a": i}}}}
           for i in range({records})]
MOCKS = []
for i in range({mocks}):
    m = mock.Mock()
    m.service.fetch.return_value = i
    m.config = {{"i": i}}
    MOCKS.append(m)
'''

TEST_HEAD = '''
import requests
import heap
from conftest import URL

KEEP = []
'''

PLAIN = '''
def test_{n}(settings, client):
    assert client.get("/x").status_code == 200
    assert sum(settings["retries"]) == 6 and heap.RECORDS[{n}]["id"] == {n}
'''

CLOSES = '''
def test_{n}(settings, client):
    with requests.Session() as s:
        assert s.get(URL).status_code == 200
'''

DROPS = '''
def test_{n}(settings, client):
    requests.Session()
'''

KEEPS = '''
def test_{n}(settings, client):
    KEEP.append(requests.Session())
'''

PER_FILE = 100


def generate(root: str, tests: int, heap_mb: int) -> set[str]:
    """Write the suite into `root`; the ids of the tests that leak."""
    # measured: ~17 KB per Mock with its children, ~630 B per record (half the heap each)
    half = heap_mb * 1024 * 1024 // 2
    with open(os.path.join(root, "heap.py"), "w") as f:
        f.write(HEAP.format(mb=heap_mb, records=half // 630, mocks=half // 17000))
    with open(os.path.join(root, "conftest.py"), "w") as f:
        f.write(CONFTEST)
    with open(os.path.join(root, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")
    leaking: set[str] = set()
    for first in range(0, tests, PER_FILE):
        name = f"test_part{first // PER_FILE:03d}.py"
        parts = [TEST_HEAD]
        for n in range(first, min(first + PER_FILE, tests)):
            if n % 200 == 100:  # 0.5 %: half dropped, half kept alive
                parts.append((DROPS if n % 400 == 100 else KEEPS).format(n=n))
                leaking.add(f"{name}::test_{n}")
            elif n % 50 == 25:  # 2 %
                parts.append(CLOSES.format(n=n))
            else:
                parts.append(PLAIN.format(n=n))
        with open(os.path.join(root, name), "w") as f:
            f.write("".join(parts))
    return leaking


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "LEAKGUARD" not in k}
    env.update(extra)
    return env


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, int]:
    """Wall-clock and CPU seconds of one run (CPU: steadier on a busy machine), and the
    number of full collections that leakguard ran (a count: exact on a busy machine too)."""
    start, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}")
    full = re.findall(r"^full collections: \d+, leakguard's: (\d+)$", done.stdout, re.M)
    return elapsed, cpu, int(full[-1]) if full else -1


def flagged(path: str) -> set[str]:
    """The test ids of the leak records in a JSON Lines file."""
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {json.loads(line).get("test", "") for line in f if line.strip()}


class Measured(NamedTuple):
    """Seconds per configuration (wall and CPU), the leaking tests, what was flagged, and
    leakguard's full collections in each run."""

    times: dict[str, list[float]]
    cpu: dict[str, list[float]]
    leaking: set[str]
    flagged: dict[str, set[str]]
    full: dict[str, list[int]]


def measure(python: str, tests: int, heap_mb: int, rounds: int) -> Measured:
    """Time the three configurations alternately; check what each flagged."""
    with tempfile.TemporaryDirectory(prefix="leakguard-suite-") as root:
        leaking = generate(root, tests, heap_mb)
        argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                "-p", "no:asyncio"]
        reports = {c: os.path.join(root, f"{c}.jsonl") for c in ("flag", "env")}
        configs = {
            "plain": (argv, _env({})),
            "flag": ([*argv, "--leakguard"], _env({"LEAKGUARD_REPORT": reports["flag"]})),
            "env": (argv, _env({"LEAKGUARD": "1", "LEAKGUARD_REPORT": reports["env"]})),
        }
        times: dict[str, list[float]] = {c: [] for c in configs}
        cpu: dict[str, list[float]] = {c: [] for c in configs}
        full: dict[str, list[int]] = {c: [] for c in configs}
        order = list(configs)
        for n in range(rounds):
            for name in order if n % 2 == 0 else reversed(order):
                if name in reports and os.path.exists(reports[name]):
                    os.unlink(reports[name])
                run_argv, env = configs[name]
                wall, used, collections = _timed(run_argv, env, root)
                times[name].append(wall)
                cpu[name].append(used)
                full[name].append(collections)
            # what the last round flagged (each round writes the same)
            found = {c: flagged(p) for c, p in reports.items()}
        return Measured(times, cpu, leaking, found, full)


def report(result: Measured) -> tuple[bool, bool]:
    """Print the table; whether the timing targets were met, and the verdicts right."""
    times, cpu, leaking, found, full = result
    base, base_cpu = statistics.median(times["plain"]), statistics.median(cpu["plain"])
    ok = right_all = True
    print(f"plain pytest: {base:.2f} s wall, {base_cpu:.2f} s CPU (medians of "
          f"{len(times['plain'])}; wall " + ", ".join(f"{t:.2f}" for t in times["plain"]) + ")")
    for name, label, target in (("flag", "pytest --leakguard", 1.10),
                                ("env", "LEAKGUARD=1 pytest", 1.05)):
        med, med_cpu = statistics.median(times[name]), statistics.median(cpu[name])
        ratio, ratio_cpu = med / base, med_cpu / base_cpu
        right = found[name] == leaking
        ok = ok and ratio <= target
        right_all = right_all and right
        print(f"{label}: {med:.2f} s wall, ratio {ratio:.3f} (target <= {target}: "
              f"{'ok' if ratio <= target else 'MISSED'}); CPU ratio {ratio_cpu:.3f}")
        print(f"  flagged {len(found[name])} of "
              f"{len(leaking)} leaking tests, "
              + ("exactly those" if right else
                 f"WRONG: missed {sorted(leaking - found[name])}, "
                 f"extra {sorted(found[name] - leaking)}"))
    print("leakguard's full collections per run: " + ", ".join(
        f"{name} {'/'.join(map(str, full[name]))}" for name in full))
    return ok, right_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 tests, 20 MB heap, 2 rounds")
    parser.add_argument("--tests", type=int, help="number of tests (default 2000)")
    parser.add_argument("--heap-mb", type=int, help="size of the module heap (default 200)")
    parser.add_argument("--rounds", type=int, help="rounds of the three runs (default 5)")
    args = parser.parse_args()
    tests = args.tests or (200 if args.quick else 2000)
    heap_mb = args.heap_mb or (20 if args.quick else 200)
    rounds = args.rounds or (2 if args.quick else 5)
    print(f"synthetic suite: {tests} tests, {heap_mb} MB heap, {rounds} rounds, "
          f"Python {sys.version.split()[0]}")
    fast, right = report(measure(sys.executable, tests, heap_mb, rounds))
    # --quick (CI) fails on wrong verdicts only: timings on a shared runner are noise
    return 0 if right and (fast or args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
