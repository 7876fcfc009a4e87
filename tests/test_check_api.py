"""leakguard.check(): context manager and decorator, sync and async."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import requests
from conftest import Reports

import leakguard


def test_check_raises_for_gc_leak_and_still_open(reports: Reports, server_url: str) -> None:
    keep = []
    with pytest.raises(leakguard.LeakError) as info:
        with leakguard.check():
            requests.Session().get(server_url)
            s = requests.Session()
            keep.append(s)
    err = info.value
    assert [leak.event for leak in err.leaks] == ["gc", "open"]
    assert str(err).startswith("2 leaked sessions\nleakguard: requests.Session garbage-collected")
    assert "\nleakguard: requests.Session still open at the end of check() (0 open connections;" \
        in str(err)
    assert reports.warnings() == []  # claimed by the block, not logged as well
    keep[0].close()
    assert leakguard.open_sessions() == []


def test_check_passes_for_closed_sessions_and_ignores_older_ones(reports: Reports,
                                                                 server_url: str) -> None:
    older = requests.Session()
    with leakguard.check():
        with requests.Session() as s:
            s.get(server_url)
    older.close()


def test_check_as_decorator(reports: Reports, server_url: str) -> None:
    @leakguard.check()
    def leaky() -> int:
        return int(requests.Session().get(server_url).status_code)

    @leakguard.check()
    def clean() -> int:
        return int(requests.get(server_url).status_code)

    assert clean() == 200
    with pytest.raises(leakguard.LeakError):
        leaky()


def test_check_async(reports: Reports, server_url: str) -> None:
    @leakguard.check()
    async def leaky() -> None:
        s = aiohttp.ClientSession()
        async with s.get(server_url) as r:
            await r.read()

    async def main() -> None:
        async with leakguard.check():
            async with aiohttp.ClientSession() as s:
                async with s.get(server_url) as r:
                    await r.read()
        with pytest.raises(leakguard.LeakError) as info:
            await leaky()
        [leak] = info.value.leaks
        assert leak.type == "aiohttp.ClientSession"
        assert leak.connections == 1

    asyncio.run(main())


def test_check_when_disabled_is_a_no_op(server_url: str) -> None:
    assert not leakguard.is_enabled()
    with leakguard.check():
        requests.Session()


def test_check_costs_nothing_in_the_sessions_open_elsewhere(reports: Reports) -> None:
    import gc
    import time

    count = [0]

    def counted(phase: str, info: dict[str, int]) -> None:
        count[0] += phase == "start"

    def blocks() -> float:
        start = time.perf_counter()
        for _ in range(200):
            with leakguard.check():
                with requests.Session():
                    pass
        return time.perf_counter() - start

    blocks()  # warm up
    alone = min(blocks() for _ in range(3))
    held = [requests.Session() for _ in range(5000)]
    was_enabled = gc.isenabled()
    gc.disable()
    gc.callbacks.append(counted)
    try:
        crowded = min(blocks() for _ in range(3))
    finally:
        gc.callbacks.remove(counted)
        if was_enabled:
            gc.enable()
    for s in held:
        s.close()
    assert count[0] == 0  # nothing was open at the end of a block: no collection
    # per block: the sessions made inside it, not the 5,000 open elsewhere (generous margin)
    assert crowded < alone * 3 + 0.05, (alone, crowded)
