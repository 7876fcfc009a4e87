"""Responses that hold a connection: reported when collected or open at exit, never when clean."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import weakref
from pathlib import Path
from typing import Any, Callable

import aiohttp
import httpx
import pytest
import requests
import urllib3
from conftest import SERVER_SNIPPET, Reports, line_of, run_python

import leakguard
from leakguard._tracker import TRACKER
from leakguard.integrations.httpx import pool_request

# /big: 1 MiB (not read at once by anyone), /close: the server closes after the response,
# anything else: "ok" on a keep-alive connection
BIG_SERVER = '''
import http.server, threading
class _BigH(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"x" * (1 << 20) if self.path.startswith("/big") else b"ok"
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass
    def log_message(self, *a): pass
class _Srv(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address): pass  # a client that went away
_big = _Srv(("127.0.0.1", 0), _BigH)
threading.Thread(target=_big.serve_forever, daemon=True).start()
BIG = "http://127.0.0.1:%d/" % _big.server_address[1]
'''


def _line(marker: str) -> int:
    return line_of(__file__, marker)


def _responses(reports: Reports) -> list[str]:
    # log records carry no "leakguard: " prefix (stderr does): one shape for both here
    return ["leakguard: " + t.removeprefix("leakguard: ") for t in reports.warnings()
            if "Response " in t.split("\n")[0]]


# -- requests -----------------------------------------------------------------------------


def test_requests_streamed_response_dropped_is_reported_with_the_request_line(
        reports: Reports, big_url: str) -> None:
    s = requests.Session()

    def download() -> None:
        r = s.get(big_url + "big", stream=True)  # REQ-LEAK
        assert r.status_code == 200

    download()
    [text] = _responses(reports)
    port = big_url.split(":")[2].rstrip("/")
    assert text.startswith("leakguard: requests.Response garbage-collected without close() "
                           f"(holding a connection to http://127.0.0.1:{port}; created ")
    assert text.split("\n")[0].endswith("in thread MainThread)")  # no request count
    lines = text.split("\n")
    assert lines[1] == "Response created at (most recent call last):"
    # the stack ends at the user's line, not in requests
    assert lines[-2].endswith(f'line {_line("REQ-LEAK")}, in download')
    assert lines[-1].strip() == 'r = s.get(big_url + "big", stream=True)  # REQ-LEAK'
    s.close()


def _requests_clean(s: requests.Session, url: str) -> None:
    s.get(url + "big", stream=True).content  # noqa: B018  read
    s.get(url + "big", stream=True).close()
    with s.get(url + "big", stream=True) as r:
        assert r.status_code == 200
    for _ in s.get(url + "big", stream=True).iter_content(65536):
        pass
    r = s.get(url + "close", stream=True)  # the server closes: read to its end
    assert r.content == b"ok"
    s.get(url + "big")  # not streamed: never tracked at all


@pytest.mark.parametrize("lib", ["requests", "urllib3", "httpx", "httpx-async", "aiohttp"])
def test_clean_paths_are_never_reported(reports: Reports, big_url: str, lib: str) -> None:
    CLEAN[lib](big_url)
    gc.collect()
    assert _responses(reports) == []
    assert [r for r in TRACKER._live.values() if r.kind == "response"] == []


def _clean_requests(url: str) -> None:
    with requests.Session() as s:
        _requests_clean(s, url)


def _clean_urllib3(url: str) -> None:
    with urllib3.PoolManager() as pm:
        pm.request("GET", url + "big", preload_content=False).read()
        pm.request("GET", url + "big", preload_content=False).release_conn()
        pm.request("GET", url + "big", preload_content=False).close()
        pm.request("GET", url + "big", preload_content=False).drain_conn()
        with pm.request("GET", url + "big", preload_content=False) as r:
            assert r.status == 200
        for _ in pm.request("GET", url + "big", preload_content=False).stream(65536):
            pass
        assert pm.request("GET", url + "close", preload_content=False).read() == b"ok"
        pm.request("GET", url + "big")


def _clean_httpx(url: str, module: Any = httpx) -> None:
    """Every clean path of a streamed response; httpx2's tests reuse it with module=httpx2."""
    with module.Client() as c:
        with c.stream("GET", url + "big") as r:
            assert r.status_code == 200
        c.send(c.build_request("GET", url + "big"), stream=True).read()
        c.send(c.build_request("GET", url + "big"), stream=True).close()
        for _ in c.send(c.build_request("GET", url + "big"), stream=True).iter_bytes():
            pass
        c.send(c.build_request("GET", url + "close"), stream=True).read()
        c.get(url + "big")


def _clean_httpx_async(url: str, module: Any = httpx) -> None:
    async def main() -> None:
        async with module.AsyncClient() as c:
            async with c.stream("GET", url + "big") as r:
                assert r.status_code == 200
            await (await c.send(c.build_request("GET", url + "big"), stream=True)).aread()
            await (await c.send(c.build_request("GET", url + "big"), stream=True)).aclose()
            await c.get(url + "big")

    asyncio.run(main())


def _clean_aiohttp(url: str) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "big") as r:
                assert r.status == 200
            await (await s.get(url + "big")).read()
            (await s.get(url + "big")).release()
            (await s.get(url + "big")).close()
            r = await s.get(url + "big")
            async for _ in r.content.iter_chunked(65536):
                pass
            r = await s.get(url + "close")  # the server closes after it
            assert await r.read() == b"ok"
            gc.collect()

    asyncio.run(main())


CLEAN: dict[str, Callable[[str], None]] = {
    "requests": _clean_requests, "urllib3": _clean_urllib3, "httpx": _clean_httpx,
    "httpx-async": _clean_httpx_async, "aiohttp": _clean_aiohttp}


# -- every library: dropped (gc) and open at exit, in a real process ----------------------

LEAKS = {
    "requests": ("requests.Response", '''
import requests
s = requests.Session()
def work():
    r = s.get(BIG + "big", stream=True)  # LEAK
    return r
'''),
    "urllib3": ("urllib3.HTTPResponse", '''
import urllib3
pm = urllib3.PoolManager()
def work():
    r = pm.request("GET", BIG + "big", preload_content=False)  # LEAK
    return r
'''),
    "httpx": ("httpx.Response", '''
import httpx
c = httpx.Client()
def work():
    r = c.send(c.build_request("GET", BIG + "big"), stream=True)  # LEAK
    return r
'''),
    "aiohttp": ("aiohttp.ClientResponse", '''
import asyncio, aiohttp
loop = asyncio.new_event_loop()
async def _session():
    return aiohttp.ClientSession()
s = loop.run_until_complete(_session())
async def _work():
    r = await s.get(BIG + "big")  # LEAK
    return r
def work():
    return loop.run_until_complete(_work())
'''),
}


@pytest.mark.parametrize("lib", list(LEAKS))
@pytest.mark.parametrize("when", ["gc", "exit"])
def test_leaked_response_in_a_process(lib: str, when: str, tmp_path: Path) -> None:
    type_name, code = LEAKS[lib]
    if when == "gc":
        # aiohttp's protocol keeps an unreleased response alive until its session closes
        ending = ("keep = work()\nloop.run_until_complete(s.close())\ndel keep\n"
                  if lib == "aiohttp" else "work()\n")
        ending += "import gc; gc.collect()\nprint('collected', flush=True)\n"
    else:
        ending = "keep = work()\n"
    report = tmp_path / "leaks.jsonl"
    r = run_python(BIG_SERVER + code + ending,
                   env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    assert r.returncode == 0, r.stderr
    what = "garbage-collected without close()" if when == "gc" else \
        "still open at interpreter exit"
    head = f"leakguard: {type_name} {what} (holding a connection to http://127.0.0.1:"
    assert r.stderr.count(head) == 1, r.stderr
    short = type_name.rsplit(".", 1)[-1]
    block = r.stderr.split(head)[1]
    assert f"{short} created at (most recent call last):" in block
    line = (BIG_SERVER + code).splitlines().index(
        next(x for x in code.splitlines() if "# LEAK" in x)) + 1
    assert f'app.py", line {line}, in ' in block
    event = "garbage-collected without close()" if when == "gc" else "still open at exit"
    assert f"1 leaked response (1 {event})" in r.stderr
    assert f"  1 x {type_name} created at app.py:{line} in " in r.stderr
    [rec] = [json.loads(x) for x in report.read_text().splitlines()
             if json.loads(x)["kind"] == "response"]
    assert rec["event"] == when and rec["type"] == type_name
    assert rec["requests"] is None and rec["last_use"] is None
    assert rec["connections"] == 1 and rec["origins"][0].startswith("http://127.0.0.1:")
    assert rec["stack"][-1]["line"] == line


def test_responses_off_tracks_none(big_url: str) -> None:
    r = run_python(BIG_SERVER + LEAKS["requests"][1] + "keep = work()\n",
                   env={"LEAKGUARD": "1", "LEAKGUARD_RESPONSES": "0"})
    assert "Response" not in r.stderr
    assert "leakguard: 1 leaked session (1 still open at exit)" in r.stderr


def test_summary_has_one_clause_per_kind() -> None:
    code = BIG_SERVER + LEAKS["requests"][1] + "work()\n"
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert ("leakguard: 1 leaked session (1 still open at exit); "
            "1 leaked response (1 garbage-collected without close())") in r.stderr


def test_non_streamed_requests_are_not_tracked(reports: Reports, big_url: str) -> None:
    with requests.Session() as s:
        before = len(TRACKER)
        r = s.get(big_url)
        assert len(TRACKER) == before
        assert r.content == b"ok"


# -- what the record keeps ------------------------------------------------------------------


def _socket_closed_when_dropped(lib: str, url: str) -> bool:
    """Drop an unread response; is its socket gone at once (as the library alone does)?"""
    sock: Any
    if lib == "requests":
        with requests.Session() as s:
            r = s.get(url + "big", stream=True)
            sock = weakref.ref(r.raw._connection.sock)
            del r
            return sock() is None
    if lib == "requests-cycle":  # collected by the cyclic collector: closed at its end
        with requests.Session() as s:
            r = s.get(url + "big", stream=True)
            r.cycle = r
            sock = weakref.ref(r.raw._connection.sock)
            del r
            gc.collect()
            return sock() is None
    if lib == "httpx":  # the pool keeps a dropped response's connection (and socket)
        with httpx.Client() as c:
            h = c.send(c.build_request("GET", url + "big"), stream=True)
            slot = pool_request(h)
            sock = weakref.ref(slot.connection._connection._network_stream._sock)
            del h, slot
            gc.collect()
            return sock() is None
    if lib == "urllib3":
        with urllib3.PoolManager() as pm:
            u = pm.request("GET", url + "big", preload_content=False)
            sock = weakref.ref(u._connection.sock)
            del u
            return sock() is None
    assert lib == "aiohttp"

    async def main() -> bool:
        async with aiohttp.ClientSession() as s:
            a = await s.get(url + "big")
            transport = a.connection.transport
            del a
            gc.collect()
            # aiohttp's own protocol keeps it (and its socket) until the session closes
            return bool(transport.is_closing())

    return asyncio.run(main())


@pytest.mark.parametrize("lib", ["requests", "requests-cycle", "urllib3", "httpx", "aiohttp"])
def test_dropped_response_socket_closes_exactly_as_without_leakguard(
        big_url: str, lib: str) -> None:
    gc.collect()
    without = _socket_closed_when_dropped(lib, big_url)
    leakguard.enable()
    try:
        with_it = _socket_closed_when_dropped(lib, big_url)
    finally:
        leakguard.disable()
    assert with_it == without
    if lib in ("requests", "requests-cycle", "urllib3"):
        assert with_it  # reference counting (or the collection) closes it, leakguard or not


def test_aiohttp_responses_in_cycles_are_judged_by_their_connection(
        reports: Reports, big_url: str) -> None:
    # collected by the cyclic collector: aiohttp's __del__ releases the connection of the
    # one never released (a leak), the others let go of theirs before (never reported)
    async def main() -> None:
        s = aiohttp.ClientSession()
        leaked = await s.get(big_url + "big")  # CYCLE-LEAK
        leaked.cycle = leaked
        read = await s.get(big_url + "big")
        await read.read()
        read.cycle = read
        released = await s.get(big_url + "big")
        released.release()
        released.cycle = released
        direct = await s.get(big_url + "big")
        assert direct.connection is not None
        direct.connection.close()  # under the response: it holds nothing any more
        direct.cycle = direct
        del leaked, read, released, direct
        await s.close()  # aiohttp's protocol keeps the unreleased one until then
        gc.collect()

    asyncio.run(main())
    [text] = _responses(reports)
    assert text.startswith("leakguard: aiohttp.ClientResponse garbage-collected without close()"
                           " (holding a connection to http://127.0.0.1:")
    assert f'line {_line("# CYCLE-LEAK")}, in main' in text
    assert [r for r in TRACKER._live.values() if r.kind == "response"] == []


def test_record_holds_the_response_weakly(reports: Reports, big_url: str) -> None:
    with httpx.Client() as c:
        r = c.send(c.build_request("GET", big_url + "big"), stream=True)
        ref = weakref.ref(r)
        r.close()
        del r
        gc.collect()
        assert ref() is None


def test_check_raises_for_a_leaked_response(reports: Reports, big_url: str) -> None:
    s = requests.Session()
    with pytest.raises(leakguard.LeakError) as info:
        with leakguard.check():
            s.get(big_url + "big", stream=True)
    s.close()
    assert str(info.value).startswith("1 leaked response\nleakguard: requests.Response ")


def test_suppressed_like_a_session(tmp_path: Path) -> None:
    rules = tmp_path / "supp.txt"
    rules.write_text("leak:work\n")
    code = BIG_SERVER + LEAKS["urllib3"][1] + "work()\n"
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_SUPPRESSIONS": str(rules),
                              "LEAKGUARD_EXITCODE": "3"})
    assert "garbage-collected" not in r.stderr
    assert "1 suppressed" in r.stderr and r.returncode == 3  # the PoolManager is open


def test_exitcode_counts_responses(tmp_path: Path) -> None:
    code = BIG_SERVER + LEAKS["httpx"][1] + "work()\nimport gc; gc.collect()\nc.close()\n"
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "7"})
    assert "leakguard: 1 leaked response" in r.stderr
    assert r.returncode == 7


# -- the bug this catches: a pool that runs dry ---------------------------------------------

POOL_DEMO = '''
import gc, httpx
c = httpx.Client(limits=httpx.Limits(max_connections=1), timeout=httpx.Timeout(5, pool=0.5))
def first():
    r = c.send(c.build_request("GET", BIG + "big"), stream=True)  # FIRST
first()
gc.collect()
try:
    c.get(BIG)
    print("second: ok")
except httpx.PoolTimeout:
    print("second: PoolTimeout")
'''


@pytest.mark.parametrize("active", [False, True])
def test_pool_exhaustion_names_the_first_request(active: bool) -> None:
    env = {"LEAKGUARD": "1"} if active else {}
    r = run_python(BIG_SERVER + POOL_DEMO, env=env)
    assert "second: PoolTimeout" in r.stdout, r.stderr
    if not active:
        assert "leakguard" not in r.stderr
        return
    line = (BIG_SERVER + POOL_DEMO).splitlines().index(
        '    r = c.send(c.build_request("GET", BIG + "big"), stream=True)  # FIRST') + 1
    head = r.stderr.index("leakguard: httpx.Response garbage-collected without close()")
    # reported at the collection, before the second request timed out
    assert f'app.py", line {line}, in first' in r.stderr[head:]


def test_async_httpx_response_leak(reports: Reports, big_url: str) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as c:
            async def fetch() -> None:
                await c.send(c.build_request("GET", big_url + "big"), stream=True)  # ASYNC

            await fetch()
            gc.collect()

    asyncio.run(main())
    [text] = _responses(reports)
    assert text.startswith("leakguard: httpx.Response garbage-collected without close()")
    assert f'line {_line("# ASYNC")}, in fetch' in text



def test_async_requests_stay_coroutines(reports: Reports, big_url: str) -> None:
    import warnings

    async def main() -> None:
        async with httpx.AsyncClient() as c:
            task = asyncio.create_task(c.send(c.build_request("GET", big_url)))
            assert (await task).status_code == 200
            [r] = await asyncio.gather(c.send(c.build_request("GET", big_url)))
            assert r.status_code == 200
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                c.send(c.build_request("GET", big_url))  # never awaited
                gc.collect()
        async with aiohttp.ClientSession() as s:
            with warnings.catch_warnings(record=True) as seen2:
                warnings.simplefilter("always")
                s.get(big_url)  # never awaited
                gc.collect()
        # warned once, under the library's own name, as without leakguard
        assert [str(w.message) for w in seen] == [
            "coroutine 'AsyncClient.send' was never awaited"]
        assert [str(w.message) for w in seen2] == [
            "coroutine 'ClientSession._request' was never awaited"]

    asyncio.run(main())


def test_leakguard_report_counts_each_kind(tmp_path: Path) -> None:
    import subprocess
    import sys

    report = tmp_path / "leaks-%p.jsonl"
    code = BIG_SERVER + LEAKS["requests"][1] + "work()\n"
    run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    files = [str(p) for p in tmp_path.glob("leaks-*.jsonl")]
    out = subprocess.run([sys.executable, "-m", "leakguard", "report", *files],
                         capture_output=True, text=True).stdout
    assert out.splitlines()[0] == ("leakguard: 1 leaked session (1 still open at exit); "
                                   "1 leaked response (1 garbage-collected without close()) "
                                   "in 1 process")


def test_secrets_in_source_lines_are_masked() -> None:
    """A key written literally where a session is made never reaches a report or record."""
    import os
    import tempfile

    folder = tempfile.mkdtemp(prefix="leakguard-test-")
    report = os.path.join(folder, "r.jsonl")
    r = run_python(SERVER_SNIPPET + '''
import requests
class Client:
    def __init__(self, api_key, token=None):
        self.s = requests.Session()
KEEP = Client(api_key="sk-test-SECRET123", token='tok-SECRET456')
''', env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": report})
    assert "still open at interpreter exit" in r.stderr
    assert 'api_key="***", token=\'***\')' in r.stderr, r.stderr
    text = open(report).read()
    assert "SECRET" not in r.stderr + text
    assert any("***" in f["code"] for rec in map(json.loads, text.splitlines())
               for f in rec["stack"])


# -- a streamed response that outlives its client ------------------------------------------

OUTLIVES = '''
import asyncio, gc, {module}
CLIENTS = []
def sync():
    c = {module}.Client()
    CLIENTS.append(c)
    r = c.send(c.build_request("GET", BIG + "big"), stream=True)
    c.close()  # closes every connection of its pool, the response's too
    return r
async def _async():
    c = {module}.AsyncClient()
    CLIENTS.append(c)
    r = await c.send(c.build_request("GET", BIG + "big"), stream=True)
    await c.aclose()
    return r
def make():
    return sync() if FLAVOUR == "sync" else asyncio.run(_async())
'''


@pytest.mark.parametrize("module", ["httpx", "httpx2"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("when", ["gc", "exit"])
def test_streamed_response_of_a_closed_client_holds_no_connection(
        module: str, flavour: str, when: str) -> None:
    pytest.importorskip(module)
    ending = "keep = make()\n" if when == "exit" else \
        "keep = make()\ndel keep\ngc.collect()\nprint('collected', flush=True)\n"
    code = BIG_SERVER + f"FLAVOUR = {flavour!r}\n" + OUTLIVES.format(module=module) + ending
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert "leakguard" not in r.stderr, r.stderr  # its connection is closed: nothing held
    # the same response with its client still open is a leak (the library's state decides)
    r = run_python(code.replace("c.close()", "pass").replace("await c.aclose()", "pass"),
                   env={"LEAKGUARD": "1"})
    what = "still open at interpreter exit" if when == "exit" else \
        "garbage-collected without close()"
    assert f"leakguard: {module}.Response {what} (holding a connection" in r.stderr, r.stderr


# -- a requests response in a reference cycle: judged once the collection's finalizers ran ----

CYCLE = """
import gc, requests
gc.disable()  # collected where the program says, below
s = requests.Session()
class Holder:
    def __init__(self, r):
        self.r = r
        r.holder = self  # a reference cycle: only the cyclic collector frees it
class Closer(Holder):
    def __del__(self):
        self.r.close()  # a finalizer in the cycle gives the connection back
def work(cls):
    r = s.get(BIG + "big", stream=True)  # LEAK
    cls(r)
"""


@pytest.mark.parametrize("holder", ["Holder", "Closer"])
def test_streamed_response_in_a_reference_cycle(holder: str, lib: str = "requests") -> None:
    """Also run over niquests by test_niquests.py (lib="niquests")."""
    code = BIG_SERVER + CYCLE.replace("requests", lib) + f"""
work({holder})
print("dropped", flush=True)
gc.collect()
print("collected", flush=True)
s.close()
"""
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "dropped\ncollected\n"
    if holder == "Closer":
        assert "leakguard" not in r.stderr, r.stderr
        return
    head = f"leakguard: {lib}.Response garbage-collected without close() (holding a connection"
    assert r.stderr.count(head) == 1, r.stderr
    line = code.splitlines().index('    r = s.get(BIG + "big", stream=True)  # LEAK') + 1
    assert f'app.py", line {line}, in work\n' in r.stderr, r.stderr


URLLIB3_CYCLE = """
import gc, urllib3
gc.disable()  # collected where the program says, below
pm = urllib3.PoolManager()
class Holder:
    def __init__(self, r):
        self.r = r
        r.holder = self  # a reference cycle: only the cyclic collector frees it
class Closer(Holder):
    def __del__(self):
        self.r.release_conn()  # a finalizer in the cycle gives the connection back
def work(cls):
    r = pm.request("GET", BIG + "big", preload_content=False)  # LEAK
    cls(r)
"""


@pytest.mark.parametrize("holder", ["Holder", "Closer"])
def test_urllib3_response_in_a_reference_cycle(holder: str) -> None:
    # judged at the end of the collection: io's finalizer closes the response on its way
    # out (the state is read just before), the program's own finalizer may release it
    if holder == "Holder" and importlib.util.find_spec("urllib3_future") is not None:
        pytest.skip("urllib3-future's pools do not say which connections are idle: not told")
    code = BIG_SERVER + URLLIB3_CYCLE + f"""
work({holder})
print("dropped", flush=True)
gc.collect()
print("collected", flush=True)
pm.clear()
"""
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "dropped\ncollected\n"
    if holder == "Closer":
        assert "leakguard" not in r.stderr, r.stderr
        return
    head = ("leakguard: urllib3.HTTPResponse garbage-collected without close() (holding a "
            "connection")
    assert r.stderr.count(head) == 1, r.stderr
    line = code.splitlines().index(
        '    r = pm.request("GET", BIG + "big", preload_content=False)  # LEAK') + 1
    assert f'app.py", line {line}, in work\n' in r.stderr, r.stderr


# -- a response revived by a finalizer in the collection that found it dead ----------------

REVIVED = """
import asyncio, gc, httpx, sys
class Box:
    def __init__(self, it):
        self.it, self.me = it, self
async def main():
    c = httpx.AsyncClient(limits=httpx.Limits(max_connections=1),
                          timeout=httpx.Timeout(5, pool=0.5))
    async def events():  # as an SDK's stream: closes its response in `finally` (or not)
        r = await c.send(c.build_request("GET", BIG + "big"), stream=True)  # LEAK
        try:
            yield r.status_code
        finally:
            if CLOSES:
                await r.aclose()
    it = events()
    await it.__anext__()  # stopped early
    Box(it)  # dropped in a reference cycle
    del it
    gc.collect()  # the loop's hook revives the generator to run its aclose() soon
    for _ in range(20):
        await asyncio.sleep(0)
    gc.collect()  # the response (a cycle with its stream) really dies now
    try:  # the truth: a pool of one connection, which the next request gets back or not
        await c.get(BIG)
        print("next request: ok", file=sys.stderr, flush=True)
    except httpx.PoolTimeout:
        print("next request: PoolTimeout", file=sys.stderr, flush=True)
    await c.aclose()
asyncio.run(main())
"""


@pytest.mark.parametrize("closes", [True, False])
def test_async_generator_closing_its_response_when_collected(closes: bool) -> None:
    code = BIG_SERVER + f"CLOSES = {closes}\n" + REVIVED
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    if closes:  # its finalizer gave the connection back: nothing held, nothing reported
        assert r.stderr == "next request: ok\n", r.stderr
        return
    # judged as the response really died (once the generator's aclose() ran): a leak,
    # reported before the next request found the pool empty
    head = "leakguard: httpx.Response garbage-collected without close() (holding a connection"
    assert r.stderr.count(head) == 1, r.stderr
    assert r.stderr.index(head) < r.stderr.index("next request: PoolTimeout\n"), r.stderr
    line = code.splitlines().index(
        '        r = await c.send(c.build_request("GET", BIG + "big"), stream=True)  # LEAK') + 1
    assert f'app.py", line {line}, in events\n' in r.stderr, r.stderr
