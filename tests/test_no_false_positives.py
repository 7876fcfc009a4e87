"""Correct code that must produce no report."""

from __future__ import annotations

import asyncio
import gc

import aiohttp
import requests
from conftest import Reports

import leakguard


def test_with_and_explicit_close(reports: Reports, server_url: str) -> None:
    with requests.Session() as s:
        s.get(server_url)
    s2 = requests.Session()
    s2.get(server_url)
    s2.close()
    del s, s2
    gc.collect()
    assert reports.warnings() == []
    assert leakguard.open_sessions() == []


def test_requests_top_level_functions(reports: Reports, server_url: str) -> None:
    assert requests.get(server_url).status_code == 200
    assert requests.request("GET", server_url).status_code == 200
    gc.collect()
    assert reports.warnings() == []


def test_aiohttp_async_with_and_await_close(reports: Reports, server_url: str) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as s:
            async with s.get(server_url) as r:
                await r.read()
        s2 = aiohttp.ClientSession()
        async with s2.get(server_url) as r:
            await r.read()
        await s2.close()

    asyncio.run(main())
    gc.collect()
    assert reports.warnings() == []


def test_aiohttp_shared_connector_closed_by_its_owner(reports: Reports, server_url: str) -> None:
    async def main() -> None:
        connector = aiohttp.TCPConnector()
        s = aiohttp.ClientSession(connector=connector, connector_owner=False)
        async with s.get(server_url) as r:
            await r.read()
        await connector.close()
        del s

    asyncio.run(main())
    gc.collect()
    assert reports.warnings() == []


def test_aiohttp_closed_through_its_own_state(reports: Reports, server_url: str) -> None:
    async def main() -> None:
        s = aiohttp.ClientSession()
        async with s.get(server_url) as r:
            await r.read()
        connector = s.connector
        assert connector is not None
        await connector.close()  # closed directly, not through the session
        assert s.closed
        del s
        s2 = aiohttp.ClientSession()
        conn2 = s2.connector
        s2.detach()  # the session is closed, the connector is the caller's
        del s2
        assert conn2 is not None
        await conn2.close()

    asyncio.run(main())
    gc.collect()
    assert reports.warnings() == []


def test_session_created_before_leakguard_was_switched_on(server_url: str) -> None:
    import logging

    from conftest import Reports as R

    early = requests.Session()
    early.get(server_url)
    handler = R()
    logging.getLogger("leakguard").addHandler(handler)
    leakguard.enable()
    try:
        del early
        gc.collect()
        assert leakguard.open_sessions() == []
    finally:
        leakguard.disable()
        logging.getLogger("leakguard").removeHandler(handler)
    assert handler.warnings() == []


def test_owner_whose_del_closes_its_session_in_a_cycle(reports: Reports,
                                                       server_url: str) -> None:
    class Client:
        def __init__(self) -> None:
            self.session = requests.Session()
            self.me = self  # a reference cycle: only the cyclic collector frees it

        def __del__(self) -> None:
            self.session.close()

    gc.disable()
    try:
        c = Client()
        c.session.get(server_url)
        del c
        gc.collect()  # weakref callbacks run before __del__ here: the verdict must wait
    finally:
        gc.enable()
    assert reports.warnings() == []


def test_owner_whose_del_detaches_an_aiohttp_session_in_a_cycle(reports: Reports) -> None:
    class Client:
        def __init__(self) -> None:
            self.session = aiohttp.ClientSession()
            self.me = self

        def __del__(self) -> None:
            self.session.detach()

    async def main() -> None:
        c = Client()
        del c
        gc.collect()

    gc.disable()
    try:
        asyncio.run(main())
    finally:
        gc.enable()
    assert reports.warnings() == []
