"""urllib3.PoolManager and ProxyManager: closed once clear() is called (also by `with`)."""

from __future__ import annotations

import sys

from ._base import Integration, origin

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def count_pools(pools: Any) -> tuple[int, list[str]]:
    """Open connections idle in a PoolManager's pools container, and their origins."""
    total = 0
    origins: list[str] = []
    for key in list(pools.keys()):
        pool = pools._container.get(key) if hasattr(pools, "_container") else pools.get(key)
        queue = getattr(getattr(pool, "pool", None), "queue", None)
        if pool is None or queue is None:
            continue
        n = sum(1 for conn in list(queue)
                if conn is not None and getattr(conn, "sock", None) is not None)
        if n:
            total += n
            where = origin(pool.scheme, pool.host, pool.port)
            if where not in origins:
                origins.append(where)
    return total, origins


class Urllib3Integration(Integration):
    """urllib3.PoolManager, urllib3.ProxyManager and their subclasses."""

    name = "urllib3"
    module = "urllib3"
    minimum = (1, 26)
    below = (3,)
    classes = (("PoolManager", "urllib3.PoolManager"), ("ProxyManager", "urllib3.ProxyManager"))
    closers = ("clear",)
    # libraries whose sessions own the PoolManagers they create (requests' HTTPAdapter):
    # such a PoolManager is part of that session, never reported on its own
    owners = ("requests",)

    def resources(self, session: Any) -> object:
        return session.pools

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        return count_pools(resources)

    def owned_elsewhere(self) -> bool:
        frame = sys._getframe(1)
        while frame is not None:
            module = str(frame.f_globals.get("__name__", ""))
            top = module.partition(".")[0]
            if top not in ("leakguard", "wrapt", "urllib3"):
                return top in self.owners
            frame = frame.f_back  # type: ignore[assignment]
        return False
