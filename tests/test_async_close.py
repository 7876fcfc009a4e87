"""Issue 10 item 5: an async close that is never awaited never ran; one that is awaited did."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any, Callable

import aiohttp
import httpx
import pytest
from conftest import SERVER_SNIPPET, Reports, run_python


def _unawaited(make_coroutine: Callable[[], Any]) -> None:
    # the coroutine is dropped without being awaited, as in `session.close()` missing `await`
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited"
        make_coroutine()
        gc.collect()


async def _aiohttp(url: str, how: str, **kwargs: Any) -> None:
    s = aiohttp.ClientSession(**kwargs)
    async with s.get(url) as r:
        await r.read()
    if how == "not awaited":
        _unawaited(s.close)
    elif how == "awaited":
        await s.close()


async def _httpx(url: str, how: str) -> None:
    if how == "async with":
        async with httpx.AsyncClient() as client:
            await client.get(url)
        return
    c = httpx.AsyncClient()
    await c.get(url)
    if how == "aclose not awaited":
        _unawaited(c.aclose)
    elif how == "__aexit__ not awaited":
        _unawaited(lambda: c.__aexit__(None, None, None))
    elif how == "aclose awaited":
        await c.aclose()


@pytest.mark.parametrize("how", ["not awaited", "awaited"])
def test_aiohttp_close(reports: Reports, server_url: str, how: str) -> None:
    asyncio.run(_aiohttp(server_url, how))
    gc.collect()
    texts = reports.warnings()
    if how == "awaited":
        assert texts == []
    else:
        [text] = texts
        assert text.startswith("aiohttp.ClientSession garbage-collected without close() "
                               "(1 open connection to http://127.0.0.1:")


def test_aiohttp_close_awaited_with_a_shared_connector(reports: Reports,
                                                      server_url: str) -> None:
    async def main() -> None:
        connector = aiohttp.TCPConnector()
        await _aiohttp(server_url, "awaited", connector=connector, connector_owner=False)
        gc.collect()
        await connector.close()

    asyncio.run(main())
    gc.collect()
    assert reports.warnings() == []


@pytest.mark.parametrize("how", ["aclose not awaited", "__aexit__ not awaited",
                                 "aclose awaited", "async with"])
def test_httpx_async_close(reports: Reports, server_url: str, how: str) -> None:
    asyncio.run(_httpx(server_url, how))
    gc.collect()
    texts = reports.warnings()
    if "not awaited" in how:
        [text] = texts
        assert text.startswith("httpx.AsyncClient garbage-collected without close() "
                               "(1 open connection to http://127.0.0.1:")
    else:
        assert texts == []


def test_not_awaited_close_of_sessions_alive_at_exit() -> None:
    code = SERVER_SNIPPET + '''
import asyncio, aiohttp, httpx
KEEP = []
async def main():
    s = aiohttp.ClientSession()
    async with s.get(URL) as r:
        await r.read()
    s.close()  # no await
    c = httpx.AsyncClient()
    await c.get(URL)
    c.aclose()  # no await
    ok = httpx.AsyncClient()
    await ok.get(URL)
    await ok.aclose()
    KEEP.extend((s, c, ok))
asyncio.run(main())
'''
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_EXITCODE": "3"})
    assert r.returncode == 3, r.stderr
    assert "leakguard: aiohttp.ClientSession still open at interpreter exit" in r.stderr
    assert "leakguard: httpx.AsyncClient still open at interpreter exit" in r.stderr
    assert "leakguard: 2 leaked sessions (2 still open at exit)" in r.stderr


@pytest.mark.parametrize("how", ["not awaited", "awaited"])
def test_niquests_async_close(reports: Reports, server_url: str, how: str) -> None:
    niquests = pytest.importorskip("niquests")

    async def main() -> None:
        s = niquests.AsyncSession()
        r = await s.get(server_url)
        await r.read() if asyncio.iscoroutinefunction(getattr(r, "read", None)) else None
        if how == "awaited":
            await s.close()
        else:
            _unawaited(s.close)

    asyncio.run(main())
    gc.collect()
    texts = reports.warnings()
    if how == "awaited":
        assert texts == []
    else:
        assert len(texts) == 1 and texts[0].startswith(
            "niquests.AsyncSession garbage-collected without close()"), texts
