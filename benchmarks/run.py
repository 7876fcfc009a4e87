"""leakguard's cost, measured side by side in one run: `python benchmarks/run.py [--quick]`.

Every ratio compares configurations measured alternately, round after round, in fresh
processes where it matters; the table gives the median and the spread (min-max) of each.
Needs leakguard installed in this interpreter's environment (see the README).
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import workloads  # noqa: E402


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


def timed_run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def hook_line_cost() -> float:
    """Microseconds the installed leakguard.pth line costs with LEAKGUARD unset."""
    import timeit

    with open(os.path.join(sysconfig.get_paths()["purelib"], "leakguard.pth")) as f:
        line = f.read().strip()
    saved = os.environ.pop("LEAKGUARD", None)
    try:
        code = compile(line, "leakguard.pth", "exec")  # site.py exec()s the line's text
        n = 20000
        return min(timeit.repeat(lambda: exec(code, {}), number=n, repeat=5)) / n * 1e6
    finally:
        if saved is not None:
            os.environ["LEAKGUARD"] = saved


def ab_worker(python: str, name: str, *args: str) -> dict[str, list[float]]:
    """A workload that alternates leakguard off and on inside one fresh process."""
    import json

    out = subprocess.run([python, os.path.join(HERE, "workloads.py"), name, *args],
                         env=env_for(False), check=True, capture_output=True, text=True)
    result: dict[str, list[float]] = json.loads(out.stdout.splitlines()[-1])
    return result


def alternate(rounds: int, configs: dict[str, object]) -> dict[str, list[float]]:
    """Run each configuration once per round, in turn; return every measurement."""
    results: dict[str, list[float]] = {name: [] for name in configs}
    order = list(configs)
    for n in range(rounds):
        # every other round in reverse (ABBA), so that no configuration always goes first
        for name in order if n % 2 == 0 else reversed(order):
            results[name].append(configs[name]())  # type: ignore[operator]
    return results


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def ratio(self, label: str, base: list[float], other: list[float], target: float,
              unit: str = "ms", scale: float = 1000.0) -> float:
        b, o = statistics.median(base), statistics.median(other)
        r = o / b
        spread = f"{min(other) * scale:.2f}-{max(other) * scale:.2f}"
        self.rows.append((label, f"{b * scale:.2f} -> {o * scale:.2f} {unit} ({spread})",
                          f"{r:.3f}", f"<= {target}", "ok" if r <= target else "MISSED"))
        return r

    def value(self, label: str, measured: str, shown: str, target: str, ok: bool) -> None:
        self.rows.append((label, measured, shown, target, "ok" if ok else "MISSED"))

    def print(self) -> None:
        head = ("measure", "medians (spread of the second)", "ratio", "target", "")
        widths = [max(len(r[i]) for r in [*self.rows, head]) for i in range(5)]
        for row in [head, *self.rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a few iterations only (CI runs this so the script cannot rot)")
    args = parser.parse_args()
    quick = args.quick
    rounds = 3 if quick else 15
    table = Table()
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
        hook_us = hook_line_cost()
        table.value("dormant hook line, in-process", f"{hook_us:.2f} us per interpreter start",
                    "", "< 500 us", hook_us < 500)
        res = alternate(rounds * 4, {
            "plain": lambda: timed_run([plain, "-c", "pass"], off),
            "hooked": lambda: timed_run([hooked, "-c", "pass"], off)})
        table.ratio("start-up, dormant (python -c pass)", res["plain"], res["hooked"], 1.02)

        # 2. start-up, active
        for lib in ("requests", "aiohttp"):
            res = alternate(rounds, {
                "off": lambda lib=lib: timed_run([hooked, "-c", f"import {lib}"], off),
                "on": lambda lib=lib: timed_run([hooked, "-c", f"import {lib}"], on)})
            table.ratio(f"start-up, active (import {lib})", res["off"], res["on"], 1.10)

        # 3. session lifecycle, construct + close: off and on alternated in one process
        for lib in workloads.LIFECYCLE:
            # httpx(2).Client() builds an SSL context each time: far fewer iterations
            n = (300 if quick else 2000) // (30 if lib in ("httpx", "httpx2") else 1)
            res = ab_worker(hooked, "lifecycle", lib, str(n), str(rounds))
            table.ratio(f"lifecycle {lib} (per session)", res["off"], res["on"], 1.25,
                        unit="us", scale=1e6)

        # 4 and 5. real work against a local server (in its own process), with tracemalloc
        server = subprocess.Popen([sys.executable, os.path.join(HERE, "workloads.py"),
                                   "serve"], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        try:
            requests_per_round = "30" if quick else "200"
            for lib in ("requests", "aiohttp"):
                res = ab_worker(hooked, "work", lib, requests_per_round, url, str(rounds))
                r_on = table.ratio(f"real work {lib} (per request)", res["off"], res["on"],
                                   1.03, unit="us", scale=1e6)
                r_tm = statistics.median(res["tracemalloc"]) / statistics.median(res["off"])
                share = (r_on - 1) / (r_tm - 1) if r_tm > 1 else float("inf")
                table.value(f"  vs tracemalloc=25 ({lib})",
                            f"leakguard {(r_on - 1) * 100:+.1f}%, tracemalloc "
                            f"{(r_tm - 1) * 100:+.1f}%", f"{share:.3f}", "<= 0.1",
                            share <= 0.1)
            # per request on one kept session, leakguard off/on alternated (responses on)
            per_round = "40" if quick else "400"
            for name in workloads.REQUEST:
                res = ab_worker(hooked, "request", name, per_round, url, str(rounds))
                table.ratio(f"per request: {name}", res["off"], res["on"], 1.03, unit="us",
                            scale=1e6)
            counts = ["10", "200"] if quick else ["10", "500"]
            for count in counts:
                out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"),
                                      "response_memory", count, url], env=on,
                                     capture_output=True, text=True, check=True).stdout
                per = float(out.split()[-1])
                table.value(f"memory per open response ({count} open)", f"{per:.0f} B", "",
                            "<= 512 B", per <= 512 or count == "10")
            # leakguard's own bytes (tracemalloc: ~1 ms a cycle here, so 100,000 cycles in
            # full mode), then a million cycles untraced: the whole process's blocks
            cycles = "5000" if quick else "100000"
            out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"),
                                  "response_retention", cycles, url], env=on,
                                 capture_output=True, text=True, check=True).stdout
            first, last = (int(x) for x in out.split()[-2:])
            table.value(f"retained after {cycles} request/release cycles",
                        f"{first} B after 1,000, {last} B after {cycles}",
                        f"{last - first:+d} B", "equal (+-1 KiB)", abs(last - first) <= 1024)
            cycles = "5000" if quick else "1000000"
            out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"),
                                  "response_blocks", cycles, url], env=on,
                                 capture_output=True, text=True, check=True).stdout
            first, last, records = (int(x) for x in out.split()[-3:])
            table.value(f"blocks after {cycles} request/release cycles (whole process)",
                        f"{first} after 1,000, {last} after {cycles}; {records} records left",
                        f"{last - first:+d}", "+-2000, no record",
                        abs(last - first) <= 2000 and records == 0)
        finally:
            server.terminate()
            server.wait()

        # 6. memory and scale
        sizes = ["1", "1000", "10000"] if quick else ["1", "1000", "100000"]
        for count in sizes:
            out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"), "memory", count],
                                 env=on, capture_output=True, text=True, check=True).stdout
            per = float(out.split()[-1])
            table.value(f"memory per open session ({count} open)", f"{per:.0f} B", "",
                        "<= 1024 B", per <= 1024 or count == "1")
        # census: one pass over the live records (LEAKGUARD_INTERVAL's cost per report)
        out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"), "census", "10000",
                              "5" if quick else "30"], env=off, capture_output=True,
                             text=True, check=True).stdout
        api_ms, tick_ms = (float(x) for x in out.split()[-2:])
        table.value("census, 10,000 open sessions (20 sites)", f"census() {api_ms:.2f} ms, "
                    f"interval report {tick_ms:.2f} ms", f"{tick_ms:.2f} ms", "< 5 ms",
                    tick_ms < 5)
        cycles = "20000" if quick else "1000000"
        out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"), "retention", cycles],
                             env=on, capture_output=True, text=True, check=True).stdout
        first, last = (int(x) for x in out.split()[-2:])
        # equal up to allocator noise: a dict's table, a bigger counter (not per cycle)
        table.value(f"retained after {cycles} cycles", f"{first} B after 1,000, {last} B after "
                    f"{cycles}", f"{last - first:+d} B", "equal (+-1 KiB)",
                    abs(last - first) <= 1024)
        total = "16000" if quick else "160000"
        out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"), "threads", total],
                             env=on, capture_output=True, text=True, check=True).stdout
        one, sixteen, lost, dup = out.split()[-4:]
        ratio = float(sixteen) / float(one)
        table.value("16 threads vs 1, active", f"{float(one):.0f} -> {float(sixteen):.0f} "
                    f"sessions/s; lost {lost}, duplicated {dup}", f"{ratio:.2f}",
                    "no lost/dup", lost == "0" and dup == "0")
        out = subprocess.run([hooked, os.path.join(HERE, "workloads.py"), "threads", total,
                              "rates"], env=off, capture_output=True, text=True,
                             check=True).stdout
        p_one, p_sixteen = (float(x) for x in out.split()[-2:])
        table.value("16 threads vs 1, dormant (context)", f"{p_one:.0f} -> {p_sixteen:.0f} "
                    "sessions/s", f"{p_sixteen / p_one:.2f}", "", True)

        # 7. the pytest plugin on a synthetic suite (benchmarks/pytest_suite.py)
        import pytest_suite

        suite = pytest_suite.measure(hooked, 200 if quick else 2000, 20 if quick else 200,
                                     2 if quick else 5)
        times, found = suite.times, suite.flagged
        for name, label, target in (("flag", "pytest --leakguard", 1.10),
                                    ("env", "LEAKGUARD=1 pytest", 1.05)):
            table.ratio(f"{label}, synthetic suite", times["plain"], times[name], target,
                        unit="s", scale=1.0)
        table.value("  leaking tests flagged (--leakguard, LEAKGUARD=1)",
                    f"{len(found['flag'])}, {len(found['env'])} of {len(suite.leaking)}",
                    "", "exactly those",
                    found["flag"] == suite.leaking == found["env"])
    print()
    table.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
