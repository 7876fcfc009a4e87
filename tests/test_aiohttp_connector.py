"""An aiohttp session's record holds its connector weakly: leakguard changes no lifetime, and
the verdict still counts the connections the connector held as the session died."""

from __future__ import annotations

import asyncio
import gc
import weakref

import aiohttp
import pytest
from conftest import Reports, run_python
from test_responses import BIG_SERVER

from leakguard.integrations import _aiohttp_pool

DROPPED = BIG_SERVER + '''
import asyncio, gc, sys, weakref
import aiohttp

async def main():
    s = aiohttp.ClientSession()
    r = await s.get(BIG + "big")  # 1 MiB: still arriving, never read nor released
    return weakref.ref(s), weakref.ref(r)

session, response = asyncio.run(main())  # the loop is closed
gc.collect()
print("session dead:", session() is None, "response dead:", response() is None,
      file=sys.stderr, flush=True)
print("after the collection", file=sys.stderr, flush=True)
'''


def test_a_session_dropped_with_an_unread_response_dies_as_without_leakguard() -> None:
    off = run_python(DROPPED, env={"LEAKGUARD": "0"})
    on = run_python(DROPPED, env={"LEAKGUARD": "1"})
    for r in (off, on):
        assert r.returncode == 0, r.stderr
        # aiohttp's own warning, from the session's finalizer in that collection
        assert "Unclosed client session" in r.stderr, r.stderr
        assert r.stderr.index("Unclosed client session") < \
            r.stderr.index("after the collection"), r.stderr
    assert "session dead: True response dead: True" in off.stderr, off.stderr
    assert "session dead: True response dead: True" in on.stderr, on.stderr
    assert "still open at interpreter exit" not in on.stderr, on.stderr
    assert "leakguard: aiohttp.ClientSession garbage-collected without close() " \
        "(0 open connections;" in on.stderr, on.stderr
    assert "leakguard: aiohttp.ClientResponse garbage-collected without close() " \
        "(holding a connection to http://127.0.0.1:" in on.stderr, on.stderr
    assert ("leakguard: 1 leaked session (1 garbage-collected without close()); "
            "1 leaked response (1 garbage-collected without close())") in on.stderr


class _Cycle:
    """Something that refers to itself: only a collection frees it and what it holds."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.me = self


@pytest.mark.parametrize("made_first", ["connector", "session"])
def test_a_session_collected_with_its_connector_counts_its_connections(
        reports: Reports, server_url: str, made_first: str) -> None:
    # the connector is garbage with its session: its finalizer closes it (in either order
    # of the two finalizers); the verdict counts what it held as it began
    async def main() -> weakref.ref[aiohttp.ClientSession]:
        if made_first == "connector":
            s = aiohttp.ClientSession(connector=aiohttp.TCPConnector())
        else:
            s = aiohttp.ClientSession()
        async with s.get(server_url) as r:
            await r.read()
        _Cycle(s)
        return weakref.ref(s)

    gc.collect()
    gc.disable()  # one collection, ours, after the loop is closed
    try:
        session = asyncio.run(main())
        gc.collect()
    finally:
        gc.enable()
    assert session() is None
    [text] = reports.warnings()
    assert text.startswith("aiohttp.ClientSession garbage-collected without close() "
                           "(1 open connection to http://127.0.0.1:"), text


def test_a_dropped_session_keeps_no_connector_alive(reports: Reports, server_url: str) -> None:
    async def main() -> list[weakref.ref[aiohttp.BaseConnector]]:
        connectors = []
        for close in (True, False):
            s = aiohttp.ClientSession()
            async with s.get(server_url) as r:
                await r.read()
            assert s.connector is not None
            connectors.append(weakref.ref(s.connector))
            if close:
                await s.close()
        return connectors

    connectors = asyncio.run(main())
    gc.collect()
    assert [c() for c in connectors] == [None, None]
    [text] = reports.warnings()  # the one not closed, with the connection it kept
    assert text.startswith("aiohttp.ClientSession garbage-collected without close() "
                           "(1 open connection to http://127.0.0.1:"), text
    # nothing kept of a connector once it is gone
    assert not any(pool.ref() is None for pool in _aiohttp_pool._POOLS.values())
