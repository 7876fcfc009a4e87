"""httpx.Client and httpx.AsyncClient: closed when `is_closed` is true; streamed responses."""

from __future__ import annotations

import sys
import weakref

from .._response_path import track_from
from ._base import Integration, origin, tally
from ._responses import ResponseReader, origin_of, track_response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType, ModuleType
    from typing import Any

    from ._responses import CalledAt


def _pool_connections(transport: Any) -> list[Any] | None:
    pool = getattr(transport, "_pool", None)
    if pool is None:
        return None
    connections = getattr(pool, "connections", None)
    if connections is None:
        return None
    return list(connections)


def _aiohttp_connections(transport: Any) -> list[tuple[str, int]] | None:
    """(origin, open connections) of a transport over an aiohttp session (httpx_aiohttp, the
    OpenAI and Anthropic SDKs' DefaultAioHttpClient): that session is the client's, not
    tracked on its own (see AiohttpIntegration.owned_elsewhere); None: not one."""
    if "httpx_aiohttp" not in type(transport).__module__:
        return None
    session = getattr(transport, "client", None)
    if session is None:
        return []  # no request yet: no session, no connection
    connector = getattr(session, "connector", None)
    if connector is None:
        return [] if getattr(session, "closed", False) else None
    from ._aiohttp_pool import origin_counts

    return origin_counts(connector)


def pool_stream(response: Any) -> Any:
    """httpcore's stream under a streamed response (it holds the pool slot); None if none."""
    stream = getattr(getattr(response, "stream", None), "_stream", None)  # Bound*Stream
    return getattr(stream, "_httpcore_stream", None)  # the transport's ResponseStream's


def pool_request(response: Any) -> Any:
    """httpcore's handle on the pool slot a streamed response occupies; None if not pooled."""
    core = pool_stream(response)
    return getattr(core, "_pool_request", None) or getattr(core, "_status", None)


def connection_open(slot: Any) -> bool:
    """Whether a pool slot still has a connection that is open.

    Closing the client closes every connection of its pool, those of unclosed streamed
    responses too: such a response holds nothing any more.
    """
    conn = getattr(slot, "connection", None)
    if conn is None:
        return False
    is_closed = getattr(conn, "is_closed", None)
    return is_closed is None or not is_closed()


class HttpxResponses(ResponseReader):
    """httpx.Response from send(..., stream=True) or stream()."""

    name = "httpx"

    def holds(self, response: Any) -> bool:
        if response.is_closed:
            return False
        slot = pool_request(response)
        return slot is None or connection_open(slot)

    def held_at_death(self, resources: Any) -> bool:
        # a dropped streamed response keeps its slot in httpcore's pool (the pool holds the
        # slot strongly, the record weakly): the slot still alive is the leak, as long as
        # the pool still gives that slot's open connection to the response
        bound, slot_ref, stream_ref, pool_ref = resources
        if bound is not None:
            # the transport's stream, held by the record until the verdict, holds the rest
            try:  # plain attributes, read without getattr()'s calls (once per response)
                stream = bound._httpcore_stream
                if stream._closed:
                    return False  # the common end: the stream was closed, its slot given back
            except AttributeError:
                stream = getattr(bound, "_httpcore_stream", None)
            slot = getattr(stream, "_pool_request", None) or getattr(stream, "_status", None)
            pool = getattr(stream, "_pool", None)
        else:  # let go of by revived(): read weakly
            slot = slot_ref() if slot_ref is not None else None
            if slot is None:  # the pool let go of it: the stream was closed
                return False
            stream = stream_ref() if stream_ref is not None else None
            if stream is not None and getattr(stream, "_closed", False):
                return False
            pool = pool_ref() if pool_ref is not None else None
        # a response dying of its last reference still holds its stream and slot as it is
        # judged (httpx2's are in no cycle), and a slot may outlive its use: the stream's own
        # flag and the pool's list of requests say whether it was given back
        requests = getattr(pool, "_requests", None)
        if isinstance(requests, list):
            for r in requests:  # speed: no generator per response (once per death)
                if r is slot:
                    break
            else:
                return False
        return connection_open(slot)

    def resources_closed(self, resources: Any) -> bool:
        return not self.held_at_death(resources)

    def revived(self, resources: Any) -> object:
        # resources[0]: the transport's stream under the response's own (whose Bound*Stream
        # holds the response: never kept), held by the record until the verdict: anyone but
        # the record still holding it is the response, brought back by a finalizer in the
        # collection that "killed" it (an SDK stream's async generator, whose aclose() the
        # loop will run); then the record lets it go and waits for it to go
        bound = resources[0]
        if bound is None or _refs(resources) <= _OURS:
            return None
        # from now on the slot, the stream and its pool are read weakly (held_at_death)
        stream = getattr(bound, "_httpcore_stream", None)
        slot = getattr(stream, "_pool_request", None) or getattr(stream, "_status", None)
        pool = getattr(stream, "_pool", None)
        resources[0] = None
        resources[1:] = [None if x is None else weakref.ref(x) for x in (slot, stream, pool)]
        try:
            weakref.ref(bound)
        except TypeError:
            return None
        return bound


def _refs(resources: Any) -> int:
    stream = resources[0]
    return sys.getrefcount(stream)


# what _refs() counts when only the record's list holds the stream (measured, not assumed:
# interpreters count differently)
_OURS = _refs([object()])

RESPONSES = HttpxResponses()


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
    requesters = ("send",)  # every request method, and stream()
    streamed_by = "stream"
    response_name = "httpx.Response"

    def foreign(self, mod: ModuleType) -> bool:
        # httpx2.alias_httpx() puts the httpx2 module in sys.modules["httpx"]: its classes
        # are httpx2's, patched and tracked once, by the httpx2 integration
        return mod.__name__ != self.module

    def resources(self, session: Any) -> object:
        return [session._transport, *session._mounts.values()]

    def is_closed(self, session: Any) -> bool:
        return bool(session.is_closed)

    def connections(self, resources: Any) -> tuple[int | None, list[str]]:
        transports = [t for t in resources if t is not None]
        pools = [_pool_connections(t) for t in transports]
        over_aiohttp = [_aiohttp_connections(t) for t, found in zip(transports, pools)
                        if found is None]
        if any(found is None for found in over_aiohttp):
            return None, []  # a transport that does not expose its pool: say unknown
        return tally([*((origin(c._origin.scheme.decode("ascii"),
                                c._origin.host.decode("ascii"), c._origin.port), 1)
                        for found in pools for c in found or () if not c.is_closed()),
                      *(pair for found in over_aiohttp for pair in found or ())])

    def on_response(self, session: Any, result: Any, kwargs: Any,
                    user: FrameType | CalledAt | None = None) -> None:
        # a response that is not streamed was read whole and closed: skipped
        if not kwargs.get("stream") or result.is_closed:
            return
        try:  # pool_request(), inline: plain attributes, read without getattr()'s calls
            bound = result.stream._stream
            core = bound._httpcore_stream
        except AttributeError:
            return  # not from a connection pool (a mock or custom transport)
        try:
            slot = core._pool_request
        except AttributeError:
            slot = None
        slot = slot or getattr(core, "_status", None)
        if slot is None:
            return  # not from a connection pool (a mock or custom transport)
        # the origin from httpcore's request in the slot: plain attributes, where httpx's URL
        # computes each (its host decoded from IDNA: the pools' origins show it encoded)
        url = slot.request.url
        # the transport's stream, held until the verdict (it holds httpcore's stream, the
        # slot and the pool), then weak references to those (see revived())
        resources = [bound, None, None, None]
        key = (url.scheme, url.host, url.port)
        where = _ORIGINS.get(key)  # a dict, not an lru_cache: half its cost per response
        if where is None:
            where = _core_origin(key)
        if type(user) is _FRAME:  # type(): one specialized instruction, __class__ a lookup
            track_from(result, RESPONSES, self.response_name, where, resources, user)
        else:
            track_response(result, RESPONSES, self.response_name, where, resources, user)


_FRAME = type(sys._getframe())


# (scheme, host, port) of httpcore's URL -> its origin: bounded by the origins requested
_ORIGINS: dict[tuple[bytes, bytes, int | None], str] = {}


def _core_origin(key: tuple[bytes, bytes, int | None]) -> str:
    scheme, host, port = key
    found = origin_of(scheme.decode("ascii"), host.decode("ascii"), port)
    if len(_ORIGINS) >= 512:
        _ORIGINS.clear()
    _ORIGINS[key] = found
    return found
