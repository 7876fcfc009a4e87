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
