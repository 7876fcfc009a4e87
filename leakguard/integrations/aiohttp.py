"""aiohttp.ClientSession: closed when its own `closed` property is true; its responses."""

from __future__ import annotations

from .._guard import guard
from .._tracker import TRACKER
from ._base import Integration, origin, tally
from ._responses import ResponseReader, origin_of, snapshot, track_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any


class AiohttpResponses(ResponseReader):
    """aiohttp.ClientResponse: holds its connection until released, closed or read to EOF."""

    name = "aiohttp"

    def holds(self, response: Any) -> bool:
        # the response's own state, not the transport's: a response that was never released
        # is still one when its session closed the connection under it (and in a collection
        # the socket may be finalized first); aiohttp's protocol keeps such a response alive
        # until then, so it is collected only once its session is closed
        conn = response._connection
        if response._closed or conn is None:
            return False
        protocol = conn.protocol  # None once released; upgraded: a websocket owns it now
        return protocol is not None and not getattr(protocol, "upgraded", False)

    def resources_closed(self, resources: Any) -> bool:
        # judged by the snapshot taken in its __del__, before aiohttp releases it there
        return True


RESPONSES = AiohttpResponses()


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
    requesters = ("_request",)  # every request method (a coroutine function)
    _response_class: type | None = None

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

    def on_response(self, session: Any, result: Any, kwargs: Any) -> None:
        # most responses arrive whole and aiohttp has released their connection already:
        # only one still holding it is tracked, from the user's line that awaited it
        if RESPONSES.holds(result):
            cls = type(result)
            name = "aiohttp.ClientResponse" if cls is self._response_class else \
                f"{cls.__module__}.{cls.__qualname__}"
            url = result.url
            track_response(result, RESPONSES, name,
                           origin_of(str(url.scheme), str(url.host), url.port))

    def response_patches(self, mod: ModuleType) -> list[tuple[type, str, Any]]:
        dying = guard("reading the state of an aiohttp response")
        self._response_class = mod.ClientResponse

        def finalizer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            # aiohttp's __del__ releases a dropped response's connection: read it first
            if id(instance) in TRACKER._live:  # speed: most responses were never tracked
                with dying:
                    snapshot(instance, RESPONSES)
            return wrapped(*args, **kwargs)

        return [(mod.ClientResponse, "__del__", finalizer)]
