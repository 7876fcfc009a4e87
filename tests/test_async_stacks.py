"""The stack of a response of an async request reaches the line that made the request, also
when a Task drives the request (asyncio.gather, create_task), not the caller's coroutine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_python
from test_responses import BIG_SERVER

AIOHTTP_GATHER = '''
import asyncio, aiohttp
KEEP = []
async def fetch_all(s):
    return await asyncio.gather(s.get(BIG + "big"), s.get(BIG + "big"))  # REQUEST
async def main():
    async with aiohttp.ClientSession() as s:
        KEEP.extend(await fetch_all(s))
asyncio.run(main())
'''

AIOHTTP_TASK = '''
import asyncio, aiohttp
KEEP = []
async def start(s):
    return asyncio.create_task(s.get(BIG + "big"))  # REQUEST
async def main():
    async with aiohttp.ClientSession() as s:
        task = await start(s)
        KEEP.append(await task)
asyncio.run(main())
'''

HTTPX_GATHER = '''
import asyncio, {lib}
KEEP = []
async def fetch_all(c):
    req = c.build_request("GET", BIG + "big")
    return await asyncio.gather(c.send(req, stream=True), c.send(req, stream=True))  # REQUEST
async def main():
    c = {lib}.AsyncClient()  # left open: a closed client's responses hold no connection
    KEEP.extend(await fetch_all(c))
asyncio.run(main())
'''

CASES = {
    "aiohttp-gather": ("aiohttp.ClientResponse", AIOHTTP_GATHER, 2, "still open at exit",
                       "fetch_all"),
    "aiohttp-create_task": ("aiohttp.ClientResponse", AIOHTTP_TASK, 1, "still open at exit",
                            "start"),
    "httpx-gather": ("httpx.Response", HTTPX_GATHER.format(lib="httpx"), 2,
                     "still open at exit", "fetch_all"),
    "httpx2-gather": ("httpx2.Response", HTTPX_GATHER.format(lib="httpx2"), 2,
                      "still open at exit", "fetch_all"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_response_of_a_request_driven_by_a_task_names_the_request_line(
        case: str, tmp_path: Path) -> None:
    type_name, code, count, event, function = CASES[case]
    if case.startswith("httpx2"):
        pytest.importorskip("httpx2")
    source = BIG_SERVER + code
    line = source.splitlines().index(
        next(x for x in source.splitlines() if "# REQUEST" in x)) + 1
    report = tmp_path / "leaks.jsonl"
    r = run_python(source, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    assert r.returncode == 0, r.stderr
    assert "internal error" not in r.stderr, r.stderr
    short = type_name.rsplit(".", 1)[-1]
    blocks = r.stderr.split(f"{short} created at (most recent call last):\n")[1:]
    assert len(blocks) == count, r.stderr
    for block in blocks:
        # the stack starts at the request line, not at the event loop's `asyncio.run(main())`
        stack = block.split("\nleakguard: ")[0]
        assert f'app.py", line {line}, in {function}\n' in stack, r.stderr
        assert "asyncio.run(main())" not in stack, r.stderr
    assert f"{count} leaked response{'s' if count > 1 else ''} ({count} {event})" in r.stderr
    assert f"  {count} x {type_name} created at app.py:{line} in {function}" in r.stderr
    recs = [json.loads(x) for x in report.read_text().splitlines()]
    recs = [rec for rec in recs if rec["kind"] == "response"]
    assert len(recs) == count
    for rec in recs:
        assert rec["stack"][-1]["line"] == line and rec["stack"][-1]["function"] == function
        assert rec["site"].endswith(f"app.py:{line} in {function}"), rec["site"]


AIOHTTP_AWAITED = '''
import asyncio, aiohttp
KEEP = []
async def fetch(s):
    return await s.get(BIG + "big")  # REQUEST
async def main():
    async with aiohttp.ClientSession() as s:
        KEEP.append(await fetch(s))  # MAIN
asyncio.run(main())  # MODULE
'''


def test_awaited_request_keeps_its_whole_stack() -> None:
    # awaited by its caller: the stack is the caller's whole chain, as before
    source = BIG_SERVER + AIOHTTP_AWAITED
    lines = source.splitlines()

    def at(marker: str) -> int:
        return lines.index(next(x for x in lines if marker in x)) + 1

    r = run_python(source, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert "internal error" not in r.stderr, r.stderr
    assert (f'app.py", line {at("# MODULE")}, in <module>\n'
            f'    asyncio.run(main())  # MODULE\n') in r.stderr, r.stderr
    main = (f'app.py", line {at("# MAIN")}, in main\n'
            f'    KEEP.append(await fetch(s))  # MAIN\n')
    fetch = (f'app.py", line {at("# REQUEST")}, in fetch\n'
             f'    return await s.get(BIG + "big")  # REQUEST\n')
    assert main in r.stderr and fetch in r.stderr, r.stderr
    assert r.stderr.index(main) < r.stderr.index(fetch)
    assert f"1 x aiohttp.ClientResponse created at app.py:{at('# REQUEST')} in fetch" \
        in r.stderr
