"""The leak shapes of the core issue, in process, against a real local server."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import aiohttp
import requests
from conftest import Reports

import leakguard


def _line_of(marker: str) -> int:
    with open(__file__) as f:
        for n, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return n
    raise AssertionError(marker)


def test_dropped_in_function_is_reported_at_gc_with_its_line(reports: Reports,
                                                             server_url: str) -> None:
    def fetch() -> None:
        s = requests.Session()  # CREATE-DROPPED
        assert s.get(server_url).status_code == 200

    fetch()
    [text] = reports.warnings()
    port = server_url.split(":")[2].rstrip("/")
    assert text.startswith("requests.Session garbage-collected without close() "
                           f"(1 open connection to http://127.0.0.1:{port}; created ")
    assert "in thread MainThread; " in text
    assert "Session created at (most recent call last):" in text
    assert f'line {_line_of("CREATE-DROPPED")}, in fetch' in text
    assert "s = requests.Session()  # CREATE-DROPPED" in text
    # leakguard's and wrapt's frames are not shown; the innermost call is last
    import os

    import wrapt

    for package in (leakguard, wrapt):
        assert f'File "{os.path.dirname(package.__file__)}' not in text
    assert text.rstrip().endswith("s = requests.Session()  # CREATE-DROPPED")


def test_loop_of_sessions_gives_one_report_each(reports: Reports, server_url: str) -> None:
    for _ in range(5):
        requests.Session().get(server_url)
    gc.collect()
    assert len(reports.warnings()) == 5
    assert all("garbage-collected without close()" in t for t in reports.warnings())


def test_reference_cycle_is_reported_when_the_cycle_is_collected(reports: Reports,
                                                                 server_url: str) -> None:
    gc.disable()
    try:
        class Holder:
            pass

        h = Holder()
        h.session = requests.Session()  # type: ignore[attr-defined]
        h.session.get(server_url)  # type: ignore[attr-defined]
        h.me = h  # type: ignore[attr-defined]
        del h
        assert reports.warnings() == []  # still alive in its cycle
        gc.collect()
    finally:
        gc.enable()
    [text] = reports.warnings()
    assert "garbage-collected without close()" in text


def test_worker_thread_is_named(reports: Reports, server_url: str) -> None:
    def work() -> None:
        requests.Session().get(server_url)

    t = threading.Thread(target=work, name="fetcher-7")
    t.start()
    t.join()
    gc.collect()
    [text] = reports.warnings()
    assert "in thread fetcher-7; " in text


def test_asyncio_task_is_named(reports: Reports, server_url: str) -> None:
    async def make() -> None:
        s = aiohttp.ClientSession()
        async with s.get(server_url) as r:
            await r.read()

    async def main() -> None:
        await asyncio.create_task(make(), name="crawler-3")

    asyncio.run(main())
    gc.collect()
    [text] = reports.warnings()
    assert text.startswith("aiohttp.ClientSession garbage-collected without close()")
    assert ", task crawler-3; " in text
    assert "ClientSession created at (most recent call last):" in text


def test_subclass_is_one_record_under_its_own_name(reports: Reports, server_url: str) -> None:
    class MySession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.headers["X-App"] = "1"

        def close(self) -> None:
            super().close()

    def leak() -> None:
        MySession().get(server_url)

    leak()
    with MySession() as ok:
        ok.get(server_url)
    gc.collect()
    [text] = reports.warnings()
    assert "test_leak_shapes.test_subclass_is_one_record_under_its_own_name.<locals>.MySession " \
           "garbage-collected" in text
    assert "MySession created at" in text


def test_aiohttp_never_closed_with_loop_closed_afterwards(reports: Reports,
                                                           server_url: str) -> None:
    async def main() -> aiohttp.ClientSession:
        s = aiohttp.ClientSession()
        async with s.get(server_url) as r:
            await r.read()
        return s

    session = asyncio.run(main())
    assert reports.warnings() == []
    del session
    gc.collect()
    [text] = reports.warnings()
    assert "(1 open connection to http://127.0.0.1:" in text


def test_open_sessions_lists_live_unclosed_sessions(reports: Reports, server_url: str) -> None:
    s = requests.Session()
    s.get(server_url)
    [rec] = leakguard.open_sessions()
    d = rec.as_dict()
    assert d["type"] == "requests.Session" and d["event"] == "open"
    assert d["connections"] == 1 and d["origins"] == [server_url.rstrip("/")]
    assert d["stack"][-1]["code"] == "s = requests.Session()"
    s.close()
    assert leakguard.open_sessions() == []


def test_session_is_never_kept_alive(reports: Reports, server_url: str) -> None:
    s = requests.Session()
    s.get(server_url)
    s.close()
    ref = weakref.ref(s)
    del s
    assert ref() is None
    leaked = requests.Session()
    ref = weakref.ref(leaked)
    del leaked
    assert ref() is None  # collected by reference counting, leak reported, nothing held
    assert len(reports.warnings()) == 1
