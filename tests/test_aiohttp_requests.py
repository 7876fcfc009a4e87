"""aiohttp's request path: a response handed straight to `async with` is not tracked (aiohttp
releases it at the block's end), any other is; its stack reaches the line that awaited it."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import aiohttp
from conftest import Reports, line_of

import leakguard


def _line(marker: str) -> int:
    return line_of(__file__, marker)


def _responses() -> list[leakguard.Leak]:
    return [x for x in leakguard.open_sessions() if x.kind == "response"]


def test_async_with_is_not_tracked_the_others_are(reports: Reports, big_url: str) -> None:
    async def main() -> list[int]:
        seen = []
        async with aiohttp.ClientSession() as s:
            async with s.get(big_url + "big") as r:  # straight into `async with`
                seen.append(len(_responses()))
            cm = s.get(big_url + "big")  # CM
            async with cm as r:  # not straight: tracked (and released at the block's end)
                seen.append(len(_responses()))
            r = await s.get(big_url + "big")  # AWAITED
            seen.append(len(_responses()))
            [held] = _responses()
            assert held.stack[-1]["line"] == _line("# AWAITED")
            r.release()
            seen.append(len(_responses()))
        return seen

    assert asyncio.run(main()) == [0, 1, 1, 0]
    assert reports.warnings() == []


def test_lines_taken_in_turn_keep_their_own_verdict(reports: Reports, big_url: str) -> None:
    # what is known of the calling line is cached (the last line's): two lines of one
    # function, in turn, each keep theirs
    async def main() -> list[int]:
        seen = []
        async with aiohttp.ClientSession() as s:
            for _ in range(3):
                async with s.get(big_url + "big") as r:
                    seen.append(len(_responses()))
                r = await s.get(big_url + "big")
                seen.append(len(_responses()))
                r.release()
        return seen

    assert asyncio.run(main()) == [0, 1] * 3
    assert reports.warnings() == []


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp discourages subclasses

    class _Session(aiohttp.ClientSession):
        def get(self, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return super().get(url, **kwargs)  # OVERRIDE


def _fetch(s: aiohttp.ClientSession, url: str) -> Any:
    return s.get(url)  # HELPER


def test_a_request_made_by_a_users_function_has_the_awaiting_line(reports: Reports,
                                                                  big_url: str) -> None:
    # the request method called by a subclass's override or a helper of the user's, the
    # request awaited by the user's coroutine: its stack, then the line that called
    async def main() -> list[list[int]]:
        stacks = []
        for session in (_Session(), aiohttp.ClientSession()):
            url = big_url + "big"
            cm = session.get(url) if isinstance(session, _Session) else _fetch(session, url)
            r = await cm  # BY-USER
            [held] = _responses()
            stacks.append([f["line"] for f in held.stack][-2:])
            r.release()
            await session.close()
        return stacks

    assert asyncio.run(main()) == [[_line("# BY-USER"), _line("# OVERRIDE")],
                                   [_line("# BY-USER"), _line("# HELPER")]]
    assert reports.warnings() == []
