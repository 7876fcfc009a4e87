"""requests.Session: closed once close() is called (also by `with`)."""

from __future__ import annotations

from ._base import Integration, origin

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def count_pool_manager(manager: Any) -> tuple[int, list[str]]:
    """Open connections idle in a urllib3 PoolManager's pools, and their origins."""
    total = 0
    origins: list[str] = []
    pools = manager.pools
    for key in list(pools.keys()):
        pool = pools.get(key)
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


class RequestsIntegration(Integration):
    """requests.Session and its subclasses."""

    name = "requests"
    module = "requests"
    minimum = (2, 20)
    classes = (("Session", "requests.Session"),)
    closers = ("close",)

    def resources(self, session: Any) -> object:
        # the adapters dict: mount() adds to it in place, and adapters never hold the session
        return session.adapters

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        total = 0
        origins: list[str] = []
        for adapter in list(resources.values()):
            managers = [getattr(adapter, "poolmanager", None),
                        *getattr(adapter, "proxy_manager", {}).values()]
            for manager in managers:
                if manager is None:
                    continue
                n, where = count_pool_manager(manager)
                total += n
                origins.extend(w for w in where if w not in origins)
        return total, origins
