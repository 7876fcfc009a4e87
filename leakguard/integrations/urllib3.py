"""urllib3.PoolManager and ProxyManager: closed once clear() is called (also by `with`)."""

from __future__ import annotations

import sys

from ._base import Integration, origin, tally

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


def _members(container: Any) -> list[Any] | None:
    # urllib3-future (niquests' urllib3, also installed over `urllib3`) keeps pools and
    # connections in a TrafficPolice whose registry holds every member, idle or busy
    registry = getattr(container, "_registry", None)
    if isinstance(registry, dict):
        return list(registry.values())
    queue = getattr(container, "queue", None)  # urllib3: a LifoQueue of idle connections
    return None if queue is None else list(queue)


def pool_counts(pools: Any) -> Iterator[tuple[str, int]]:
    """(origin, open connections) for each pool of a PoolManager's pools container."""
    found = _members(pools)
    if found is None:
        # the LRU's own dict: reading through the container would reorder the host's LRU
        found = [pools._container.get(key) if hasattr(pools, "_container") else pools.get(key)
                 for key in list(pools.keys())]
    for pool in found:
        connections = _members(getattr(pool, "pool", None))
        if pool is None or connections is None:
            continue
        yield origin(pool.scheme, pool.host, pool.port), sum(
            1 for conn in connections
            if conn is not None and getattr(conn, "sock", None) is not None)


class Urllib3Integration(Integration):
    """urllib3.PoolManager, urllib3.ProxyManager and their subclasses."""

    name = "urllib3"
    module = "urllib3"
    minimum = (1, 26)
    below = (3,)
    classes = (("PoolManager", "urllib3.PoolManager"), ("ProxyManager", "urllib3.ProxyManager"))
    closers = ("clear",)
    # libraries whose sessions own the PoolManagers they create (requests' and niquests'
    # HTTPAdapter): such a PoolManager is part of that session, never reported on its own
    owners = ("requests", "niquests")

    def resources(self, session: Any) -> object:
        return session.pools

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        return tally(pool_counts(resources))

    def owned_elsewhere(self) -> bool:
        frame = sys._getframe(1)
        while frame is not None:
            module = str(frame.f_globals.get("__name__", ""))
            top = module.partition(".")[0]
            if top not in ("leakguard", "wrapt", "urllib3"):
                return top in self.owners
            frame = frame.f_back  # type: ignore[assignment]
        return False
