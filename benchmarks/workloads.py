"""The workloads benchmarks/run.py times, each in a fresh process: `workloads.py NAME ARGS`."""

from __future__ import annotations

import gc
import json
import os
import sys
import time

import paired

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

LIFECYCLE = {
    "requests": "import requests\ndef once():\n    requests.Session().close()\n",
    "aiohttp": ("import asyncio, aiohttp\nloop = asyncio.new_event_loop()\n"
                "async def _once():\n    await aiohttp.ClientSession().close()\n"
                "def once():\n    loop.run_until_complete(_once())\n"),
    "httpx": "import httpx\ndef once():\n    httpx.Client().close()\n",
    "httpx2": "import httpx2\ndef once():\n    httpx2.Client().close()\n",
    "urllib3": "import urllib3\ndef once():\n    urllib3.PoolManager().clear()\n",
}


# Per-request cost on one kept session: each defines setup(url), many(n) and teardown();
# a new client library adds one entry (run.py makes one row per entry).
REQUEST = {
    "requests": ("import requests\n"
                 "def setup(url):\n    global s, URL\n    s = requests.Session(); URL = url\n"
                 "def many(n):\n    for _ in range(n):\n        s.get(URL).content\n"
                 "def teardown():\n    s.close()\n"),
    "requests stream=True + close": (
        "import requests\n"
        "def setup(url):\n    global s, URL\n    s = requests.Session(); URL = url\n"
        "def many(n):\n    for _ in range(n):\n        s.get(URL, stream=True).close()\n"
        "def teardown():\n    s.close()\n"),
    "aiohttp async with get() + read": (
        "import asyncio, aiohttp\nloop = asyncio.new_event_loop()\n"
        "async def _setup():\n    return aiohttp.ClientSession()\n"
        "def setup(url):\n    global s, URL\n"
        "    s = loop.run_until_complete(_setup()); URL = url\n"
        "async def _many(n):\n    for _ in range(n):\n"
        "        async with s.get(URL) as r:\n            await r.read()\n"
        "def many(n):\n    loop.run_until_complete(_many(n))\n"
        "def teardown():\n    loop.run_until_complete(s.close())\n"),
    "httpx": ("import httpx\n"
              "def setup(url):\n    global c, URL\n    c = httpx.Client(); URL = url\n"
              "def many(n):\n    for _ in range(n):\n        c.get(URL)\n"
              "def teardown():\n    c.close()\n"),
    "httpx2": ("import httpx2\n"
               "def setup(url):\n    global c, URL\n    c = httpx2.Client(); URL = url\n"
               "def many(n):\n    for _ in range(n):\n        c.get(URL)\n"
               "def teardown():\n    c.close()\n"),
    "httpx2 stream() + read": (
        "import httpx2\n"
        "def setup(url):\n    global c, URL\n    c = httpx2.Client(); URL = url\n"
        "def many(n):\n    for _ in range(n):\n"
        "        with c.stream('GET', URL) as r:\n            r.read()\n"
        "def teardown():\n    c.close()\n"),
}


def versions() -> str:
    """The client-library versions in use."""
    from importlib import metadata

    found = []
    for name in ("requests", "aiohttp", "httpx", "httpx2", "urllib3", "wrapt"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def side_by_side(run_round: Callable[[], float], rounds: int,
                 modes: tuple[str, ...] = ("off", "on")) -> dict[str, list[float]]:
    """Alternate leakguard off/on (and tracemalloc) round by round in this one process."""
    results: dict[str, list[float]] = {m: [] for m in modes}
    paired.warm_up(run_round)
    for n in range(rounds):
        for mode in modes if n % 2 == 0 else reversed(modes):
            results[mode].append(paired.in_mode(mode, run_round))
    return results


def lifecycle(lib: str, n: int, rounds: int) -> dict[str, list[float]]:
    namespace: dict[str, object] = {}
    exec(LIFECYCLE[lib], namespace)
    once = namespace["once"]
    assert callable(once)

    def run_round() -> float:
        start = time.perf_counter()
        for _ in range(n):
            once()
        return (time.perf_counter() - start) / n

    return side_by_side(run_round, rounds)


def serve() -> None:
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # one write per response: headers and body written apart meet the client's delayed
        # ACK on a kept-alive connection (40 ms per request)
        wbufsize = 1 << 16

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


def work(lib: str, n: int, url: str, rounds: int) -> dict[str, list[float]]:
    run_round = _work_round(lib, n, url)
    return side_by_side(lambda: run_round()[0], rounds, ("off", "on", "tracemalloc"))


def work_pairs(lib: str, n: int, url: str, pairs: int) -> dict[str, list[list[float]]]:
    """Short rounds of `n` requests, a session each, off/on paired; tracemalloc every 8th."""
    return paired.run(_work_round(lib, n, url), pairs, ("tracemalloc",), 8)


def _work_round(lib: str, n: int, url: str) -> Callable[[], list[float]]:
    """One round of `n` requests, each on a new session: [wall, cpu, switches] per request."""
    if lib == "requests":
        import requests

        def many() -> None:
            for _ in range(n):
                with requests.Session() as s:
                    s.get(url).content  # noqa: B018
    else:
        import asyncio

        import aiohttp

        async def amany() -> None:
            for _ in range(n):
                async with aiohttp.ClientSession() as s, s.get(url) as r:
                    await r.read()

        def many() -> None:
            asyncio.run(amany())

    def run_round() -> list[float]:
        usage = paired.clock()
        many()
        wall, cpu, switches = (b - a for a, b in zip(usage, paired.clock()))
        return [wall / n, cpu / n, switches]

    return run_round


def request(name: str, n: int, url: str, rounds: int) -> dict[str, list[float]]:
    """Seconds per request on one kept session (made after leakguard is switched on)."""
    run_round = _request_round(name, n, url)
    return side_by_side(lambda: run_round()[0], rounds)


def request_pairs(name: str, n: int, url: str, pairs: int) -> dict[str, list[list[float]]]:
    """Many short rounds of `n` requests, leakguard off and on back to back (see paired.run)."""
    return paired.run(_request_round(name, n, url), pairs)


def _request_round(name: str, n: int, url: str) -> Callable[[], list[float]]:
    """One round: a fresh session, one untimed request (the connection), `n` timed ones."""
    namespace: dict[str, Callable[..., None]] = {}
    exec(REQUEST[name], namespace)

    def run_round() -> list[float]:
        namespace["setup"](url)
        # the connection is opened outside the timing: rounds are short, and the cost of
        # a TCP handshake per round would dilute the per-request difference
        namespace["many"](1)
        usage = paired.clock()
        namespace["many"](n)
        wall, cpu, switches = (b - a for a, b in zip(usage, paired.clock()))
        namespace["teardown"]()
        return [wall / n, cpu / n, switches]

    return run_round


def response_memory(count: int, url: str) -> float:
    """leakguard's bytes per open tracked response (urllib3, preload_content=False)."""
    import tracemalloc

    import urllib3

    tracemalloc.start(1)
    pm = urllib3.PoolManager(maxsize=count + 1)
    pm.request("GET", url, preload_content=False).release_conn()  # warm up: the stack, caches
    base = _leakguard_bytes()
    keep = [pm.request("GET", url, preload_content=False) for _ in range(count)]
    used = _leakguard_bytes() - base
    for r in keep:
        r.release_conn()
    pm.clear()
    return used / count


def response_retention(cycles: int, url: str) -> tuple[int, int]:
    """leakguard's bytes after 1,000 and after `cycles` request/release cycles."""
    import tracemalloc

    import urllib3

    tracemalloc.start(1)
    pm = urllib3.PoolManager()
    for _ in range(1000):
        pm.request("GET", url, preload_content=False).release_conn()
    first = _leakguard_bytes()
    for _ in range(cycles - 1000):
        pm.request("GET", url, preload_content=False).release_conn()
    last = _leakguard_bytes()
    pm.clear()
    return first, last


def response_blocks(cycles: int, url: str) -> tuple[int, int, int]:
    """Allocated blocks of the whole process after 1,000 and after `cycles` request/release
    cycles, and leakguard's records left: no tracemalloc (which makes a cycle 4x slower), so
    a million cycles take minutes; a block kept per cycle would show as a million."""
    import urllib3

    from leakguard._tracker import TRACKER

    pm = urllib3.PoolManager()
    for _ in range(1000):
        pm.request("GET", url, preload_content=False).release_conn()
    gc.collect()
    first = sys.getallocatedblocks()
    for _ in range(cycles - 1000):
        pm.request("GET", url, preload_content=False).release_conn()
    gc.collect()
    last = sys.getallocatedblocks()
    records = len(TRACKER) - 1  # the PoolManager's own
    pm.clear()
    return first, last, records


def _leakguard_bytes() -> int:
    import tracemalloc

    import leakguard

    here = os.path.dirname(os.path.abspath(leakguard.__file__))
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, os.path.join(here, "*"))])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def memory(count: int) -> float:
    import tracemalloc

    import urllib3

    tracemalloc.start(1)
    urllib3.PoolManager().clear()  # warm up: the site's stack, caches
    base = _leakguard_bytes()
    keep = [urllib3.PoolManager() for _ in range(count)]
    used = _leakguard_bytes() - base
    for pm in keep:
        pm.clear()
    return used / count


def census(count: int, rounds: int) -> tuple[float, float]:
    """Median ms of census() and of one interval census report, `count` sessions open."""
    import logging

    import urllib3

    import leakguard
    from leakguard import _api

    logging.getLogger("leakguard").addHandler(logging.NullHandler())  # the block: not shown
    leakguard.enable(interval=3600, max_open=0)  # the timer waits; ticks are timed here
    ticker = _api._STATE.ticker
    assert ticker is not None
    sites = [compile(f"def make{i}(urllib3):\n    return urllib3.PoolManager()\n",
                     f"<site {i}>", "exec") for i in range(20)]
    makers = []
    for code in sites:
        ns: dict[str, object] = {}
        exec(code, ns)
        makers.append(ns[next(k for k in ns if k.startswith("make"))])
    keep = [makers[i % 20](urllib3) for i in range(count)]  # type: ignore[operator]
    api, tick = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        leakguard.census()
        api.append(time.perf_counter() - start)
        keep.append(makers[0](urllib3))  # type: ignore[operator]  # something grew: it speaks
        start = time.perf_counter()
        said = ticker.tick()
        tick.append(time.perf_counter() - start)
        assert said is not None
    for pm in keep:
        pm.clear()
    leakguard.disable()
    return sorted(api)[len(api) // 2] * 1e3, sorted(tick)[len(tick) // 2] * 1e3


def retention(cycles: int) -> tuple[int, int]:
    import tracemalloc

    import urllib3

    tracemalloc.start(1)
    for _ in range(1000):
        urllib3.PoolManager().clear()
    first = _leakguard_bytes()
    for _ in range(cycles - 1000):
        urllib3.PoolManager().clear()
    return first, _leakguard_bytes()


def threads(total: int, rates_only: bool = False) -> tuple[float, ...]:
    import logging
    import threading

    import urllib3

    def make(k: int, drop: bool) -> None:
        for i in range(k):
            pm = urllib3.PoolManager()
            if not (drop and i % 2):
                pm.clear()

    def rate(nthreads: int) -> float:
        ts = [threading.Thread(target=make, args=(total // nthreads, False))
              for _ in range(nthreads)]
        start = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return total / (time.perf_counter() - start)

    one = rate(1)
    sixteen = rate(16)
    if rates_only:
        return one, sixteen

    seen: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logging.getLogger("leakguard").addHandler(Count())
    logging.getLogger("leakguard").propagate = False
    per = 2000
    ts = [threading.Thread(target=make, args=(per, True)) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    gc.collect()
    leaks = [m for m in seen if "garbage-collected without close()" in m and "\n" in m]
    expected = 16 * per // 2
    return one, sixteen, max(0, expected - len(leaks)), len(leaks) - len(set(map(id, leaks)))


if __name__ == "__main__":
    name, args = sys.argv[1], sys.argv[2:]
    if name == "serve":
        serve()
    elif name == "lifecycle":
        print(json.dumps(lifecycle(args[0], int(args[1]), int(args[2]))))
    elif name == "work":
        print(json.dumps(work(args[0], int(args[1]), args[2], int(args[3]))))
    elif name == "work_pairs":
        print(json.dumps(work_pairs(args[0], int(args[1]), args[2], int(args[3]))))
    elif name == "request":
        print(json.dumps(request(args[0], int(args[1]), args[2], int(args[3]))))
    elif name == "request_pairs":
        print(json.dumps(request_pairs(args[0], int(args[1]), args[2], int(args[3]))))
    elif name == "response_memory":
        print(response_memory(int(args[0]), args[1]))
    elif name == "response_retention":
        print(*response_retention(int(args[0]), args[1]))
    elif name == "response_blocks":
        print(*response_blocks(int(args[0]), args[1]))
    elif name == "memory":
        print(memory(int(args[0])))
    elif name == "census":
        print(*census(int(args[0]), int(args[1])))
    elif name == "retention":
        print(*retention(int(args[0])))
    elif name == "threads":
        print(*threads(int(args[0]), rates_only=args[1:] == ["rates"]))
