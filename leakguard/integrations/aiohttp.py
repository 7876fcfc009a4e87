"""aiohttp.ClientSession: closed when its own `closed` property is true; its responses."""

from __future__ import annotations

import sys

from .._guard import internal_error
from ._base import Integration, origin, tally
from ._responses import ResponseReader, origin_of, track_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, ModuleType
    from typing import Any, Callable

    from .._record import Record
    from ._responses import CalledAt


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

    def held_at_death(self, resources: Any) -> bool | None:
        # judged as its connection was released (see _released): one never released (closed
        # after its loop, say) held nothing aiohttp would give back
        return False

    def resources_closed(self, resources: Any) -> bool:
        return True


RESPONSES = AiohttpResponses()

# ClientResponse.__del__'s code (set when patched): a release from it is a dropped response's
_FINALIZER: list[CodeType] = []


def _released(record: Record) -> Callable[[], None]:
    """A callback of the response's Connection, which aiohttp calls as it is released or
    closed: by the response's own release, close or EOF (it let go of it), or by its __del__
    (dropped while holding it: read as the old response's state, before aiohttp clears it).

    Nothing patched on the response, no cost for those never tracked; the record is reached
    from the connection only, which keeps neither the response nor its socket alive.
    """

    def released() -> None:
        try:
            held = False
            frame = sys._getframe(1)  # _notify_release, then Connection.release, then ...
            n = 4
            while frame is not None and n:
                if frame.f_code in _FINALIZER:
                    held = RESPONSES.holds(frame.f_locals["self"])
                    break
                frame = frame.f_back  # type: ignore[assignment]
                n -= 1
            record.held = held
        except Exception as exc:  # aiohttp would swallow it silently: the guard's rule
            internal_error("reading the state of an aiohttp response", exc)

    return released


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

    def on_response(self, session: Any, result: Any, kwargs: Any,
                    user: CalledAt | None = None) -> None:
        # most responses arrive whole and aiohttp has released their connection already:
        # only one still holding it is tracked, from the user's line that awaited it (the
        # common case first, inline: every request passes here)
        if result._connection is None or result._closed:
            return
        if RESPONSES.holds(result):
            cls = type(result)
            name = "aiohttp.ClientResponse" if cls is self._response_class else \
                f"{cls.__module__}.{cls.__qualname__}"
            url = result.url
            record = track_response(result, RESPONSES, name,
                                    origin_of(str(url.scheme), str(url.host), url.port),
                                    None, user)
            if record is not None:
                result._connection.add_callback(_released(record))

    def response_patches(self, mod: ModuleType) -> list[tuple[type, str, Any]]:
        # nothing patched on responses (a wrapped __del__ cost every response a wrapt call):
        # a tracked one is judged through its connection's release callbacks
        self._response_class = mod.ClientResponse
        code = getattr(vars(mod.ClientResponse).get("__del__"), "__code__", None)
        _FINALIZER[:] = [code] if code is not None else []
        return []
