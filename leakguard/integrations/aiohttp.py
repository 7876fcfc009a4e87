"""aiohttp.ClientSession: closed when its own `closed` property is true."""

from __future__ import annotations

from ._base import Integration, origin, tally

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class AiohttpIntegration(Integration):
    """aiohttp.ClientSession and its subclasses."""

    name = "aiohttp"
    module = "aiohttp"
    minimum = (3, 8)
    below = (4,)
    classes = (("ClientSession", "aiohttp.ClientSession"),)
    # close() is a coroutine function: calling it is not closing, awaiting it is, which
    # `closed` shows (read when judged; __del__ reads it as the session dies); detach()
    # closes the session but not the connector; a connector closed directly shows in
    # resources_closed()
    closers = ()
    checked_closers = ("detach", "__del__")
    async_closers = ("close",)

    def resources(self, session: Any) -> object:
        return session.connector

    def is_closed(self, session: Any) -> bool:
        return bool(session.closed)

    def resources_closed(self, resources: Any) -> bool:
        return resources is None or bool(resources.closed)

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        if resources is None or resources.closed:
            return 0, []
        conns = getattr(resources, "_conns", None)
        if conns is None:
            return None, []
        return tally((origin("https" if key.is_ssl else "http", key.host, key.port),
                      sum(1 for proto, *_ in list(entries)
                          if getattr(proto, "transport", None) is not None))
                     for key, entries in list(conns.items()))
