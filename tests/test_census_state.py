"""census(), the interval block and leakguard.open count what the library says is open."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import aiohttp
import pytest
from conftest import Reports

import leakguard
from leakguard import _api, _metrics
from leakguard._tracker import TRACKER


@pytest.fixture
def on() -> Iterator[Reports]:
    """leakguard on, with a census timer that waits (its ticks are called here)."""
    handler = Reports()
    logger = logging.getLogger("leakguard")
    logger.addHandler(handler)
    leakguard.enable(interval=3600)
    yield handler
    leakguard.disable()
    logger.removeHandler(handler)


def make() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def test_a_session_closed_underneath_leakguard_is_not_counted_open(on: Reports) -> None:
    async def main() -> None:
        sessions = [make() for _ in range(3)]
        # closed by a path leakguard does not wrap: the connector, directly
        await sessions[0].connector.close()  # type: ignore[union-attr]
        await sessions[1].connector.close()  # type: ignore[union-attr]
        assert sessions[0].closed and sessions[1].closed and not sessions[2].closed
        [row] = [r for r in leakguard.census() if r["type"] == "aiohttp.ClientSession"]
        assert row["open"] == 1
        assert row["created"] == 3
        ticker = _api._STATE.ticker
        assert ticker is not None
        block = ticker.tick()
        assert block is not None and "census after" in block
        assert "1 open session;" in block and "  1 x aiohttp.ClientSession open" in block

        def observation(value: int, attributes: dict[str, str]) -> tuple[int, str]:
            return value, attributes["type"]

        seen = _metrics._observe(observation, TRACKER)
        assert (1, "aiohttp.ClientSession") in seen
        await sessions[2].close()
        assert not [r for r in leakguard.census() if r["type"] == "aiohttp.ClientSession"]
        assert (0, "aiohttp.ClientSession") in _metrics._observe(observation, TRACKER)

    asyncio.run(main())


def test_max_open_warns_by_what_the_library_says_is_open() -> None:
    handler = Reports()
    logger = logging.getLogger("leakguard")
    logger.addHandler(handler)
    leakguard.enable(max_open=3)

    def crowd() -> list[str]:
        return [w for w in handler.warnings() if "open at once" in w]

    async def main() -> None:
        sessions = [make(), make()]
        # closed by a path leakguard does not wrap: leakguard's own count still says open
        await sessions[0].connector.close()  # type: ignore[union-attr]
        await sessions[1].connector.close()  # type: ignore[union-attr]
        sessions.append(make())  # three counted, one open: no warning
        assert crowd() == []
        sessions.append(make())
        assert crowd() == []
        sessions.append(make())  # three open at once, as aiohttp says
        [warning] = crowd()
        assert warning.startswith("3 aiohttp.ClientSession open at once, all created at ")
        for _ in range(10):
            sessions.append(make())
        assert len(crowd()) == 1
        for s in sessions:
            await s.close()

    try:
        asyncio.run(main())
    finally:
        leakguard.disable()
        logger.removeHandler(handler)


def test_max_open_rechecks_after_the_closed_ones_died() -> None:
    handler = Reports()
    logger = logging.getLogger("leakguard")
    logger.addHandler(handler)
    leakguard.enable(max_open=4)

    def crowd() -> list[str]:
        return [w for w in handler.warnings() if "open at once" in w]

    async def main() -> None:
        dropped = [make() for _ in range(3)]
        for s in dropped:
            await s.connector.close()  # type: ignore[union-attr]
        del s
        dropped.append(make())  # four counted, one open: recounted, and three uncounted
        assert crowd() == []
        await dropped[-1].close()
        dropped.clear()  # they die, closed: no count goes below what the library says
        kept = [make() for _ in range(4)]
        [warning] = crowd()
        assert warning.startswith("4 aiohttp.ClientSession open at once")
        for s in kept:
            await s.close()

    try:
        asyncio.run(main())
    finally:
        leakguard.disable()
        logger.removeHandler(handler)
