"""httpx.Client and httpx.AsyncClient: closed when `is_closed` is true."""

from __future__ import annotations

from ._base import Integration, origin, tally

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any


def _pool_connections(transport: Any) -> list[Any] | None:
    pool = getattr(transport, "_pool", None)
    if pool is None:
        return None
    connections = getattr(pool, "connections", None)
    if connections is None:
        return None
    return list(connections)


class HttpxIntegration(Integration):
    """httpx.Client, httpx.AsyncClient and their subclasses."""

    name = "httpx"
    module = "httpx"
    minimum = (0, 23)
    below = (1,)
    classes = (("Client", "httpx.Client"), ("AsyncClient", "httpx.AsyncClient"))
    # Client.__exit__ does not call close(): both are checked; the async paths are
    # coroutine functions: closed once awaited, as `is_closed` says when judged
    checked_closers = ("close", "__exit__")
    closers = ()
    async_closers = ("aclose", "__aexit__")

    def foreign(self, mod: ModuleType) -> bool:
        # httpx2.alias_httpx() puts the httpx2 module in sys.modules["httpx"]: its classes
        # are httpx2's, patched and tracked once, by the httpx2 integration
        return mod.__name__ != self.module

    def resources(self, session: Any) -> object:
        return [session._transport, *session._mounts.values()]

    def is_closed(self, session: Any) -> bool:
        return bool(session.is_closed)

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        pools = [_pool_connections(t) for t in resources if t is not None]
        if any(found is None for found in pools):
            return None, []  # a transport that does not expose its pool: say unknown
        return tally((origin(c._origin.scheme.decode("ascii"), c._origin.host.decode("ascii"),
                             c._origin.port), 1)
                     for found in pools for c in found or () if not c.is_closed())
