"""httpx and urllib3 specifics, in process, against a real local server."""

from __future__ import annotations

import asyncio
import gc

import httpx
import requests
import urllib3
from conftest import Reports
from requests.adapters import HTTPAdapter


def test_requests_internal_pool_managers_are_never_reported_alone(reports: Reports,
                                                                  server_url: str) -> None:
    def leak() -> None:
        s = requests.Session()
        s.mount("http://special/", HTTPAdapter())
        s.get(server_url)

    leak()
    gc.collect()
    texts = reports.warnings()
    assert len(texts) == 1
    assert texts[0].startswith("requests.Session garbage-collected")
    with requests.Session() as s:
        s.get(server_url)
    gc.collect()
    assert len(reports.warnings()) == 1


def test_with_httpx_client_and_async_client_are_clean(reports: Reports, server_url: str) -> None:
    with httpx.Client() as c:
        c.get(server_url)

    async def main() -> None:
        async with httpx.AsyncClient() as ac:
            await ac.get(server_url)
        ac2 = httpx.AsyncClient()
        await ac2.get(server_url)
        await ac2.aclose()

    asyncio.run(main())
    del c
    gc.collect()
    assert reports.warnings() == []


def test_client_closed_by_its_owners_exit(reports: Reports, server_url: str) -> None:
    class Api:
        def __enter__(self) -> Api:
            self.http = httpx.Client()
            self.pool = urllib3.PoolManager()
            return self

        def __exit__(self, *exc: object) -> None:
            self.http.__exit__(None, None, None)
            self.pool.__exit__(None, None, None)

    with Api() as api:
        api.http.get(server_url)
        api.pool.request("GET", server_url)
    del api
    gc.collect()
    assert reports.warnings() == []


def test_httpx_leak_reports_pool_origin(reports: Reports, server_url: str) -> None:
    def leak() -> None:
        httpx.Client().get(server_url)

    leak()
    [text] = reports.warnings()
    assert text.startswith("httpx.Client garbage-collected without close() "
                           f"(1 open connection to {server_url.rstrip('/')}; created ")


def test_httpx_custom_transport_says_unknown(reports: Reports) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))

    def leak() -> None:
        httpx.Client(transport=transport).get("http://example.invalid/")

    leak()
    [text] = reports.warnings()
    assert "(open connections unknown; created" in text


def test_urllib3_leak_and_proxy_credentials_never_shown(reports: Reports,
                                                        server_url: str) -> None:
    def leak() -> None:
        secret_url = server_url + "?token=s3cr3t"
        proxy = "http://alice:" + "hunter2" + "@127.0.0.1:9/"
        pm = urllib3.PoolManager()
        pm.request("GET", secret_url)
        urllib3.ProxyManager(proxy)

    leak()
    texts = sorted(reports.warnings())
    assert len(texts) == 2
    assert texts[0].startswith("urllib3.PoolManager garbage-collected without close() "
                               f"(1 open connection to {server_url.rstrip('/')}; ")
    assert texts[1].startswith("urllib3.ProxyManager garbage-collected")
    joined = "\n".join(texts)
    assert "hunter2" not in joined and "alice" not in joined and "s3cr3t" not in joined
    assert "token" not in joined
