"""The request path: how many requests a session made and where the last one was; use after
close() / clear() reported once, after which the session counts as open again."""

from __future__ import annotations

import asyncio
import gc
import json
import re
from pathlib import Path

import aiohttp
import httpx
import requests
import urllib3
from conftest import SERVER_SNIPPET, Reports, line_of, run_python

import leakguard


def _line(marker: str) -> int:
    return line_of(__file__, marker)


def _head(text: str) -> str:
    return text.split("\n")[0]


def test_last_use_in_the_headline(reports: Reports, server_url: str) -> None:
    def fetch_all() -> None:
        s = requests.Session()
        for _ in range(3):
            s.get(server_url)  # LAST-USE

    fetch_all()
    [text] = reports.warnings()
    assert re.search(r"; 3 requests, the last \d+\.\d s ago at tests/test_request_path.py:"
                     f"{_line('LAST-USE')} in fetch_all\\)$", _head(text))


def test_one_request_and_no_requests(reports: Reports, server_url: str) -> None:
    s = requests.Session()
    s.get(server_url)  # ONE
    idle = requests.Session()
    del s, idle
    one, none = reports.warnings()
    assert re.search(r"; 1 request, \d+\.\d s ago at tests/test_request_path.py:"
                     f"{_line('# ONE')} in ", _head(one))
    assert _head(none).endswith("; no requests)")


def test_last_use_of_every_client(reports: Reports, server_url: str) -> None:
    pm = urllib3.PoolManager()
    pm.request("GET", server_url)  # U3
    c = httpx.Client()
    c.get(server_url)  # HX
    with c.stream("GET", server_url) as r:  # HX-STREAM
        r.read()

    async def main() -> aiohttp.ClientSession:
        s = aiohttp.ClientSession()
        async with s.get(server_url) as r:  # AIO
            await r.read()
        return s

    s = asyncio.run(main())
    found = {x.type: x for x in leakguard.open_sessions()}
    assert found["urllib3.PoolManager"].requests == 1
    assert found["urllib3.PoolManager"].last_use["line"] == _line("# U3")  # type: ignore[index]
    assert found["httpx.Client"].requests == 2
    assert found["httpx.Client"].last_use["line"] == _line("# HX-STREAM")  # type: ignore[index]
    assert found["aiohttp.ClientSession"].requests == 1
    assert found["aiohttp.ClientSession"].last_use["function"] == "main"  # type: ignore[index]
    assert found["aiohttp.ClientSession"].last_use["line"] == _line("# AIO")  # type: ignore[index]
    pm.clear()
    c.close()
    asyncio.run(s.close())


def test_last_use_in_json(tmp_path: Path) -> None:
    code = SERVER_SNIPPET + '''
import requests
def fetch_all(s):
    for _ in range(2):
        s.get(URL)
keep = requests.Session()
fetch_all(keep)
idle = requests.Session()
'''
    report = tmp_path / "r.jsonl"
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    used, idle = [json.loads(x) for x in report.read_text().splitlines()]
    line = code.splitlines().index("        s.get(URL)") + 1
    assert used["requests"] == 2 and used["kind"] == "session"
    assert used["last_use"]["file"].endswith("app.py") and used["last_use"]["line"] == line
    assert used["last_use"]["function"] == "fetch_all" and used["last_use"]["age_s"] >= 0
    assert idle["requests"] == 0 and idle["last_use"] is None
    assert "2 requests, the last " in r.stderr and f"app.py:{line} in fetch_all)" in r.stderr


# -- used after close ---------------------------------------------------------------------

REUSE = SERVER_SNIPPET + '''
import requests, urllib3
def run():
    s = requests.Session()
    s.get(URL)
    s.close()  # CLOSED
    return s
def again(s):
    s.get(URL)  # USED
    s.get(URL)
'''


def test_requests_used_after_close_then_closed_again(tmp_path: Path) -> None:
    report = tmp_path / "r.jsonl"
    r = run_python(REUSE + "s = run()\nagain(s)\ns.close()\n",
                   env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    closed = REUSE.splitlines().index("    s.close()  # CLOSED") + 1
    used = REUSE.splitlines().index("    s.get(URL)  # USED") + 1
    assert r.stderr.count("used after close()") == 1, r.stderr  # once, not per request
    found = re.search(r"leakguard: requests.Session used after close\(\) \(closed \d+\.\d s ago "
                      f"at app.py:{closed} in run; its new connections stay open until it is "
                      r"closed again\)\nUsed at \(most recent call last\):\n", r.stderr)
    assert found, r.stderr
    after = r.stderr[found.end():]
    assert f'app.py", line {used}, in again\n    s.get(URL)  # USED' in after
    assert "leaked" not in r.stderr  # closed again: a warning only
    [rec] = [json.loads(x) for x in report.read_text().splitlines()]
    assert rec["event"] == "reused" and rec["type"] == "requests.Session"
    assert rec["closed"]["line"] == closed and rec["stack"][-1]["line"] == used
    assert r.returncode == 0


def test_requests_used_after_close_then_dropped_is_a_leak() -> None:
    r = run_python(REUSE + "s = run()\nagain(s)\ndel s\n",
                   env={"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "5"})
    assert r.stderr.count("used after close()") == 1
    assert "requests.Session garbage-collected without close() (1 open connection" in r.stderr
    assert "3 requests, the last" in r.stderr  # counted across the reopening
    assert r.returncode == 5


def test_requests_closed_and_never_used_again_is_silent(reports: Reports,
                                                        server_url: str) -> None:
    s = requests.Session()
    s.get(server_url)
    s.close()
    del s
    gc.collect()
    assert reports.warnings() == []


def test_urllib3_used_after_clear(reports: Reports, server_url: str) -> None:
    pm = urllib3.PoolManager()
    pm.request("GET", server_url)
    pm.clear()  # CLEARED
    pm.request("GET", server_url)  # U3-AGAIN
    pm.request("GET", server_url)
    [text] = reports.warnings()
    assert re.search(r"urllib3.PoolManager used after clear\(\) \(closed \d+\.\d s ago at "
                     f"tests/test_request_path.py:{_line('# CLEARED')} in "
                     "test_urllib3_used_after_clear; its new connections stay open until it "
                     r"is closed again\)$", _head(text))
    assert f"line {_line('# U3-AGAIN')}, in test_urllib3_used_after_clear" in text
    del pm
    gc.collect()
    _, leak = reports.warnings()
    assert "urllib3.PoolManager garbage-collected without close()" in leak
    assert "; 3 requests, the last" in _head(leak)


def test_with_block_then_reuse(reports: Reports, server_url: str) -> None:
    with requests.Session() as s:
        s.get(server_url)
    s.get(server_url)  # AFTER-WITH
    s.close()
    [text] = reports.warnings()
    assert "requests.Session used after close() (closed " in text
    assert f"line {_line('# AFTER-WITH')}, in test_with_block_then_reuse" in text


def test_aiohttp_every_way_to_request(reports: Reports, server_url: str, big_url: str) -> None:
    # aiohttp is seen where every request method wraps its request's coroutine (a class of
    # aiohttp.client): get() and request(), awaited or in `async with`, a request that fails,
    # and aiohttp.request(), whose session is its own
    async def main() -> tuple[aiohttp.ClientSession, aiohttp.ClientResponse]:
        s = aiohttp.ClientSession()
        async with s.get(server_url) as r:
            await r.read()
        r = await s.request("GET", server_url)
        await r.read()
        async with aiohttp.request("GET", server_url) as r:
            await r.read()
        try:
            await s.get("http://127.0.0.1:9/")  # REFUSED
        except aiohttp.ClientError:
            pass
        held = await s.get(big_url + "big")  # HELD
        return s, held

    s, held = asyncio.run(main())
    found = {x.type: x for x in leakguard.open_sessions()}
    session = found["aiohttp.ClientSession"]
    assert session.requests == 4  # the failed one counts: it was made
    assert session.last_use["line"] == _line("# HELD")  # type: ignore[index]
    assert found["aiohttp.ClientResponse"].stack[-1]["line"] == _line("# HELD")
    held.close()
    asyncio.run(s.close())


def test_aiohttp_module_attributes_patched_and_put_back() -> None:
    r = run_python(
        "import aiohttp.client as c\n"
        "before = (c._RequestContextManager, c._SessionRequestContextManager)\n"
        "import leakguard\nleakguard.enable()\n"
        "assert hasattr(c._RequestContextManager, '__wrapped__')\n"
        "assert hasattr(c._SessionRequestContextManager, '__wrapped__')\n"
        "leakguard.enable()\n"
        "assert not hasattr(c._RequestContextManager.__wrapped__, '__wrapped__')  # once\n"
        "leakguard.disable()\n"
        "assert (c._RequestContextManager, c._SessionRequestContextManager) == before\n"
        "print('ok')\n")
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr


def test_urllib3_response_close_wrapped_once_a_response_is_tracked() -> None:
    # urllib3 responses are looked at in PoolManager.urlopen; HTTPResponse.close is wrapped
    # only from the first one tracked (requests' streamed responses, tracked as requests',
    # never need it), once, put back by disable(); urllib3.request() (2.x) is a PoolManager's
    r = run_python(SERVER_SNIPPET + (
        "import requests, urllib3\n"
        "from urllib3.response import HTTPResponse\n"
        "original = vars(HTTPResponse)['close']\n"
        "import leakguard\nleakguard.enable()\n"
        "with requests.Session() as s:\n"
        "    s.get(URL, stream=True).close()\n"
        "assert vars(HTTPResponse)['close'] is original\n"
        "pm = urllib3.PoolManager()\n"
        "pm.request('GET', URL, preload_content=False).release_conn()\n"
        "pm.request('GET', URL, preload_content=False).close()\n"
        "assert vars(HTTPResponse)['close'].__wrapped__ is original\n"
        "leakguard.disable()\n"
        "assert vars(HTTPResponse)['close'] is original\n"
        "leakguard.enable()\n"
        "def work():\n"
        "    if hasattr(urllib3, 'request'):\n"
        "        return urllib3.request('GET', URL, preload_content=False)  # MODULE\n"
        "    return pm.request('GET', URL, preload_content=False)  # MODULE\n"
        "held = work()\n"
        "assert vars(HTTPResponse)['close'].__wrapped__ is original\n"
        "pm.clear()\n"
        "print('ok')\n"), env={"LEAKGUARD_EXITCODE": "0"})
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    head = [line for line in r.stderr.splitlines() if "HTTPResponse" in line]
    assert head and head[0].startswith("leakguard: urllib3.HTTPResponse still open at "
                                       "interpreter exit (holding a connection to "), r.stderr
    assert r.stderr.count("# MODULE") == 1 and "leakguard: 1 leaked" in r.stderr, r.stderr
