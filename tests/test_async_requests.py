"""What a patched async request method returns behaves as the library's own coroutine:
awaited, driven by a Task, closed or thrown into before it runs, cancelled while it runs."""

from __future__ import annotations

import asyncio
import gc
import inspect
import re
import warnings
from typing import Any, Callable

import aiohttp
import httpx
import pytest
from conftest import Reports

import leakguard


def _aiohttp(url: str) -> Callable[[], Any]:
    async def scenario() -> list[object]:
        seen: list[object] = []
        async with aiohttp.ClientSession() as s:
            cm = s.get(url + "big")
            seen.append(type(cm).__name__)
            cm.close()  # closed before it ran
            cm = s.get(url + "big")
            try:
                cm.throw(KeyError("thrown"))  # thrown into before it ran
            except KeyError as exc:
                seen.append(("throw", repr(exc)))
            task = asyncio.create_task(_read(s.get(url + "big")))
            await asyncio.sleep(0)  # the request is under way
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                seen.append("cancelled")
            async with s.get(url + "big") as r:  # awaited
                seen.append(len(await r.read()))
            r2 = await s.get(url + "big")  # awaited without `async with`
            seen.append(len(await r2.read()))
            [r3] = await asyncio.gather(s.get(url + "big"))  # driven by a Task
            seen.append(len(await r3.read()))
        return seen

    return scenario


async def _read(cm: Any) -> int:
    async with cm as r:
        return len(await r.read())


def _httpx(url: str) -> Callable[[], Any]:
    async def scenario() -> list[object]:
        seen: list[object] = []
        async with httpx.AsyncClient() as c:
            req = c.build_request("GET", url + "big")
            sent = c.send(req)
            seen.append((inspect.isawaitable(sent), asyncio.iscoroutine(sent), repr(sent)[:30],
                         sent.__qualname__, inspect.getcoroutinestate(sent)))
            sent.close()  # closed before it ran
            sent = c.send(req)
            try:
                sent.throw(KeyError("thrown"))
            except KeyError as exc:
                seen.append(("throw", repr(exc)))
            done = c.send(req)
            seen.append((await done).status_code)
            try:
                await done
            except RuntimeError as exc:  # awaited twice: as the library's coroutine says
                seen.append(str(exc))
            task = asyncio.create_task(c.send(req))
            await asyncio.sleep(0)
            # what a debugger or a log of pending tasks shows (addresses aside)
            seen.append(re.sub(r"0x[0-9a-f]+|:\d+|Task-\d+", "", repr(task)))
            seen.append([f.f_code.co_name for f in task.get_stack()])
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                seen.append("cancelled")
            seen.append(len((await asyncio.gather(c.send(req)))[0].content))
        return seen

    return scenario


@pytest.mark.parametrize("make", [_aiohttp, _httpx], ids=["aiohttp", "httpx"])
def test_async_requests_behave_as_the_librarys_coroutines(
        make: Callable[[str], Callable[[], Any]], big_url: str) -> None:
    def run() -> tuple[list[object], list[str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen = asyncio.run(make(big_url)())
            gc.collect()
        return seen, [f"{w.category.__name__}: {w.message}" for w in caught
                      if not issubclass(w.category, ResourceWarning)]

    plain = run()
    handler = Reports()
    import logging

    logging.getLogger("leakguard").addHandler(handler)
    leakguard.enable()
    try:
        watched = run()
    finally:
        leakguard.disable()
        logging.getLogger("leakguard").removeHandler(handler)
    assert watched == plain
    assert "cancelled" in plain[0] and ("throw", "KeyError('thrown')") in plain[0]
    assert not [r.getMessage() for r in handler.records], "nothing leaked, nothing to say"
