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
    # Counts work instead of timing it (a timing ratio failed on a loaded machine): the lines
    # leakguard runs in Python, the bytes it allocates at the peak, and garbage collections.
    import gc
    import os
    import sys
    import tracemalloc
    from types import FrameType
    from typing import Any

    package = os.path.dirname(leakguard.__file__)
    lines = [0]
    collections = [0]

    def counted(phase: str, info: dict[str, int]) -> None:
        collections[0] += phase == "start"

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        lines[0] += event == "line"
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(package) else None

    def blocks() -> tuple[int, int]:
        """The lines leakguard ran and the peak of the bytes allocated in 50 check() blocks."""
        lines[0] = 0
        tracing = tracemalloc.is_tracing()
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        sys.settrace(calls)
        try:
            for _ in range(50):
                with leakguard.check():
                    with requests.Session():
                        pass
        finally:
            sys.settrace(None)
            peak = tracemalloc.get_traced_memory()[1] - base
            if not tracing:
                tracemalloc.stop()
        return lines[0], peak

    was_enabled = gc.isenabled()
    gc.disable()  # the same in both measures; and a collection would be counted
    gc.callbacks.append(counted)
    held: list[requests.Session] = []
    try:
        blocks()  # warm up
        alone = blocks()
        held = [requests.Session() for _ in range(5000)]
        crowded = blocks()
    finally:
        gc.callbacks.remove(counted)
        if was_enabled:
            gc.enable()
        for s in held:
            s.close()
    assert collections[0] == 0  # nothing was open at the end of a block: no collection
    # per block: the sessions made inside it, not the 5,000 open elsewhere. A loop over them
    # runs >= 250,000 more lines; a copy of them allocates ~33 kB more at the peak (measured;
    # the right code: ~10 kB more, the same every run).
    assert crowded[0] <= alone[0] * 1.1 + 100, (alone, crowded)
    assert crowded[1] <= alone[1] + 20_000, (alone, crowded)
