"""leakguard's cost, measured side by side in one run: `python benchmarks/run.py [--quick]`.

Every ratio compares configurations measured alternately, round after round, in fresh
processes where it matters; the table gives the median and the spread (min-max) of each.
The per-request rows (and real work) pair many short off/on rounds back to back and give
the median of the pair ratios, its interquartile range and 95 % interval, and the client's
CPU ratio (benchmarks/paired.py); so do the start-up rows, a pair being two interpreter
starts back to back (CPU: the child's). `--only TEXT` runs the rows whose name or group contains
TEXT (e.g. `--only 'per request'`). Needs leakguard installed in this interpreter's
environment (see the README).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import paired  # noqa: E402
import workloads  # noqa: E402
from table import Table  # noqa: E402


class Env:
    """Two bare virtualenvs seeing this environment's packages: one with the startup hook."""

    def __init__(self, root: str) -> None:
        site = sysconfig.get_paths()["purelib"]
        self.plain = self._make(os.path.join(root, "plain"), site, hook=False)
        self.hooked = self._make(os.path.join(root, "hooked"), site, hook=True)

    @staticmethod
    def _make(path: str, site: str, hook: bool) -> str:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
        python = os.path.join(path, "bin", "python")
        target = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                 "['purelib'])"], capture_output=True, text=True,
                                check=True).stdout.strip()
        with open(os.path.join(target, "deps.pth"), "w") as f:
            f.write(site + "\n")  # a path line: packages importable, their .pth files not run
        if hook:
            for name in ("leakguard.pth", "leakguard.start"):
                src = os.path.join(site, name)
                if not os.path.exists(src):
                    sys.exit(f"{src} is missing: install leakguard first (see the README)")
                shutil.copy(src, target)
        return python


def env_for(active: bool, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "LEAKGUARD" not in k}
    if active:
        env["LEAKGUARD"] = "1"
    env.update(extra)
    return env


def timed_run(argv: list[str], env: dict[str, str]) -> list[float]:
    """[wall, CPU] seconds of one run of `argv` (CPU: the child's user + system time)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime]


def hook_line_cost() -> float:
    """Microseconds the installed leakguard.pth line costs with LEAKGUARD unset, compiled
    and run, as site.py does with its text (warm: in a fresh process it costs more, which
    the next row measures whole)."""
    import timeit

    with open(os.path.join(sysconfig.get_paths()["purelib"], "leakguard.pth")) as f:
        line = f.read().strip()
    saved = os.environ.pop("LEAKGUARD", None)
    try:
        n = 5000
        return min(timeit.repeat(lambda: exec(line, {}), number=n, repeat=5)) / n * 1e6
    finally:
        if saved is not None:
            os.environ["LEAKGUARD"] = saved


def ab_worker(python: str, name: str, *args: str) -> dict[str, list[Any]]:
    """A workload that alternates leakguard off and on inside one fresh process."""
    import json

    out = subprocess.run([python, os.path.join(HERE, "workloads.py"), name, *args],
                         env=env_for(False), check=True, capture_output=True, text=True)
    result: dict[str, list[Any]] = json.loads(out.stdout.splitlines()[-1])
    return result


def alternate(rounds: int, configs: dict[str, object]) -> dict[str, list[Any]]:
    """Run each configuration once per round, in turn; return every measurement."""
    results: dict[str, list[Any]] = {name: [] for name in configs}
    order = list(configs)
    for n in range(rounds):
        # every other round in reverse (ABBA), so that no configuration always goes first
        for name in order if n % 2 == 0 else reversed(order):
            results[name].append(configs[name]())  # type: ignore[operator]
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a few iterations only (CI runs this so the script cannot rot)")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the rows whose name or group contains TEXT (again: or)")
    parser.add_argument("--method", choices=("paired", "medians"), default="paired",
                        help="per-request and real-work rows: short off/on pairs (default), "
                             "or the former ratio of medians of long rounds (to compare)")
    args = parser.parse_args()
    quick = args.quick
    rounds = 3 if quick else 15
    pairs = 6 if quick else 60  # start-up rows: pairs of processes
    table = Table()

    def want(*names: str) -> bool:
        """Whether --only selects a row of these names (its label, its group)."""
        text = " ".join(names).lower()
        return not args.only or any(o.lower() in text for o in args.only)

    import leakguard

    print(f"leakguard {leakguard.__version__}, Python {platform.python_version()} "
          f"({platform.machine()}, {os.cpu_count()} cores), {platform.platform()}")
    print(workloads.versions())
    with tempfile.TemporaryDirectory() as root:
        env = Env(root)
        plain, hooked = env.plain, env.hooked
        off, on = env_for(False), env_for(True)

        # 1. start-up, dormant: the installed hook with LEAKGUARD unset. Whole-process
        # timings are noisy at this scale, so the hook line itself is timed too.
        if want("start-up, dormant", "dormant hook line, in-process"):
            hook_us = hook_line_cost()
            table.value("dormant hook line, in-process",
                        f"{hook_us:.2f} us per interpreter start", "", "< 500 us",
                        hook_us < 500)
            # pairs of runs back to back (ABBA): the median of the pair ratios, as for
            # the per-request rows; one process is ~10 ms, so a pair meets one load
            res = alternate(pairs * 4, {
                "plain": lambda: timed_run([plain, "-c", "pass"], off),
                "hooked": lambda: timed_run([hooked, "-c", "pass"], off)})
            table.paired("start-up, dormant (python -c pass)",
                         paired.estimate(res["plain"], res["hooked"]), 1.02, unit="ms")

        # 2. start-up, active
        for lib in ("requests", "aiohttp"):
            if want(f"start-up, active (import {lib})"):
                res = alternate(pairs, {
                    "off": lambda lib=lib: timed_run([hooked, "-c", f"import {lib}"], off),
                    "on": lambda lib=lib: timed_run([hooked, "-c", f"import {lib}"], on)})
                table.paired(f"start-up, active (import {lib})",
                             paired.estimate(res["off"], res["on"]), 1.10, unit="ms")

        # 3. session lifecycle, construct + close: off and on alternated in one process
        for lib in workloads.LIFECYCLE:
            if want(f"lifecycle {lib} (per session)"):
                # httpx(2).Client() builds an SSL context each time: far fewer iterations
                n = (300 if quick else 2000) // (30 if lib in ("httpx", "httpx2") else 1)
                res = ab_worker(hooked, "lifecycle", lib, str(n), str(rounds))
                table.ratio(f"lifecycle {lib} (per session)", res["off"], res["on"], 1.25,
                            unit="us", scale=1e6)

        # 4 and 5. real work and per request against a local server (in its own process)
        with_server = [f"real work {lib} (per request)" for lib in ("requests", "aiohttp")]
        with_server += [f"per request: {name}" for name in workloads.REQUEST]
        with_server += ["memory per open response", "retained after request/release cycles",
                        "blocks after request/release cycles (whole process)"]
        if any(want(label, "responses") for label in with_server):
            server = subprocess.Popen([sys.executable, os.path.join(HERE, "workloads.py"),
                                       "serve"], stdout=subprocess.PIPE, text=True)
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            try:
                with_url(table, want, hooked, url, quick, rounds, args.method)
            finally:
                server.terminate()
                server.wait()

        # 6. memory and scale, 7. the pytest plugin
        scale(table, want, hooked, quick)
    print()
    table.print()
    return 0


def with_url(table: Table, want: Callable[..., bool], hooked: str, url: str, quick: bool,
             rounds: int, method: str) -> None:
    """The rows that need the local server: real work, per request, responses' memory."""
    on = env_for(True)
    for lib in ("requests", "aiohttp"):
        label = f"real work {lib} (per request)"
        if not want(label):
            continue
        if method == "medians":
            res = ab_worker(hooked, "work", lib, "30" if quick else "200", url, str(rounds))
            r_on = table.ratio(label, res["off"], res["on"], 1.03, unit="us", scale=1e6)
            r_tm = statistics.median(res["tracemalloc"]) / statistics.median(res["off"])
        else:
            # a session per request, ~1 ms each: 10 per round
            res = ab_worker(hooked, "work_pairs", lib, "10", url, "24" if quick else "400")
            est = paired.estimate(res["off"], res["on"])
            table.paired(label, est, 1.03)
            r_on = est.wall
            r_tm = (statistics.median(r[0] for r in res["tracemalloc"])
                    / statistics.median(r[0] for r in res["off"]))
        share = (r_on - 1) / (r_tm - 1) if r_tm > 1 else float("inf")
        table.value(f"  vs tracemalloc=25 ({lib})",
                    f"leakguard {(r_on - 1) * 100:+.1f}%, tracemalloc "
                    f"{(r_tm - 1) * 100:+.1f}%", f"{share:.3f}", "<= 0.1", share <= 0.1)
    # per request on one kept session, leakguard off/on (responses on)
    for name in workloads.REQUEST:
        label = f"per request: {name}"
        if not want(label):
            continue
        if method == "medians":
            res = ab_worker(hooked, "request", name, "40" if quick else "400", url,
                            str(rounds))
            table.ratio(label, res["off"], res["on"], 1.03, unit="us", scale=1e6)
        else:
            # 20 requests a round (~5-20 ms): short enough that a pair meets one load
            res = ab_worker(hooked, "request_pairs", name, "20", url,
                            "30" if quick else "400")
            table.paired(label, paired.estimate(res["off"], res["on"]), 1.03)
    if want("memory per open response", "responses"):
        for count in ["10", "200"] if quick else ["10", "500"]:
            out = run_workload(hooked, on, "response_memory", count, url)
            per = float(out.split()[-1])
            table.value(f"memory per open response ({count} open)", f"{per:.0f} B", "",
                        "<= 512 B", per <= 512 or count == "10")
    # leakguard's own bytes (tracemalloc: ~1 ms a cycle here, so 100,000 cycles in
    # full mode), then a million cycles untraced: the whole process's blocks
    if want("retained after request/release cycles", "responses"):
        cycles = "5000" if quick else "100000"
        out = run_workload(hooked, on, "response_retention", cycles, url)
        first, last = (int(x) for x in out.split()[-2:])
        table.value(f"retained after {cycles} request/release cycles",
                    f"{first} B after 1,000, {last} B after {cycles}",
                    f"{last - first:+d} B", "equal (+-1 KiB)", abs(last - first) <= 1024)
    if want("blocks after request/release cycles (whole process)", "responses"):
        cycles = "5000" if quick else "1000000"
        out = run_workload(hooked, on, "response_blocks", cycles, url)
        first, last, records = (int(x) for x in out.split()[-3:])
        table.value(f"blocks after {cycles} request/release cycles (whole process)",
                    f"{first} after 1,000, {last} after {cycles}; {records} records left",
                    f"{last - first:+d}", "+-2000, no record",
                    abs(last - first) <= 2000 and records == 0)


def run_workload(python: str, env: dict[str, str], *args: str) -> str:
    """The standard output of `workloads.py ARGS` run by `python`."""
    return subprocess.run([python, os.path.join(HERE, "workloads.py"), *args], env=env,
                          capture_output=True, text=True, check=True).stdout


def scale(table: Table, want: Callable[..., bool], hooked: str, quick: bool) -> None:
    """Memory and scale; the pytest plugin on a synthetic suite."""
    off, on = env_for(False), env_for(True)
    for count in ["1", "1000", "10000"] if quick else ["1", "1000", "100000"]:
        if want(f"memory per open session ({count} open)", "memory"):
            per = float(run_workload(hooked, on, "memory", count).split()[-1])
            table.value(f"memory per open session ({count} open)", f"{per:.0f} B", "",
                        "<= 1024 B", per <= 1024 or count == "1")
    # census: one pass over the live records (LEAKGUARD_INTERVAL's cost per report)
    if want("census, 10,000 open sessions (20 sites)"):
        out = run_workload(hooked, off, "census", "10000", "5" if quick else "30")
        api_ms, tick_ms = (float(x) for x in out.split()[-2:])
        table.value("census, 10,000 open sessions (20 sites)", f"census() {api_ms:.2f} ms, "
                    f"interval report {tick_ms:.2f} ms", f"{tick_ms:.2f} ms", "< 5 ms",
                    tick_ms < 5)
    if want("retained after cycles", "memory"):
        cycles = "20000" if quick else "1000000"
        first, last = (int(x) for x in
                       run_workload(hooked, on, "retention", cycles).split()[-2:])
        # equal up to allocator noise: a dict's table, a bigger counter (not per cycle)
        table.value(f"retained after {cycles} cycles", f"{first} B after 1,000, {last} B "
                    f"after {cycles}", f"{last - first:+d} B", "equal (+-1 KiB)",
                    abs(last - first) <= 1024)
    total = "16000" if quick else "160000"
    if want("16 threads vs 1, active", "threads"):
        one, sixteen, lost, dup = run_workload(hooked, on, "threads", total).split()[-4:]
        table.value("16 threads vs 1, active", f"{float(one):.0f} -> {float(sixteen):.0f} "
                    f"sessions/s; lost {lost}, duplicated {dup}",
                    f"{float(sixteen) / float(one):.2f}", "no lost/dup",
                    lost == "0" and dup == "0")
    if want("16 threads vs 1, dormant (context)", "threads"):
        out = run_workload(hooked, off, "threads", total, "rates")
        p_one, p_sixteen = (float(x) for x in out.split()[-2:])
        table.value("16 threads vs 1, dormant (context)", f"{p_one:.0f} -> {p_sixteen:.0f} "
                    "sessions/s", f"{p_sixteen / p_one:.2f}", "", True)

    # the pytest plugin on a synthetic suite (benchmarks/pytest_suite.py)
    if not want("pytest --leakguard, synthetic suite", "LEAKGUARD=1 pytest, synthetic suite",
                "leaking tests flagged"):
        return
    import pytest_suite

    suite = pytest_suite.measure(hooked, 200 if quick else 2000, 20 if quick else 200,
                                 2 if quick else 5)
    times, cpu, found = suite.times, suite.cpu, suite.flagged
    for name, label, target in (("flag", "pytest --leakguard", 1.10),
                                ("env", "LEAKGUARD=1 pytest", 1.05)):
        # a round runs the three configurations back to back (ABBA): paired by round
        table.paired(f"{label}, synthetic suite",
                     paired.estimate([list(r) for r in zip(times["plain"], cpu["plain"])],
                                     [list(r) for r in zip(times[name], cpu[name])]),
                     target, unit="s")
    table.value("  leaking tests flagged (--leakguard, LEAKGUARD=1)",
                f"{len(found['flag'])}, {len(found['env'])} of {len(suite.leaking)}",
                "", "exactly those", found["flag"] == suite.leaking == found["env"])


if __name__ == "__main__":
    sys.exit(main())
